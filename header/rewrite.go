package header

import (
	"encoding/binary"
	"net/netip"
)

// The rewrites below change addresses and ports in place and keep every
// checksum that covers them valid by RFC 1624 incremental updates: each
// changed 16-bit word contributes ~old + new, and each checksum is
// adjusted once by the sum of the contributions it covers. An address is
// covered by the IPv4 header checksum and, through the pseudo-header, by
// the UDP or TCP checksum; a port only by the transport checksum; an ICMP
// identifier only by the ICMP checksum, which has no pseudo-header.
//
// All of them take the Parsed that Decode produced from the same bytes
// (b may have been cut to p.Length since) and do nothing unless its
// Status is OK. to must hold an IPv4 address.

// RewriteSrc rewrites the source address and, when p.HasPorts, the source
// port (the identifier of an ICMP query) to to, and sets p.Src (and, for
// an ICMP query, p.Dst's port: the identifier is both). Fragments other
// than the first have only their address rewritten: the transport
// checksum lives in the first fragment, whose rewrite already accounted
// for the pseudo-header change. An ICMP error's outer source is rewritten
// the same way (its port is ignored); see RewriteInnerDst for its quote.
func RewriteSrc(b []byte, p *Parsed, to netip.AddrPort) {
	if p.Status != OK {
		return
	}
	a := to.Addr().As4()
	port := rewrite(b, p, a, to.Port(), ipSrc, udpSrcPort)
	p.Src = netip.AddrPortFrom(netip.AddrFrom4(a), port)
	if p.IPProto == ProtoICMP && p.HasPorts() {
		p.Dst = netip.AddrPortFrom(p.Dst.Addr(), port)
	}
}

// RewriteDst is RewriteSrc for the destination. For an ICMP query it
// rewrites the identifier, the same field RewriteSrc rewrites: replies
// carry the identifier of their request.
func RewriteDst(b []byte, p *Parsed, to netip.AddrPort) {
	if p.Status != OK {
		return
	}
	a := to.Addr().As4()
	port := rewrite(b, p, a, to.Port(), ipDst, udpDstPort)
	p.Dst = netip.AddrPortFrom(netip.AddrFrom4(a), port)
	if p.IPProto == ProtoICMP && p.HasPorts() {
		p.Src = netip.AddrPortFrom(p.Src.Addr(), port)
	}
}

// rewrite writes address na at addrOff of the IPv4 header and, for a
// packet with ports, port np at portOff of the UDP or TCP header (or the
// ICMP identifier), fixing the checksums. It returns the port now in the
// packet (0 for none).
func rewrite(b []byte, p *Parsed, na [4]byte, np uint16, addrOff, portOff int) uint16 {
	oa := *(*[4]byte)(b[addrOff : addrOff+4])
	ad := delta32(oa, na)
	*(*[4]byte)(b[addrOff : addrOff+4]) = na
	ip := IPv4(b)
	ip.SetChecksum(applyDelta(ip.Checksum(), ad))
	if !p.HasPorts() {
		return 0
	}
	t := b[p.IPHeaderLen:p.Length]
	switch p.IPProto {
	case ProtoUDP:
		op := put16(t[portOff:], np)
		if c := UDP(t).Checksum(); c != 0 {
			UDP(t).SetChecksum(udpChecksumFix(applyDelta(c, ad+delta16(op, np))))
		}
	case ProtoTCP:
		op := put16(t[portOff:], np)
		TCP(t).SetChecksum(applyDelta(TCP(t).Checksum(), ad+delta16(op, np)))
	case ProtoICMP:
		op := put16(t[icmpIdent:], np)
		c := applyDelta(ICMPv4(t).Checksum(), delta16(op, np))
		if c == 0 && !p.IsFragment() && zeroButChecksum(t) {
			c = 0xffff
		}
		ICMPv4(t).SetChecksum(c)
	}
	return np
}

// zeroButChecksum reports whether ICMP message m is all zeros but for
// its checksum field. Eqn. 3 yields +0 when the rest of the message sums
// to a multiple of 0xFFFF, which is what a full computation gives unless
// the rest is all zeros (an echo reply with identifier, sequence and
// data 0): then only -0 (0xFFFF) verifies. Only ICMP, with no
// pseudo-header, can be all zeros; callers look only when eqn. 3 gave 0,
// once in 65536 packets.
func zeroButChecksum(m []byte) bool {
	return Sum(m[:icmpChecksum], 0) == 0 && Sum(m[icmpChecksum+2:], 0) == 0
}

// put16 writes v big-endian at the start of b and returns what was there.
func put16(b []byte, v uint16) uint16 {
	old := binary.BigEndian.Uint16(b)
	binary.BigEndian.PutUint16(b, v)
	return old
}

// udpChecksumFix maps a computed UDP checksum of 0 to 0xFFFF, because a
// transmitted 0 means "no checksum" (RFC 768).
func udpChecksumFix(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}

