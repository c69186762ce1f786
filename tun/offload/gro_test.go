package offload_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

// headroom is the space a router leaves in front of each packet
// (forward.Headroom), where the virtio-net header goes.
const headroom = 16

var (
	hostA = netip.MustParseAddr("10.0.0.2")
	srv1  = netip.MustParseAddr("203.0.113.1")
)

func ap(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }

// checkSums fails t unless every checksum in b is right.
func checkSums(t *testing.T, b []byte) {
	t.Helper()
	if err := tuntest.ChecksumsValid(b); err != nil {
		t.Fatal(err)
	}
}

// inBuf puts a packet in a router-sized buffer at headroom, its
// virtio-net header before it.
func inBuf(pkt []byte, h offload.VirtioHdr) []byte {
	b := make([]byte, headroom+65535)
	h.Encode(b[headroom-offload.VirtioHdrLen:])
	copy(b[headroom:], pkt)
	return b[:headroom+len(pkt)]
}

// Consecutive datagrams of one flow become one UDP super-packet whose
// segments, cut as the kernel cuts them, are the datagrams again; other
// flows, and what cannot join, stay as they are, in order.
func TestCoalesceUDP(t *testing.T) {
	var q [][]byte
	var want [][]byte // the datagrams, payloads in order
	add := func(src, dst uint16, payload string, partial bool) {
		var b []byte
		h := offload.VirtioHdr{}
		if partial {
			b, h = tuntest.UDPPartial(ap(srv1, src), ap(hostA, dst), 63, []byte(payload))
		} else {
			b = tuntest.UDPWithTTL(ap(srv1, src), ap(hostA, dst), 63, []byte(payload))
		}
		q = append(q, inBuf(b, h))
		want = append(want, tuntest.UDPWithTTL(ap(srv1, src), ap(hostA, dst), 63, []byte(payload)))
	}
	for i := range 10 {
		add(5201, 40000, fmt.Sprintf("datagram %03d", i), i%2 == 0) // 12 bytes each
	}
	add(5201, 40000, "short", false) // shorter: ends the run, joins it
	add(5201, 40000, "datagram 999", false)
	add(53, 40001, "another flow", false)
	add(53, 40001, "another flow", false)
	tcp := tuntest.TCP(ap(srv1, 80), ap(hostA, 40002), header.TCPAck, nil)
	q = append(q, inBuf(tcp, offload.VirtioHdr{}))

	got := offload.CoalesceUDP(q, headroom)
	if len(got) != 4 {
		t.Fatalf("%d packets after coalescing, want 4 (11 + 1 + 2 datagrams, 1 TCP)", len(got))
	}
	var segs [][]byte
	for _, b := range got[:3] {
		var h offload.VirtioHdr
		h.Decode(b[headroom-offload.VirtioHdrLen:])
		pkt := b[headroom:]
		if !h.IsGSO() {
			segs = append(segs, pkt)
			continue
		}
		if h.GSOType != offload.GSOUDPL4 || h.GSOSize != 12 || h.CsumStart != 20 || h.CsumOffset != 6 || !h.NeedsCsum() {
			t.Fatalf("header %+v", h)
		}
		if !header.IPv4(pkt).ChecksumValid() {
			t.Fatal("super-packet IPv4 checksum")
		}
		checkSums(t, tuntest.DeviceFinish(pkt, h)) // the partial sum covers the whole
		for i := range h.Segments(pkt) {
			s := make([]byte, 1500)
			segs = append(segs, s[:offload.Segment(s, pkt, &h, i)])
		}
	}
	if len(segs) != len(want) {
		t.Fatalf("%d datagrams out, %d in", len(segs), len(want))
	}
	for i := range want {
		checkSums(t, segs[i])
		// The IPv4 identification is the kernel's to number; all else
		// is the datagram that went in.
		if !bytes.Equal(segs[i][20:], want[i][20:]) || !bytes.Equal(segs[i][12:20], want[i][12:20]) {
			t.Fatalf("datagram %d:\n got %x\nwant %x", i, segs[i], want[i])
		}
	}
	if !bytes.Equal(got[3][headroom:], tcp) {
		t.Fatal("the TCP packet changed")
	}
}

func TestCoalesceUDPNoAllocs(t *testing.T) {
	pkt := tuntest.UDPWithTTL(ap(srv1, 5201), ap(hostA, 40000), 63, []byte("0123456789abcdef0123456789abcdef"))
	q := make([][]byte, 16)
	for i := range q {
		q[i] = inBuf(pkt, offload.VirtioHdr{})
	}
	orig := append([][]byte(nil), q...)
	allocs := testing.AllocsPerRun(100, func() {
		copy(q, orig)
		copy(q[0][headroom-offload.VirtioHdrLen:], make([]byte, offload.VirtioHdrLen))
		copy(q[0][headroom:], pkt)
		if n := len(offload.CoalesceUDP(q, headroom)); n != 1 {
			t.Fatalf("%d packets", n)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs", allocs)
	}
}
