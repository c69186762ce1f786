package tests

import (
	"context"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/ns"
)

// Hairpinning (RFC 4787 REQ-9, 9a): an inside host reaches another inside
// host's external endpoint, and sees the external endpoint as the source,
// never the private address.
func TestHairpinUDP(t *testing.T) {
	for _, on := range []bool{true, false} {
		name := "on"
		if !on {
			name = "off"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			tp.startSTUN()
			if on {
				tp.startNAT("--hairpin=true")
			} else {
				tp.startNAT("--hairpin=false")
			}
			a, b := udp(t, tp.A, ":5000"), udp(t, tp.B, ":5001")
			ma, mb := mapped(t, a, stunServer), mapped(t, b, stunServer)
			// Both send to each other's external endpoint, as hole
			// punching peers do, until each has heard the other: the first
			// packet to arrive is dropped by the port-restricted filter it
			// meets, the next ones pass.
			var gotA, gotB bool
			var fromA, fromB netip.AddrPort
			for i := 0; i < 10 && !(gotA && gotB); i++ {
				a.WriteToUDPAddrPort([]byte("from A"), mb)
				b.WriteToUDPAddrPort([]byte("from B"), ma)
				if !gotA {
					if msg, from, err := recvFrom(a, 200*time.Millisecond); err == nil && msg == "from B" {
						gotA, fromB = true, from
					}
				}
				if !gotB {
					if msg, from, err := recvFrom(b, 200*time.Millisecond); err == nil && msg == "from A" {
						gotB, fromA = true, from
					}
				}
			}
			if !on {
				if gotA || gotB {
					t.Fatalf("hairpin off, yet packets crossed: A heard %s, B heard %s", fromB, fromA)
				}
				return
			}
			if !gotA || !gotB {
				t.Fatalf("hairpin on, but A heard B: %v, B heard A: %v", gotA, gotB)
			}
			if fromB != mb || fromA != ma {
				t.Errorf("A saw B as %s (want MB=%s), B saw A as %s (want MA=%s); never a 10.0.0.x source", fromB, mb, fromA, ma)
			}
		})
	}
	t.Run("symmetric mapping with an open filter", func(t *testing.T) {
		t.Parallel()
		tp := newTopo(t)
		tp.startSTUN()
		tp.startNAT("--preset", "symmetric", "--filtering", "eif")
		a, b := udp(t, tp.A, ":5000"), udp(t, tp.B, ":5001")
		ma, mb := mapped(t, a, stunServer), mapped(t, b, stunServer)
		a.WriteToUDPAddrPort([]byte("from A"), mb)
		msg, from, err := recvFrom(b, time.Second)
		if err != nil || msg != "from A" {
			t.Fatalf("B heard %q (%v)", msg, err)
		}
		// APDM: A's packet to MB left by a new mapping, not MA.
		if from.Addr() != ext1 || from == ma {
			t.Errorf("B saw A as %s; want a new external endpoint on %s, not MA=%s", from, ext1, ma)
		}
	})
	t.Run("off counts drops", func(t *testing.T) {
		t.Parallel()
		tp := newTopo(t)
		tp.startSTUN()
		tp.startNAT("--preset", "linux")
		a, b := udp(t, tp.A, ":5000"), udp(t, tp.B, ":5001")
		mb := mapped(t, b, stunServer)
		a.WriteToUDPAddrPort([]byte("x"), mb)
		time.Sleep(200 * time.Millisecond)
		tp.stopNAT()
		if !tp.stderr.contains("hairpin-off=1") {
			t.Errorf("gonat's counters do not show the hairpin drop:\n%s", tp.stderr.String())
		}
	})
}

// reuse lets a listener and a connected socket share a local port, so a
// test can make a TCP mapping and then accept on the same port.
func reuse(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		if serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// observer is a TCP server in the public namespace that writes back the
// remote address it sees: binding discovery for TCP.
func (tp *topo) tcpObserver(addr string) {
	t := tp.t
	l, err := ns.Listen(tp.WAN, "tcp4", addr)
	if err != nil {
		t.Fatalf("observer listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(c.RemoteAddr().String() + "\n"))
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
}

// TCP hairpinning (RFC 5382 REQ-8): B listens, A connects to MB, and B's
// accept() reports MA.
func TestHairpinTCP(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--preset", "full-cone")
	tp.tcpObserver("203.0.113.1:9000")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// B makes its TCP mapping from port 6000, then listens on 6000.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{Port: 6000}, Control: reuse}
	bc, err := ns.DialContext(ctx, tp.B, d, "tcp4", "203.0.113.1:9000")
	if err != nil {
		t.Fatalf("B dial observer: %v", err)
	}
	defer bc.Close()
	line := make([]byte, 64)
	n, err := bc.Read(line)
	if err != nil {
		t.Fatalf("read observer: %v", err)
	}
	mb, err := netip.ParseAddrPort(string(line[:n-1]))
	if err != nil || mb.Addr() != ext1 {
		t.Fatalf("observer saw %q for B, want %s:port", line[:n], ext1)
	}
	var lc net.ListenConfig
	lc.Control = reuse
	var l net.Listener
	err = ns.Do(tp.B, func() error {
		var err error
		l, err = lc.Listen(ctx, "tcp4", ":6000")
		return err
	})
	if err != nil {
		t.Fatalf("B listen: %v", err)
	}
	defer l.Close()

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	ac, err := ns.DialContext(ctx, tp.A, &net.Dialer{}, "tcp4", mb.String())
	if err != nil {
		t.Fatalf("A dial MB=%s: %v", mb, err)
	}
	defer ac.Close()
	select {
	case c := <-accepted:
		defer c.Close()
		from := netip.MustParseAddrPort(c.RemoteAddr().String())
		if from.Addr() != ext1 {
			t.Errorf("B accepted a connection from %s; want A's external endpoint on %s", from, ext1)
		}
		ac.Write([]byte("ping"))
		buf := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Errorf("data through the TCP hairpin: %q %v", buf, err)
		}
	case <-ctx.Done():
		t.Fatal("B never accepted A's connection")
	}
}

// A datagram too big for one packet, hairpinned: the sender's kernel cuts
// it into fragments, gonat must turn every one of them around (the later
// ones carry no ports), and the target's kernel puts it back together.
func TestHairpinFragmentedUDP(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--preset", "full-cone", "--hairpin=true")
	a, b := udp(t, tp.A, ":5000"), udp(t, tp.B, ":5001")
	ma, mb := mapped(t, a, stunServer), mapped(t, b, stunServer)
	msg := make([]byte, 4000) // three fragments at MTU 1500
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	buf := make([]byte, 8192)
	for try := 0; try < 5; try++ {
		if _, err := a.WriteToUDPAddrPort(msg, mb); err != nil {
			t.Fatal(err)
		}
		b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, from, err := b.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if n != len(msg) || string(buf[:n]) != string(msg) || from != ma {
			t.Fatalf("B got %d bytes from %s; want the %d sent, from MA=%s", n, from, len(msg), ma)
		}
		return
	}
	t.Fatalf("B never got the fragmented datagram A sent to MB=%s", mb)
}