// RewriteInnerSrc rewrites the source of the packet quoted by an ICMP
// error (p.InnerOff != 0): its address and port (or ICMP identifier),
// and sets p.InnerSrc. It keeps valid the quoted IPv4 header checksum,
// the quoted UDP or TCP checksum when it lies within the quote (UDP's
// always does; TCP's, at offset 16, only if the sender quoted more than
// the 8 bytes RFC 792 demands), the quoted ICMP checksum, and the outer
// ICMP checksum, which covers all of the above. This is the translation
// RFC 5508 section 4.2 (REQ-4) asks for; the outer addresses are for
// RewriteSrc and RewriteDst.
//
// An error coming in about a packet the NAT sent out quotes it with the
// external source; RewriteInnerSrc puts back the internal one.
func RewriteInnerSrc(b []byte, p *Parsed, to netip.AddrPort) {
	if p.Status != OK || p.InnerOff == 0 {
		return
	}
	a := to.Addr().As4()
	port := rewriteInner(b, p, a, to.Port(), ipSrc, udpSrcPort)
	p.InnerSrc = netip.AddrPortFrom(netip.AddrFrom4(a), port)
	if p.InnerProto == ProtoICMP {
		p.InnerDst = netip.AddrPortFrom(p.InnerDst.Addr(), port)
	}
}

// RewriteInnerDst is RewriteInnerSrc for the quoted destination: an
// inside host's error about a packet it received through the NAT quotes
// the internal destination, which goes back to the external one (RFC
// 5508 REQ-5).
func RewriteInnerDst(b []byte, p *Parsed, to netip.AddrPort) {
	if p.Status != OK || p.InnerOff == 0 {
		return
	}
	a := to.Addr().As4()
	port := rewriteInner(b, p, a, to.Port(), ipDst, udpDstPort)
	p.InnerDst = netip.AddrPortFrom(netip.AddrFrom4(a), port)
	if p.InnerProto == ProtoICMP {
		p.InnerSrc = netip.AddrPortFrom(p.InnerSrc.Addr(), port)
	}
}

// rewriteInner is rewrite for the quoted packet. Every field it changes
// lies at an even offset from the start of the ICMP message (the quote
// starts 8 bytes in, and IPv4 header lengths are multiples of 4), so
// each changed word adds its delta to the outer ICMP checksum as is.
func rewriteInner(b []byte, p *Parsed, na [4]byte, np uint16, addrOff, portOff int) uint16 {
	q := b[p.InnerOff:p.Length]
	oa := *(*[4]byte)(q[addrOff : addrOff+4])
	ad := delta32(oa, na)
	*(*[4]byte)(q[addrOff : addrOff+4]) = na
	outer := ad // changes the outer ICMP checksum covers

	ip := IPv4(q)
	oc := ip.Checksum()
	nc := applyDelta(oc, ad)
	ip.SetChecksum(nc)
	outer += delta16(oc, nc)

	t := q[p.InnerHeaderLen:]
	switch p.InnerProto {
	case ProtoUDP:
		op := put16(t[portOff:], np)
		pd := delta16(op, np)
		outer += pd
		if oc := UDP(t).Checksum(); oc != 0 {
			nc := udpChecksumFix(applyDelta(oc, ad+pd))
			UDP(t).SetChecksum(nc)
			outer += delta16(oc, nc)
		}
	case ProtoTCP:
		op := put16(t[portOff:], np)
		pd := delta16(op, np)
		outer += pd
		// A checksum cut in half by the quote is left alone: the new
		// high byte depends on the missing low one through the carries.
		if len(t) >= tcpChecksum+2 {
			oc := TCP(t).Checksum()
			nc := applyDelta(oc, ad+pd)
			TCP(t).SetChecksum(nc)
			outer += delta16(oc, nc)
		}
	case ProtoICMP:
		op := put16(t[icmpIdent:], np)
		pd := delta16(op, np)
		oc := ICMPv4(t).Checksum()
		nc := applyDelta(oc, pd)
		if nc == 0 {
			// As in rewrite, if the whole quoted message is here.
			n := int(ip.TotalLen()) - p.InnerHeaderLen
			if n >= ICMPv4MinSize && n <= len(t) && !ip.MoreFragments() && zeroButChecksum(t[:n]) {
				nc = 0xffff
			}
		}
		ICMPv4(t).SetChecksum(nc)
		outer += pd + delta16(oc, nc)
	}
	ic := ICMPv4(b[p.IPHeaderLen:])
	ic.SetChecksum(applyDelta(ic.Checksum(), outer))
	return np
}

// ICMPChecksumValid verifies the ICMP checksum of an ICMP packet over the
// whole message, as a NAT must before translating an error (RFC 5508
// REQ-3). It is false for a fragment, whose checksum cannot be checked
// alone, and for anything but an OK ICMP packet.
func ICMPChecksumValid(b []byte, p *Parsed) bool {
	if p.Status != OK || p.IPProto != ProtoICMP || p.IsFragment() {
		return false
	}
	return Checksum(b[p.IPHeaderLen:p.Length], 0) == 0
}

// InnerIPChecksumValid verifies the IPv4 header checksum of the packet an
// ICMP error quotes (RFC 5508 REQ-3). It is false when p has no quoted
// packet.
func InnerIPChecksumValid(b []byte, p *Parsed) bool {
	if p.Status != OK || p.InnerOff == 0 {
		return false
	}
	return Checksum(b[p.InnerOff:p.InnerOff+p.InnerHeaderLen], 0) == 0
}
