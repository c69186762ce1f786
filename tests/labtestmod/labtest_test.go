// Package labtestmod uses gonat's lab/labtest from a module of its own,
// exactly as the README shows, with the STUN server of
// examples/two-homes.toml (testdata/two-homes.toml links to it).
package labtestmod

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/lab/labtest"
)

var failOnPurpose = flag.Bool("fail-on-purpose", false,
	`fail after the lab is up, through the README's old mistake l.NAT("home1") (the file's NATs are home-a and home-b)`)

// inTest is set in this process's environment, which every host command
// inherits: a host that runs this test binary again says so and fails.
const inTest = "LABTESTMOD_IN_TEST"

func TestMain(m *testing.M) {
	if os.Getenv(inTest) != "" {
		fmt.Fprintln(os.Stderr, "FAIL: the test binary was executed again, as a lab host's command")
		os.Exit(97)
	}
	os.Setenv(inTest, "1")
	os.Exit(m.Run())
}

func TestSTUNFromTwoHomes(t *testing.T) {
	l := labtest.Up(t, labtest.Load(t, "testdata/two-homes.toml"), lab.Options{})

	// The STUN server is gonat, not this test binary.
	self, _ := os.Executable()
	gonats := 0
	for _, pid := range lab.ProcessesIn(l.Node("stun").Namespace) {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		if exe == self {
			t.Errorf("process %d on the stun host is this test binary %s", pid, exe)
		}
		if filepath.Base(exe) == "gonat" {
			gonats++
		}
	}
	if gonats == 0 {
		t.Errorf("no gonat process runs on the stun host")
	}

	// A real Binding request from alice through home-a (full cone): the
	// server sees home-a's external address.
	var mapped netip.AddrPort
	err := l.Node("alice").Run(func() error {
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			return err
		}
		defer c.Close()
		server := &net.UDPAddr{IP: net.IPv4(203, 0, 113, 10), Port: 3478}
		buf := make([]byte, 1500)
		for range 5 {
			req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
			if _, err := c.WriteTo(req.Raw, server); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				continue
			}
			resp := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if err := resp.Decode(); err != nil || resp.TransactionID != req.TransactionID {
				continue
			}
			var xor stun.XORMappedAddress
			if err := xor.GetFrom(resp); err != nil {
				return err
			}
			ip, _ := netip.AddrFromSlice(xor.IP.To4())
			mapped = netip.AddrPortFrom(ip, uint16(xor.Port))
			return nil
		}
		return errors.New("no Binding response from 203.0.113.10:3478 in 5 tries")
	})
	if err != nil {
		t.Fatal(err)
	}
	if mapped.Addr() != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("alice seen as %s, want home-a's 198.51.100.1", mapped)
	}
	t.Logf("alice seen by the STUN server as %s", mapped)

	if *failOnPurpose {
		l.NAT("home1").Set("symmetric", nil)
		t.Error("l.NAT of a missing NAT returned")
	}
}
