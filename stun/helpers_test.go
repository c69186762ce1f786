package stun

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	pstun "github.com/pion/stun/v3"
)

// Loopback addresses: Linux routes all of 127.0.0.0/8 to lo, so the
// server's second address needs no set-up and no root.
var (
	loA1 = netip.MustParseAddr("127.0.0.1")
	loA2 = netip.MustParseAddr("127.0.0.2")
)

// startServer runs a server on loA1/loA2 with a random port pair (retrying
// on collisions) until the test ends, and checks that Serve returns nil.
func startServer(t testing.TB) *Server {
	t.Helper()
	var (
		s   *Server
		err error
	)
	for range 50 {
		p := uint16(20000 + rand.IntN(40000))
		s, err = NewServer(ServerConfig{Primary: loA1, Alternate: loA2, Port: p, AltPort: p + 1, Logf: t.Logf})
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return s
}

// listenUDP opens a client socket on 127.0.0.1 and closes it at the end.
func listenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loA1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func localAP(c net.PacketConn) netip.AddrPort { return addrPortOf(c.LocalAddr()) }

// exchange sends b to dst and returns the first datagram that comes back
// within wait, or ok=false.
func exchange(t testing.TB, c *net.UDPConn, b []byte, dst netip.AddrPort, wait time.Duration) (resp []byte, from netip.AddrPort, ok bool) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, dst); err != nil {
		t.Fatal(err)
	}
	return receive(t, c, wait)
}

func receive(t testing.TB, c *net.UDPConn, wait time.Duration) ([]byte, netip.AddrPort, bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 65536)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, netip.AddrPort{}, false
		}
		t.Fatal(err)
	}
	return buf[:n], from, true
}

// request builds a Binding request (RFC 8489) with pion and the given
// attributes, in order.
func request(t testing.TB, attrs ...pstun.Setter) *pstun.Message {
	t.Helper()
	m, err := pstun.Build(append([]pstun.Setter{pstun.TransactionID, pstun.BindingRequest}, attrs...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rawAttr is a Setter for an arbitrary attribute.
func rawAttr(typ uint16, v []byte) pstun.Setter {
	return pstun.RawAttribute{Type: pstun.AttrType(typ), Value: v}
}

func changeAttr(c ChangeFlags) pstun.Setter {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(c))
	return rawAttr(0x0003, v)
}

func responsePortAttr(p uint16) pstun.Setter {
	return rawAttr(0x0027, []byte{byte(p >> 8), byte(p), 0, 0})
}

// classicRequest builds an RFC 3489 Binding request: 16-byte random
// transaction ID and no magic cookie (RFC 3489 §11.1), with a CHANGE-REQUEST.
func classicRequest(change ChangeFlags) (b []byte, id [16]byte) {
	for i := range id {
		id[i] = byte(rand.Uint32())
	}
	if binary.BigEndian.Uint32(id[:4]) == magicCookie {
		id[0] ^= 0xff
	}
	b = make([]byte, 20, 28)
	binary.BigEndian.PutUint16(b[0:2], 0x0001)
	binary.BigEndian.PutUint16(b[2:4], 8)
	copy(b[4:20], id[:])
	b = binary.BigEndian.AppendUint16(b, 0x0003)
	b = binary.BigEndian.AppendUint16(b, 4)
	b = binary.BigEndian.AppendUint32(b, uint32(change))
	return b, id
}

// classicAttrs walks an RFC 3489 message's attributes by hand, since pion
// refuses messages without the cookie.
func classicAttrs(t testing.TB, b []byte) map[uint16][]byte {
	t.Helper()
	if len(b) < 20 || int(binary.BigEndian.Uint16(b[2:4]))+20 != len(b) {
		t.Fatalf("bad RFC 3489 framing: % x", b)
	}
	attrs := map[uint16][]byte{}
	for rest := b[20:]; len(rest) > 0; {
		if len(rest) < 4 {
			t.Fatalf("short attribute header")
		}
		typ, l := binary.BigEndian.Uint16(rest[0:2]), int(binary.BigEndian.Uint16(rest[2:4]))
		padded := (l + 3) &^ 3
		if len(rest) < 4+padded {
			t.Fatalf("attribute 0x%04x overruns message", typ)
		}
		attrs[typ] = rest[4 : 4+l]
		rest = rest[4+padded:]
	}
	return attrs
}

// lossyConn drops the first drop datagrams written to it: a lost request.
type lossyConn struct {
	net.PacketConn
	mu      sync.Mutex
	drop    int
	dropped int
}

func (c *lossyConn) WriteTo(b []byte, a net.Addr) (int, error) {
	c.mu.Lock()
	lose := c.dropped < c.drop
	if lose {
		c.dropped++
	}
	c.mu.Unlock()
	if lose {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, a)
}
