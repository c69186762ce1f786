package header

import (
	"encoding/binary"
	"net/netip"
)

// The IPv6 rewrites below are the IPv4 ones (rewrite.go) for ParsedV6,
// by the same RFC 1624 updates. IPv6 has no header checksum; instead an
// address is covered through the pseudo-header by the UDP, TCP and
// ICMPv6 checksums (RFC 8200 section 8.1), so an ICMPv6 message's
// checksum changes with its addresses too, errors included. Every field
// they change lies at an even offset (extension headers are multiples of
// 8 bytes, AH of 4), so each changed word's delta applies as is.
//
// All of them take the ParsedV6 that Decode produced from the same bytes
// and do nothing unless its Status is OK. to must hold an IPv6 address.
// A UDP checksum of 0, which IPv6 forbids outside tunnels (RFC 6935), is
// left 0 as the IPv4 rewrites leave it: the receiver decides.

// RewriteSrc6 rewrites the source address and, when p.HasPorts, the
// source port (an echo's identifier) to to, and sets p.Src (and, for an
// echo, p.Dst's port). Fragments other than the first have only their
// address rewritten. An ICMPv6 error's outer source is rewritten the same
// way, its checksum fixed for the pseudo-header; see RewriteInnerDst6
// for its quote.
func RewriteSrc6(b []byte, p *ParsedV6, to netip.AddrPort) {
	if p.Status != OK {
		return
	}
	a := to.Addr().As16()
	port := rewrite6(b, p, &a, to.Port(), ip6Src, udpSrcPort)
	p.Src = netip.AddrPortFrom(netip.AddrFrom16(a), port)
	if p.Proto == ProtoICMPv6 && p.HasPorts() {
		p.Dst = netip.AddrPortFrom(p.Dst.Addr(), port)
	}
}

// RewriteDst6 is RewriteSrc6 for the destination. For an echo it
// rewrites the identifier, the same field RewriteSrc6 rewrites.
func RewriteDst6(b []byte, p *ParsedV6, to netip.AddrPort) {
	if p.Status != OK {
		return
	}
	a := to.Addr().As16()
	port := rewrite6(b, p, &a, to.Port(), ip6Dst, udpDstPort)
	p.Dst = netip.AddrPortFrom(netip.AddrFrom16(a), port)
	if p.Proto == ProtoICMPv6 && p.HasPorts() {
		p.Src = netip.AddrPortFrom(p.Src.Addr(), port)
	}
}

// rewrite6 writes address na at addrOff of the IPv6 header and, for a
// packet with ports, port np at portOff of the UDP or TCP header (or the
// echo identifier), fixing the upper-layer checksum of a first fragment.
// It returns the port now in the packet (0 for none).
func rewrite6(b []byte, p *ParsedV6, na *[16]byte, np uint16, addrOff, portOff int) uint16 {
	f := (*[16]byte)(b[addrOff : addrOff+16])
	ad := delta128(f, na)
	*f = *na
	if p.FragOffset != 0 {
		return 0
	}
	ports := p.HasPorts()
	t := b[p.TransportOff:p.Length]
	var pd uint32
	switch p.Proto {
	case ProtoUDP:
		op := put16(t[portOff:], np)
		if c := UDP(t).Checksum(); c != 0 {
			UDP(t).SetChecksum(udpChecksumFix(applyDelta(c, ad+delta16(op, np))))
		}
	case ProtoTCP:
		op := put16(t[portOff:], np)
		TCP(t).SetChecksum(applyDelta(TCP(t).Checksum(), ad+delta16(op, np)))
	case ProtoICMPv6:
		// The pseudo-header's next header (58) is never 0, so eqn. 3
		// cannot yield the 0 that a full computation would give as
		// 0xFFFF (see zeroButChecksum): no fix-up.
		if ports {
			op := put16(t[icmpIdent:], np)
			pd = delta16(op, np)
		}
		ICMPv6(t).SetChecksum(applyDelta(ICMPv6(t).Checksum(), ad+pd))
	}
	if !ports {
		return 0
	}
	return np
}

// RewriteInnerSrc6 rewrites the source of the packet quoted by an ICMPv6
// error (p.InnerOff != 0): its address and port (or echo identifier),
// and sets p.InnerSrc. It keeps valid the quoted UDP, TCP or ICMPv6
// checksum when it lies within the quote (TCP's, at offset 16, only if
// the sender quoted that far) and the outer ICMPv6 checksum, which covers
// the whole quote. This is RFC 5508 section 4.2's translation done for
// IPv6; the outer addresses are for RewriteSrc6 and RewriteDst6.
func RewriteInnerSrc6(b []byte, p *ParsedV6, to netip.AddrPort) {
	if p.Status != OK || p.InnerOff == 0 {
		return
	}
	a := to.Addr().As16()
	port := rewriteInner6(b, p, &a, to.Port(), ip6Src, udpSrcPort)
	p.InnerSrc = netip.AddrPortFrom(netip.AddrFrom16(a), port)
	if p.InnerProto == ProtoICMPv6 {
		p.InnerDst = netip.AddrPortFrom(p.InnerDst.Addr(), port)
	}
}

// RewriteInnerDst6 is RewriteInnerSrc6 for the quoted destination.
func RewriteInnerDst6(b []byte, p *ParsedV6, to netip.AddrPort) {
	if p.Status != OK || p.InnerOff == 0 {
		return
	}
	a := to.Addr().As16()
	port := rewriteInner6(b, p, &a, to.Port(), ip6Dst, udpDstPort)
	p.InnerDst = netip.AddrPortFrom(netip.AddrFrom16(a), port)
	if p.InnerProto == ProtoICMPv6 {
		p.InnerSrc = netip.AddrPortFrom(p.InnerSrc.Addr(), port)
	}
}

// rewriteInner6 is rewrite6 for the quoted packet.
func rewriteInner6(b []byte, p *ParsedV6, na *[16]byte, np uint16, addrOff, portOff int) uint16 {
	q := b[p.InnerOff:p.Length]
	f := (*[16]byte)(q[addrOff : addrOff+16])
	ad := delta128(f, na)
	*f = *na
	outer := ad // changes the outer ICMPv6 checksum covers

	t := q[p.InnerHeaderLen:]
	pf, at := portOff, udpChecksum
	switch p.InnerProto {
	case ProtoTCP:
		at = tcpChecksum
	case ProtoICMPv6:
		pf, at = icmpIdent, icmpChecksum
	}
	op := put16(t[pf:], np)
	pd := delta16(op, np)
	outer += pd
	// A checksum cut in half by the quote is left alone: the new high
	// byte depends on the missing low one through the carries. A UDP
	// checksum of 0 (none) stays 0. The quoted ICMPv6 checksum covers
	// the quoted addresses through its pseudo-header, as UDP's and
	// TCP's do.
	if len(t) >= at+2 {
		oc := binary.BigEndian.Uint16(t[at:])
		if oc != 0 || p.InnerProto != ProtoUDP {
			nc := applyDelta(oc, ad+pd)
			if p.InnerProto == ProtoUDP {
				nc = udpChecksumFix(nc)
			}
			binary.BigEndian.PutUint16(t[at:], nc)
			outer += delta16(oc, nc)
		}
	}
	ic := ICMPv6(b[p.TransportOff:])
	ic.SetChecksum(applyDelta(ic.Checksum(), outer))
	return np
}
