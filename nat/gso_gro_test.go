package nat

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun"
)

// headroom is the space a router leaves in front of each packet
// (forward.Headroom), where the virtio-net header goes.
const headroom = 16

// inBuf puts a packet in a router-sized buffer at headroom, its
// virtio-net header before it.
func inBuf(pkt []byte, h tun.VirtioHdr) []byte {
	b := make([]byte, headroom+65535)
	h.Encode(b[headroom-tun.VirtioHdrLen:])
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
		h := tun.VirtioHdr{}
		if partial {
			b, h = udpPartial(ap(srv1, src), ap(hostA, dst), 63, payload)
		} else {
			b = udpPkt(ap(srv1, src), ap(hostA, dst), 63, payload)
		}
		q = append(q, inBuf(b, h))
		want = append(want, udpPkt(ap(srv1, src), ap(hostA, dst), 63, payload))
	}
	for i := range 10 {
		add(5201, 40000, fmt.Sprintf("datagram %03d", i), i%2 == 0) // 12 bytes each
	}
	add(5201, 40000, "short", false) // shorter: ends the run, joins it
	add(5201, 40000, "datagram 999", false)
	add(53, 40001, "another flow", false)
	add(53, 40001, "another flow", false)
	tcp := tcpPkt(ap(srv1, 80), ap(hostA, 40002), header.TCPAck)
	q = append(q, inBuf(tcp, tun.VirtioHdr{}))

	got := CoalesceUDP(q, headroom)
	if len(got) != 4 {
		t.Fatalf("%d packets after coalescing, want 4 (11 + 1 + 2 datagrams, 1 TCP)", len(got))
	}
	var segs [][]byte
	for _, b := range got[:3] {
		var h tun.VirtioHdr
		h.Decode(b[headroom-tun.VirtioHdrLen:])
		pkt := b[headroom:]
		if !h.IsGSO() {
			segs = append(segs, pkt)
			continue
		}
		if h.GSOType != tun.GSOUDPL4 || h.GSOSize != 12 || h.CsumStart != 20 || h.CsumOffset != 6 || !h.NeedsCsum() {
			t.Fatalf("header %+v", h)
		}
		if !header.IPv4(pkt).ChecksumValid() {
			t.Fatal("super-packet IPv4 checksum")
		}
		checkSums(t, deviceFinish(pkt, h)) // the partial sum covers the whole
		for i := range NumSegments(pkt, &h) {
			s := make([]byte, 1500)
			segs = append(segs, s[:segment(s, pkt, &h, i)])
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
	pkt := udpPkt(ap(srv1, 5201), ap(hostA, 40000), 63, "0123456789abcdef0123456789abcdef")
	q := make([][]byte, 16)
	for i := range q {
		q[i] = inBuf(pkt, tun.VirtioHdr{})
	}
	orig := append([][]byte(nil), q...)
	allocs := testing.AllocsPerRun(100, func() {
		copy(q, orig)
		copy(q[0][headroom-tun.VirtioHdrLen:], make([]byte, tun.VirtioHdrLen))
		copy(q[0][headroom:], pkt)
		if n := len(CoalesceUDP(q, headroom)); n != 1 {
			t.Fatalf("%d packets", n)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs", allocs)
	}
}
