package tests

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
)

// Path MTU end to end, judged by tracepath and by kernel TCP and UDP
// sockets on either side. In one lab: router, whose uplink is 1280 bytes
// and whose IPv6 is routed, with alice behind it; home, with carol behind
// it on a 576-byte link; public servers.
const pmtuLab = `
name = "pmtu"

[[nat]]
name = "router"
external = "198.51.100.1"
inside = "10.0.0.0/24"
inside6 = "fd00:1::/64"
ipv6 = "routed"
uplink-mtu = 1280

[[host]]
name = "alice"
network = "router"

[[nat]]
name = "home"
external = "198.51.100.2"
inside = "10.0.1.0/24"

[[host]]
name = "carol"
network = "home"
mtu = 576

[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "2001:db8::10"]

[[host]]
name = "peer"
network = "public"
address = "203.0.113.11"
`

// Kernel path MTU discovery modes (linux/in.h IP_MTU_DISCOVER).
const (
	pmtudiscDo        = 2 // DF set; EMSGSIZE over the known path MTU
	pmtudiscInterface = 4 // DF clear; fragment only over the device's MTU
)

func setPMTUDisc(t *testing.T, c *net.UDPConn, mode int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, mode)
	})
	if serr != nil {
		t.Fatal(serr)
	}
}

// Out through the small uplink: tracepath over IPv4 and IPv6 reports
// pmtu 1280 (the NAT answering the host's 1500-byte probes with
// fragmentation needed and Packet Too Big) and shows the NAT as hop 1
// over IPv6; a DF-clear UDP datagram larger than the link arrives whole
// (fragmented by the NAT); 2 MB over TCP (DF set, as Linux sends it) goes
// through; with pmtu-blackhole the same transfer to another server
// stalls, its drops counted. In to carol's small link: a DF-clear
// datagram arrives whole, and a DF-set one makes the server's kernel
// learn carol's link MTU for the NAT's external address.
func TestPathMTU(t *testing.T) {
	privtest.Tool(t, "tracepath")
	l := labtest.Up(t, labtest.Parse(t, pmtuLab), labOpts())
	alice := l.Node("alice")
	server := net.ParseIP("203.0.113.10")

	t.Run("DF-clear UDP out is fragmented", func(t *testing.T) {
		srv := nodeUDP(t, l, "server", "203.0.113.10:9000")
		c := nodeUDP(t, l, "alice", ":0")
		setPMTUDisc(t, c, pmtudiscInterface)
		msg := bytes.Repeat([]byte("fragment-me "), 1400/12)
		buf := make([]byte, 2000)
		srv.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.WriteToUDP(msg, &net.UDPAddr{IP: server, Port: 9000}); err != nil {
			t.Fatal(err)
		}
		n, _, err := srv.ReadFromUDP(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("the server got %d bytes (%v), want the %d-byte datagram whole", n, err, len(msg))
		}
		if p := natPackets(t, l, "router"); p["fragmented"] == 0 {
			t.Errorf("the NAT counted no fragmented datagram: %v", p)
		}
	})
	t.Run("tracepath IPv4", func(t *testing.T) {
		out, err := alice.Command("tracepath", "-4", "-n", "-m", "4", "203.0.113.10").CombinedOutput()
		if !strings.Contains(string(out), "pmtu 1280") {
			t.Errorf("tracepath does not report pmtu 1280 (err %v):\n%s", err, out)
		}
	})
	t.Run("tracepath IPv6", func(t *testing.T) {
		out, err := alice.Command("tracepath", "-6", "-n", "-m", "4", "2001:db8::10").CombinedOutput()
		if !strings.Contains(string(out), "pmtu 1280") || !strings.Contains(string(out), " 1:  fd00:1::1") {
			t.Errorf("tracepath does not show the NAT (fd00:1::1) as hop 1 and pmtu 1280 (err %v):\n%s", err, out)
		}
	})
	t.Run("TCP with DF", func(t *testing.T) {
		if n, err := upload(t, l, "203.0.113.10:8080", 2<<20, 20*time.Second); err != nil {
			t.Fatalf("2 MB over TCP through the 1280-byte uplink: %d bytes, %v", n, err)
		}
	})
	if p := natPackets(t, l, "router"); p["too-big"] == 0 {
		t.Errorf("no too-big drops counted: %v", p)
	}

	t.Run("in to a small host link", func(t *testing.T) {
		srv := nodeUDP(t, l, "server", "203.0.113.10:9001")
		carol := nodeUDP(t, l, "carol", ":0")
		buf := make([]byte, 2000)
		if _, err := carol.WriteToUDP([]byte("hello"), &net.UDPAddr{IP: server, Port: 9001}); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, pub, err := srv.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		// DF clear: cut by the NAT, put together by carol's kernel.
		setPMTUDisc(t, srv, pmtudiscInterface)
		msg := bytes.Repeat([]byte("to-carol "), 1000/9)
		srv.WriteToUDP(msg, pub)
		carol.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, _, err := carol.ReadFromUDP(buf); err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("carol got %d bytes (%v), want the %d-byte datagram whole", n, err, len(msg))
		}
		// DF set: the NAT's fragmentation needed, from the external
		// address, teaches the server's kernel the path MTU to it.
		setPMTUDisc(t, srv, pmtudiscDo)
		var werr error
		for i := 0; i < 20; i++ {
			if _, werr = srv.WriteToUDP(msg, pub); werr != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !errors.Is(werr, syscall.EMSGSIZE) {
			t.Errorf("the server's kernel never refused a %d-byte DF datagram to %s (last error %v): no ICMP 3/4 reached it", len(msg), pub, werr)
		}
		if p := natPackets(t, l, "home"); p["too-big"] == 0 || p["fragmented"] == 0 {
			t.Errorf("home counted too-big %d, fragmented %d; want both: %v", p["too-big"], p["fragmented"], p)
		}
	})

	t.Run("pmtu-blackhole stalls TCP", func(t *testing.T) {
		e := l.NAT("router").Engine
		c := e.Config().Table
		c.PMTUBlackhole = true
		if err := e.SetTableConfig(c); err != nil {
			t.Fatal(err)
		}
		// Another server: alice's kernel has no path MTU for it yet.
		n, err := upload(t, l, "203.0.113.11:8080", 1<<20, 2*time.Second)
		if err == nil {
			t.Fatalf("1 MB went through a path MTU black hole")
		}
		t.Logf("through the black hole: %d bytes in 2 s (%v)", n, err)
		if p := natPackets(t, l, "router"); p["pmtu-blackhole"] == 0 {
			t.Errorf("no pmtu-blackhole drops counted: %v", p)
		}
	})
}

// upload sends size bytes over TCP from alice to a listener at addr on
// the public host that holds it, within d, and returns how many bytes
// arrived and why not all did.
func upload(t *testing.T, l *labtest.Lab, addr string, size int, d time.Duration) (int64, error) {
	t.Helper()
	host := "server"
	if strings.HasPrefix(addr, "203.0.113.11:") {
		host = "peer"
	}
	ln, err := ns.Listen(l.Node(host).Namespace, "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	deadline := time.Now().Add(d)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	c, err := ns.DialContext(ctx, l.Node("alice").Namespace, &net.Dialer{}, "tcp4", addr)
	if err != nil {
		return 0, err
	}
	c.SetDeadline(deadline)
	_, werr := c.Write(make([]byte, size))
	c.Close()
	n := <-got
	if n != int64(size) {
		if werr == nil {
			werr = io.ErrUnexpectedEOF
		}
		return n, werr
	}
	return n, nil
}
