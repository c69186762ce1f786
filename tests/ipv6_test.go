package tests

// The NAT's IPv6 modes end to end: a dual-stack lab (examples/
// dual-stack.toml) with alice behind the NAT and a dual-stack server on
// the public network, each mode set on the NAT, and what real pings and a
// TCP transfer over IPv6 meet.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/table"
)

// ipv6Lab brings up examples/dual-stack.toml with the NAT in mode.
func ipv6Lab(t *testing.T, mode table.IPv6Mode) *labtest.Lab {
	t.Helper()
	topo := labtest.Load(t, "../examples/dual-stack.toml")
	for i := range topo.NATs {
		topo.NATs[i].Behavior.IPv6 = mode
	}
	return labtest.Up(t, topo, labOpts())
}

// ping6 pings to from node and returns its output and whether every
// echo was answered.
func ping6(l *labtest.Lab, from, to string) (string, bool) {
	out, err := l.Node(from).Command("ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "1", to).CombinedOutput()
	return string(out), err == nil
}

// routed: IPv6 leaves untranslated through the stateful firewall: alice
// reaches the server (ping, and 10 MB over TCP both ways intact, the server
// seeing alice's own address), while the server's unsolicited ping and
// TCP connection to alice are filtered (port-restricted cone: APDF).
func TestIPv6Routed(t *testing.T) {
	l := ipv6Lab(t, table.IPv6Routed)
	if out, ok := ping6(l, "alice", "2001:db8::10"); !ok {
		t.Fatalf("alice cannot ping the server over IPv6 through the routed NAT:\n%s", out)
	}
	if got := echo6(t, l, "alice", 10<<20); !strings.HasPrefix(got, "[fd00:1::2]:") {
		t.Errorf("the server saw the connection from %s, want alice's own address fd00:1::2", got)
	}
	if out, ok := ping6(l, "server", "fd00:1::2"); ok {
		t.Errorf("the server's unsolicited ping reached alice through the firewall:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ns.DialContext(ctx, l.Node("server").Namespace, &net.Dialer{Timeout: time.Second}, "tcp6", "[fd00:1::2]:22"); err == nil {
		t.Errorf("the server's unsolicited TCP connection to alice got through")
	}
	if p := natPackets(t, l, "router"); p["ipv6-filtered"] == 0 {
		t.Errorf("no ipv6-filtered drops counted: %v", p)
	}
}

// none, reject and blackhole: no IPv6 leaves; inside hosts are told so
// (none: administratively prohibited; reject: no route) or not at all
// (blackhole), and each drop counts under its mode's reason.
func TestIPv6Refused(t *testing.T) {
	for _, tc := range []struct {
		mode   table.IPv6Mode
		reason string
		says   string // what ping prints for the ICMPv6 error; "" for none
	}{
		{table.IPv6None, "ipv6-none", "Administratively prohibited"},
		{table.IPv6Reject, "ipv6-reject", "No route"},
		{table.IPv6Blackhole, "ipv6-blackhole", ""},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			l := ipv6Lab(t, tc.mode)
			out, ok := ping6(l, "alice", "2001:db8::10")
			if ok {
				t.Fatalf("alice reached the server over IPv6 through mode %s:\n%s", tc.mode, out)
			}
			if tc.says != "" && !strings.Contains(out, tc.says) {
				t.Errorf("ping says %q; want it told %q", out, tc.says)
			}
			if tc.says == "" && strings.Contains(out, "nreachable") {
				t.Errorf("blackhole answered: %q", out)
			}
			if p := natPackets(t, l, "router"); p[tc.reason] == 0 {
				t.Errorf("no %s drops counted: %v", tc.reason, p)
			}
			// IPv4 is untouched.
			if out, err := l.Node("alice").Command("ping", "-4", "-n", "-c", "1", "-W", "2", "203.0.113.10").CombinedOutput(); err != nil {
				t.Errorf("IPv4 ping from alice failed in mode %s: %v\n%s", tc.mode, err, out)
			}
		})
	}
}

// echo6 sends size bytes over TCP from node from to the server's
// [2001:db8::10]:8080, which echoes them back; it checks they come back
// intact and returns the address the server saw the connection from.
func echo6(t *testing.T, l *labtest.Lab, from string, size int) string {
	t.Helper()
	ln, err := ns.Listen(l.Node("server").Namespace, "tcp6", "[2001:db8::10]:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := bytes.Repeat([]byte("gonat-ipv6-echo"), size/15+1)[:size]
	want := sha256.Sum256(payload)
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- ""
			return
		}
		defer c.Close()
		seen <- c.RemoteAddr().String()
		io.Copy(c, io.LimitReader(c, int64(size)))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := ns.DialContext(ctx, l.Node(from).Namespace, &net.Dialer{}, "tcp6", "[2001:db8::10]:8080")
	if err != nil {
		t.Fatalf("%s -> [2001:db8::10]:8080: %v", from, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go c.Write(payload)
	h := sha256.New()
	if n, err := io.CopyN(h, c, int64(size)); err != nil || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo over IPv6: %d bytes, %v, sum match %v", n, err, bytes.Equal(h.Sum(nil), want[:]))
	}
	return <-seen
}
