package tests

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/ns"
)

// Ping from two hosts at once with the same identifier: each gets its own
// replies (RFC 5508 REQ-1: the identifier is mapped like a port).
func TestPingSameIdentifier(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT()
	var wg sync.WaitGroup
	for _, n := range []string{tp.A, tp.B} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.PacketConn
			err := ns.Do(n, func() error {
				var err error
				c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
				return err
			})
			if err != nil {
				t.Errorf("raw socket in %s: %v", n, err)
				return
			}
			defer c.Close()
			payload := []byte("from " + n)
			var pkt [128]byte
			msg := buildEcho(pkt[:], 0x4242, 1, payload)
			dst := &net.IPAddr{IP: net.IP(srv1.AsSlice())}
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := c.WriteTo(msg, dst); err != nil {
					t.Errorf("%s: send echo: %v", n, err)
					return
				}
				buf := make([]byte, 1500)
				c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				for {
					k, _, err := c.ReadFrom(buf)
					if err != nil {
						break
					}
					ic := header.ICMPv4(buf[:k])
					if k >= 8 && ic.Type() == header.ICMPEchoReply {
						if ic.Ident() != 0x4242 || string(ic.Payload()) != string(payload) {
							t.Errorf("%s got echo reply id %#x payload %q; want id 0x4242 and its own payload", n, ic.Ident(), ic.Payload())
						}
						return
					}
				}
			}
			t.Errorf("%s: no echo reply", n)
		}()
	}
	wg.Wait()
}

// buildEcho writes an ICMP echo request message (no IP header).
func buildEcho(dst []byte, id, seq uint16, payload []byte) []byte {
	var ip [1500]byte
	n := header.BuildICMP(ip[:], header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoICMP, TTL: 64},
		header.ICMPFields{Type: header.ICMPEchoRequest, Ident: id, Seq: seq}, payload)
	return append(dst[:0], ip[20:n]...)
}

// A UDP send to a closed port in the public namespace comes back as
// ECONNREFUSED: the kernel's port unreachable, translated (RFC 5508 REQ-4).
func TestPortUnreachableTranslated(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT()
	var c *net.UDPConn
	err := ns.Do(tp.A, func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(srv1, 9)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var lastErr error
	for range 10 {
		c.Write([]byte("anyone?"))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, lastErr = c.Read(make([]byte, 16))
		if errors.Is(lastErr, syscall.ECONNREFUSED) {
			return
		}
	}
	t.Fatalf("want ECONNREFUSED from the translated ICMP port unreachable, got %v", lastErr)
}

// The NAT decrements TTL and answers TTL expiry with Time Exceeded from
// its inside address: tracepath shows it as hop 1 and then reaches the
// server (whose port unreachable is translated back).
func TestTracepathShowsNAT(t *testing.T) {
	privtest.Tool(t, "tracepath")
	tp := newTopo(t)
	tp.startNAT()
	out, err := inNS(t, 20*time.Second, tp.A, "tracepath", "-n", "-m", "3", srv1.String())
	if !strings.Contains(out, " 1:  "+gateway.String()) {
		t.Errorf("tracepath does not show the NAT (%s) as hop 1 (err %v):\n%s", gateway, err, out)
	}
	if !strings.Contains(out, "reached") {
		t.Errorf("tracepath did not reach %s (err %v):\n%s", srv1, err, out)
	}
}
