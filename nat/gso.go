package nat

import (
	"encoding/binary"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/offload"
)

// Packets from a device with offloads (tun.VirtioDevice) come with a
// virtio-net header that can say two things the rest of the engine never
// sees from a plain device:
//
//   - NEEDS_CSUM: the UDP or TCP checksum field holds a partial sum, the
//     folded pseudo-header sum (not inverted), and whoever delivers the
//     packet completes it over the transport header and payload, ports
//     included (the kernel's CHECKSUM_PARTIAL; skb_checksum_help). So an
//     address change, which is in the pseudo-header, updates the partial
//     sum by RFC 1624 arithmetic without the final inversion, and a port
//     change, which is in the covered bytes, changes nothing in it.
//   - GSO: the packet is a TCP (TSO) or UDP (USO) super-packet of up to
//     64 KB, to be cut into segments of GSOSize payload bytes, each with
//     a copy of the headers. Its headers are translated once, in place;
//     the header goes on unchanged, since no header length changes.
//
// Only where a packet must leave as plain packets (a device without
// offloads, or the quote of an ICMP error) is the checksum finished or
// the super-packet segmented in software. Package offload reads the
// header and the packet's layout and does that work; the engine's part
// is translating the headers once and keeping the partial sum right.

// ProcessVirtio is Process for a packet read from a tun.VirtioDevice with
// virtio-net header h. It may change h: a partial checksum found where
// no UDP or TCP checksum sits is finished here and the flag cleared. On
// Forward, the packet goes on with h as it is now (offload.FinishCsum
// and offload.Segment make it plain for a device without offloads). An ICMP error the engine generates about a
// super-packet quotes its first segment, with complete checksums.
func (e *Engine) ProcessVirtio(in Port, b []byte, h *offload.VirtioHdr, reply []byte, now time.Time) Result {
	return e.q0.ProcessVirtio(in, b, h, reply, now)
}

// ProcessVirtio is Engine.ProcessVirtio through q.
func (q *Queue) ProcessVirtio(in Port, b []byte, h *offload.VirtioHdr, reply []byte, now time.Time) Result {
	e := q.e
	if h.Plain() {
		return q.Process(in, b, reply, now)
	}
	if len(b) > 0 && b[0]>>4 == 6 {
		return q.processVirtio6(in, b, h, reply, now)
	}
	if e.v6.Load().mode == table.IPv6NAT64 {
		return q.processVirtio64(in, b, h, reply, now)
	}
	off, ok := h.PartialCsumOffset(b)
	if !ok {
		if h.IsGSO() || !h.FinishCsumAt(b) {
			// The kernel sends neither; nothing in it can be trusted.
			pk := packet{q: q, in: in, now: now}
			pk.p.Decode(b)
			return e.drop(&pk, DropMalformed)
		}
		h.Flags &^= offload.VirtioNeedsCsum
		return q.Process(in, b, reply, now)
	}
	ip := header.IPv4(b)
	partial := binary.BigEndian.Uint16(b[off:])
	src, dst := ip.Src().As4(), ip.Dst().As4()
	segs := 1
	if in != Outside && h.IsGSO() && !ip.DontFragment() {
		// DF clear: the kernel numbers the segments ID, ID+1, ... from
		// the ID the engine gives the whole, so it takes a run of them,
		// out of the next datagrams' way.
		segs = h.Segments(b)
	}
	if aliasSource(in, b) {
		return q.dropAliasSource(in, b, now)
	}
	res := q.process(in, b, reply, now, segs, segmentWire(b, h))
	switch {
	case res.Verdict == Forward:
		// Process treated the field as a full checksum; put back the
		// partial sum with only the pseudo-header change in it.
		partial = partialUpdate(partial, src, ip.Src().As4())
		partial = partialUpdate(partial, dst, ip.Dst().As4())
		binary.BigEndian.PutUint16(b[off:], partial)
	case res.ReplyLen > 0:
		// The engine answers before it rewrites anything, so b is the
		// packet as it came; the error must quote a packet that could
		// have been on the wire: the first segment, checksums complete.
		res.ReplyLen = requote(b, h, reply, res.ReplyLen)
	}
	return res
}

// partialUpdate adjusts partial sum p for a 4-byte pseudo-header field
// changing from old to new: p + ~old + new in one's-complement
// arithmetic, which is RFC 1624 eqn. 3 without the inversions.
func partialUpdate(p uint16, old, new [4]byte) uint16 {
	return ^header.UpdateChecksum32(^p, old, new)
}

