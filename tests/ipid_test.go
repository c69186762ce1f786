package tests

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/ns"
)

// docs/nat-requirements.md item 34 (RFC 7857 §10): A and B send fragmented datagrams to one
// server with the same IP identification, their fragments interleaved.
// Behind one external address they would reach the server as one
// (source, destination, protocol, ID) and its kernel would mix them; gonat
// renumbers non-atomic datagrams, so both arrive whole.
func TestIPIDFragmentsDoNotCollide(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT()
	server := udp(t, tp.WAN, srv1.String()+":7100")
	frags := func(src netip.Addr, fill byte) ([][]byte, []byte) {
		payload := bytes.Repeat([]byte{fill}, 3000)
		b := make([]byte, 4000)
		n := header.BuildUDP(b, header.IPv4Fields{Src: src, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: 4242},
			header.UDPFields{SrcPort: 7000, DstPort: 7100}, payload)
		return header.Fragments(b[:n], 1400), payload
	}
	fa, pa := frags(hostA, 'a')
	fb, pb := frags(hostB, 'b')
	if len(fa) < 3 || len(fa) != len(fb) {
		t.Fatalf("%d and %d fragments", len(fa), len(fb))
	}
	sa, sb := rawSocket(t, tp.A), rawSocket(t, tp.B)
	to := &syscall.SockaddrInet4{Addr: srv1.As4()}
	send := func(fd int, f []byte) {
		if err := syscall.Sendto(fd, f, 0, to); err != nil {
			t.Fatalf("send fragment: %v", err)
		}
	}
	// A's datagram all but its last fragment, then all of B's, then A's
	// last: each host has its own port (and reader) in gonat, so the
	// pauses make the server see them in that order.
	for _, f := range fa[:len(fa)-1] {
		send(sa, f)
	}
	time.Sleep(50 * time.Millisecond)
	for _, f := range fb {
		send(sb, f)
	}
	time.Sleep(50 * time.Millisecond)
	send(sa, fa[len(fa)-1])
	got := map[byte]bool{}
	buf := make([]byte, 8192)
	for len(got) < 2 {
		server.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := server.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("server got %d of 2 datagrams whole (%v): fragments of A and B mixed up", len(got), err)
		}
		if from.Addr().Unmap() != ext1 {
			t.Errorf("datagram from %s; want the external address %s", from, ext1)
		}
		switch {
		case bytes.Equal(buf[:n], pa):
			got['a'] = true
		case bytes.Equal(buf[:n], pb):
			got['b'] = true
		default:
			t.Fatalf("server got a %d-byte datagram that is neither A's nor B's", n)
		}
	}
}

// rawSocket is an IPPROTO_RAW socket (IP_HDRINCL: packets go as built,
// fragments included) in namespace n, closed when the test ends.
func rawSocket(t *testing.T, n string) int {
	t.Helper()
	fd := -1
	err := ns.Do(n, func() error {
		var err error
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		return err
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", n, err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return fd
}
