package tests

// The firewall setting end to end: gonat run --firewall with real
// sockets on both sides, and the drops it counts on exit.

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/stun"
)

// tcpWorks says whether a TCP connection from namespace from reaches a
// listener on the server at port in the WAN and carries a byte back.
func tcpWorks(t *testing.T, tp *topo, port string) bool {
	t.Helper()
	ln, err := ns.Listen(tp.WAN, "tcp4", net.JoinHostPort(srv1.String(), port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("x"))
		c.Close()
	}()
	// 300 ms: less than the first SYN retransmission (1 s), so a refused
	// attempt sends exactly one SYN.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c, err := ns.DialContext(ctx, tp.A, &net.Dialer{}, "tcp4", net.JoinHostPort(srv1.String(), port))
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 1)
	n, _ := c.Read(b)
	return n == 1
}

// stunSilent sends a STUN binding transaction of 3 requests from A to the
// lab's STUN server and says whether nothing came back.
func stunSilent(t *testing.T, tp *topo) bool {
	t.Helper()
	c := udp(t, tp.A, ":0")
	defer c.Close()
	_, err := stun.Binding(context.Background(), c, stunServer, 0, 100*time.Millisecond, 3)
	if err != nil && !errors.Is(err, stun.ErrTimeout) {
		t.Fatalf("stun binding: %v", err)
	}
	return err != nil
}

// block-udp: a STUN binding request gets nothing, a TCP connection
// works, and every request sent is counted as a firewall drop.
func TestFirewallBlockUDP(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--firewall", "block-udp")
	if !stunSilent(t, tp) {
		t.Errorf("a STUN binding request was answered through block-udp")
	}
	if !tcpWorks(t, tp, "443") {
		t.Errorf("TCP to port 443 failed under block-udp")
	}
	tp.stopNAT()
	if n := packetCount(tp.stderr.String(), "firewall"); n != 3 {
		t.Errorf("firewall drops %d, want the 3 requests sent", n)
	}
}

// web-only: TCP to 443 works; TCP to 22 and UDP are dropped, each packet
// counted.
func TestFirewallWebOnly(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--firewall", "web-only")
	if !tcpWorks(t, tp, "443") {
		t.Errorf("TCP to port 443 failed under web-only")
	}
	if tcpWorks(t, tp, "22") {
		t.Errorf("TCP to port 22 got through web-only")
	}
	if !stunSilent(t, tp) {
		t.Errorf("a STUN binding request was answered through web-only")
	}
	tp.stopNAT()
	if n := packetCount(tp.stderr.String(), "firewall"); n != 1+3 {
		t.Errorf("firewall drops %d, want 4 (one SYN to port 22, 3 STUN requests)", n)
	}
}