// requote rebuilds the ICMP error in reply[:n], which quotes b as it was
// read (partial checksum, and for a super-packet a total length no wire
// ever carried), so that it quotes b's first segment with complete
// checksums instead. b is turned into that segment in place: the packet
// is being dropped. It returns the error's new length.
func requote(b []byte, h *offload.VirtioHdr, reply []byte, n int) int {
	if n < header.IPv4MinSize+header.ICMPv4MinSize {
		return n
	}
	seg := offload.Segment(b, b, h, 0) // segment 0 starts where b does: in place
	if seg == 0 {
		return n
	}
	src := header.IPv4(reply).Src()
	m := header.ICMPv4(reply[header.IPv4MinSize:n])
	var mtu uint16
	switch {
	case m.Type() == header.ICMPDestUnreachable && m.Code() == header.ICMPCodeFragNeeded:
		mtu = m.MTU()
	case m.Type() == header.ICMPParamProblem:
		mtu = uint16(m[4])
	}
	typ, code := m.Type(), m.Code()
	if k := header.BuildICMPError(reply, b[:seg], src, typ, code, mtu); k > 0 {
		return k
	}
	return n
}

// processVirtio6 is ProcessVirtio for an IPv6 packet. A packet with a
// partial checksum has it finished here (the partial sum holds the
// pseudo-header already, so finishing is the same for either family) and
// goes on plain: the checksum code after the engine (package offload)
// knows IPv4 only. A super-packet goes on whole, its header unchanged, in
// the modes that change nothing its partial sum covers: routed changes no
// address, NPTv6 changes them checksum-neutrally (RFC 6296), and the hop
// limit is in no checksum; the next device segments it. The other modes
// drop it with their reasons; a kind of super-packet the kernel does not
// send is dropped as unsupported.
func (q *Queue) processVirtio6(in Port, b []byte, h *offload.VirtioHdr, reply []byte, now time.Time) Result {
	if h.IsGSO() && q.e.v6.Load().mode == table.IPv6NAT64 {
		pk := packet6{q: q, in: in, now: now, b: b}
		pk.p.Decode(b)
		pk.srcIn, pk.dstIn = pk.p.Src, pk.p.Dst
		return q.e.drop6(&pk, DropNAT64Untranslatable)
	}
	if m := q.e.v6.Load().mode; m == table.IPv6NAT66 && h.IsGSO() {
		return q.nat66Virtio(in, b, h, reply, now)
	}
	if m := q.e.v6.Load().mode; h.IsGSO() &&
		(m != table.IPv6Routed && m != table.IPv6NPTv6 || h.GSOType&^offload.GSOECN == offload.GSOTCPv6 || h.GSOType == offload.GSOUDPL4) {
		return q.process6(in, b, reply, now, segmentWire6(b, h))
	}
	if h.IsGSO() {
		pk := packet6{q: q, in: in, now: now, b: b}
		pk.p.Decode(b)
		pk.srcIn, pk.dstIn = pk.p.Src, pk.p.Dst
		return q.e.drop6(&pk, DropUnsupported)
	}
	if !h.FinishCsumAt(b) {
		pk := packet6{q: q, in: in, now: now, b: b}
		pk.p.Decode(b)
		pk.srcIn, pk.dstIn = pk.p.Src, pk.p.Dst
		return q.e.drop6(&pk, DropMalformed)
	}
	h.Flags &^= offload.VirtioNeedsCsum
	return q.process6(in, b, reply, now, 0)
}

// nat66Virtio is processVirtio6 for a super-packet in the nat66 mode,
// which changes addresses and ports: as for IPv4, the packet is
// translated once, whole, and its partial sum (which holds the
// pseudo-header, addresses included, but not the ports) takes the
// address changes only. A super-packet whose partial sum is not where
// its TCP or UDP checksum sits is dropped: the kernel sends none.
func (q *Queue) nat66Virtio(in Port, b []byte, h *offload.VirtioHdr, reply []byte, now time.Time) Result {
	var p header.ParsedV6
	p.Decode(b)
	at := -1
	switch {
	case p.Status != header.OK || !h.NeedsCsum() || int(h.CsumStart) != p.TransportOff:
	case p.Proto == header.ProtoTCP && h.GSOType&^offload.GSOECN == offload.GSOTCPv6:
		at = tcpChecksumAt
	case p.Proto == header.ProtoUDP && h.GSOType == offload.GSOUDPL4:
		at = 6 // UDP's checksum field
	}
	if at < 0 || int(h.CsumOffset) != at || p.IsFragment() {
		pk := packet6{q: q, in: in, now: now, b: b, p: p}
		pk.srcIn, pk.dstIn = p.Src, p.Dst
		return q.e.drop6(&pk, DropUnsupported)
	}
	off := p.TransportOff + at
	partial := binary.BigEndian.Uint16(b[off:])
	src, dst := [16]byte(b[8:24]), [16]byte(b[24:40])
	res := q.process6(in, b, reply, now, segmentWire6(b, h))
	if res.Verdict == Forward {
		// process6 treated the field as a full checksum; put back the
		// partial sum with only the pseudo-header change in it.
		partial = ^header.UpdateChecksum128(^partial, src, [16]byte(b[8:24]))
		partial = ^header.UpdateChecksum128(^partial, dst, [16]byte(b[24:40]))
		binary.BigEndian.PutUint16(b[off:], partial)
	}
	return res
}
