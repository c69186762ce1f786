package nat

import (
	"bytes"
	"encoding/binary"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun"
)

// A flood of small UDP datagrams costs one write syscall each, and the
// write is where the receiving kernel does its work. To a device that
// takes UDP super-packets (tun.VirtioDevice.USO), consecutive datagrams
// of one flow in a batch go as one: the first packet's buffer gets the
// others' payloads appended, and a GSOUDPL4 header tells the kernel to
// cut them apart again (generic receive offload in reverse, as the
// kernel's own UDP GRO builds them). Nothing else changes: the segments
// the kernel makes are the datagrams that went in, in order.

// groMaxSegs bounds the datagrams in one super-packet: UDP_MAX_SEGMENTS
// was 64 before Linux 6.5.
const groMaxSegs = 64

// udpGROHeader reports whether pkt (a packet at offset in its buffer,
// its virtio-net header before it) is a UDP datagram that can start or
// join a super-packet: IPv4 without options, not fragmented, not
// padded, one datagram with its checksum complete or partial in place.
// It returns the payload length.
func udpGROHeader(buf []byte, offset int) (payload int, ok bool) {
	pkt := buf[offset:]
	if len(pkt) < header.IPv4MinSize+header.UDPSize || pkt[0] != 0x45 || pkt[ipProto] != header.ProtoUDP ||
		int(binary.BigEndian.Uint16(pkt[ipTotalLen:])) != len(pkt) ||
		binary.BigEndian.Uint16(pkt[ipFlagsFrag:])&ipMFOffMask != 0 ||
		int(binary.BigEndian.Uint16(pkt[20+udpLen:])) != len(pkt)-20 {
		return 0, false
	}
	var h tun.VirtioHdr
	h.Decode(buf[offset-tun.VirtioHdrLen : offset])
	if h.IsGSO() || (h.NeedsCsum() && (h.CsumStart != 20 || h.CsumOffset != udpCsumOff)) {
		return 0, false
	}
	return len(pkt) - header.IPv4MinSize - header.UDPSize, true
}

// sameUDPFlow reports whether IPv4/UDP packets a and b (no options)
// have the same TOS, DF, TTL, protocol, addresses and ports: all the
// kernel copies into each segment.
func sameUDPFlow(a, b []byte) bool {
	return a[1] == b[1] && a[ipFlagsFrag] == b[ipFlagsFrag] && a[8] == b[8] &&
		bytes.Equal(a[12:24], b[12:24])
}

// CoalesceUDP merges runs of consecutive datagrams of one flow in q
// (each q[i] a buffer with its packet at offset, a virtio-net header
// before it, and room to grow to 65535 bytes of packet) into UDP
// super-packets, in place, and returns the shortened queue.
func CoalesceUDP(q [][]byte, offset int) [][]byte {
	out := q[:0]
	head := -1 // index in out of the super-packet being built
	var gso, segs int
	var short bool // the last segment in is shorter: nothing may follow
	for _, b := range q {
		n, ok := udpGROHeader(b, offset)
		if ok && head >= 0 && !short && segs < groMaxSegs && n <= gso && n > 0 {
			h := out[head]
			if sameUDPFlow(h[offset:], b[offset:]) && len(h)+n <= offset+0xffff && cap(h) >= len(h)+n {
				out[head] = append(h, b[offset+header.IPv4MinSize+header.UDPSize:]...)
				segs++
				short = n < gso
				continue
			}
		}
		if head >= 0 {
			finishUDPSuper(out[head], offset, gso, segs)
		}
		out = append(out, b)
		head, gso, segs, short = -1, 0, 0, false
		if ok && n > 0 {
			head, gso, segs = len(out)-1, n, 1
		}
	}
	if head >= 0 {
		finishUDPSuper(out[head], offset, gso, segs)
	}
	return out
}

// finishUDPSuper fixes the headers of a packet that had datagrams
// appended: lengths, IPv4 checksum, the partial UDP checksum of the
// whole (the kernel adjusts it per segment) and the virtio-net header.
func finishUDPSuper(b []byte, offset, gso, segs int) {
	if segs < 2 {
		return
	}
	pkt := b[offset:]
	binary.BigEndian.PutUint16(pkt[ipTotalLen:], uint16(len(pkt)))
	setIPChecksum(pkt, header.IPv4MinSize)
	ulen := uint16(len(pkt) - header.IPv4MinSize)
	binary.BigEndian.PutUint16(pkt[20+udpLen:], ulen)
	ip := header.IPv4(pkt)
	binary.BigEndian.PutUint16(pkt[20+udpCsumOff:], header.Fold(header.PseudoHeaderSum(ip.Src(), ip.Dst(), header.ProtoUDP, ulen)))
	h := tun.VirtioHdr{Flags: tun.VirtioNeedsCsum, GSOType: tun.GSOUDPL4, HdrLen: header.IPv4MinSize + header.UDPSize,
		GSOSize: uint16(gso), CsumStart: header.IPv4MinSize, CsumOffset: udpCsumOff}
	h.Encode(b[offset-tun.VirtioHdrLen : offset])
}
