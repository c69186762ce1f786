package header

import (
	"encoding/binary"
	"net/netip"
)

// IP/ICMP translation between IPv6 and IPv4 (RFC 7915), in place, for a
// stateful NAT64 (RFC 6146): the caller picks the addresses, these
// functions rewrite the headers around the payload and keep every
// checksum right.
//
// UDP and TCP keep their ports; their checksums change by the
// pseudo-header's addresses only (RFC 1624), the payload untouched.
// ICMPv6 echo becomes ICMP echo and back, the checksum gaining or losing
// the pseudo-header ICMPv6 has and ICMPv4 lacks. An ICMP error is
// translated with the packet it quotes, whose addresses the caller
// gives too; its checksum is computed anew (an error is small). What
// RFC 7915 says to drop (ICMP types with no counterpart, fragments this
// package does not translate, a UDP datagram without checksum over
// IPv6) makes them return 0.

// Addrs4 are the IPv4 addresses a packet translated from IPv6 takes: its
// own and, in an ICMP error, those of the packet it quotes.
type Addrs4 struct{ Src, Dst, InnerSrc, InnerDst [4]byte }

// Addrs6 are Addrs4 for a packet translated from IPv4.
type Addrs6 struct{ Src, Dst, InnerSrc, InnerDst [16]byte }

// Sizes the translation adds or removes.
const (
	// NAT64Growth is how much longer than the IPv4 packet TranslateTo6
	// may make it: the fixed header difference, twice for an ICMP error
	// (its own header and its quote's).
	NAT64Growth = 2 * (IPv6Size - IPv4MinSize)
	// nat64DFAbove is the size of a translated IPv4 packet above which it
	// gets DF (RFC 7915 section 5.1): an IPv4 path may not fragment it,
	// so a too-big answer comes back to be translated.
	nat64DFAbove = 1260
)

// TranslateTo6 rewrites IPv4 packet b, decoded into p, as IPv6 in place
// with addresses a, and returns its new length: it grows by 20 bytes (40
// for an ICMP error, cut to 1280 bytes as RFC 4443 section 2.4(c) wants)
// into b's capacity. It returns 0, having changed b or not, when the
// packet cannot be translated: not OK, a fragment, a protocol other than
// UDP, TCP and ICMP echo and errors, an ICMP type RFC 7915 section 4.2
// drops, or too little capacity. IPv4 options are left out (section
// 4.1). It does not allocate.
func TranslateTo6(b []byte, p *Parsed, a *Addrs6) int {
	if p.Status != OK || p.IsFragment() || p.Length > len(b) || p.Length < p.IPHeaderLen {
		return 0
	}
	ip := IPv4(b)
	tos, ttl := ip.TOS(), ip.TTL()
	src4, dst4 := [4]byte(b[ipSrc:ipSrc+4]), [4]byte(b[ipDst:ipDst+4])
	off, end := p.IPHeaderLen, p.Length
	full := b[:cap(b)]
	if IPv6Size+end-off > len(full) {
		return 0
	}
	proto := p.IPProto
	var n int
	switch proto {
	case ProtoUDP, ProtoTCP:
		at := off + udpChecksum
		if proto == ProtoTCP {
			at = off + tcpChecksum
		}
		c := binary.BigEndian.Uint16(b[at:])
		zero := proto == ProtoUDP && c == 0
		if !zero {
			c = applyDelta(c, delta16(sum4(&src4, &dst4), sum16(&a.Src, &a.Dst)))
			if proto == ProtoUDP {
				c = udpChecksumFix(c)
			}
			binary.BigEndian.PutUint16(b[at:], c)
		}
		n = IPv6Size + copy(full[IPv6Size:], b[off:end])
		writeIPv6Header(full, tos, uint16(n-IPv6Size), proto, ttl, &a.Src, &a.Dst)
		if zero {
			// IPv6 has no UDP without checksum (RFC 8200 section 8.1): a
			// stateful translator computes it (RFC 6146 section 3.4).
			SetTransportChecksum6(IPv6(full[:n]), ProtoUDP, IPv6Size)
		}
		return n
	case ProtoICMP:
		n = icmp4to6(full, p, a)
		if n != 0 {
			writeIPv6Header(full, tos, uint16(n-IPv6Size), ProtoICMPv6, ttl, &a.Src, &a.Dst)
		}
		return n
	}
	return 0
}

// icmp4to6 translates the ICMP message of IPv4 packet b (at full
// capacity) to ICMPv6 at offset 40 and returns the IPv6 packet's length,
// its fixed header left for the caller; 0 if it is not translated.
func icmp4to6(b []byte, p *Parsed, a *Addrs6) int {
	off, end := p.IPHeaderLen, p.Length
	m := b[off:end]
	typ, code := m[icmpType], m[icmpCode]
	c := binary.BigEndian.Uint16(m[icmpChecksum:])
	if typ == ICMPEchoRequest || typ == ICMPEchoReply {
		nt := uint8(ICMPv6EchoRequest)
		if typ == ICMPEchoReply {
			nt = ICMPv6EchoReply
		}
		ph := Fold(PseudoHeaderSum6(netip.AddrFrom16(a.Src), netip.AddrFrom16(a.Dst), ProtoICMPv6, uint32(len(m))))
		m[icmpType] = nt
		binary.BigEndian.PutUint16(m[icmpChecksum:], applyDelta(c, delta16(0, ph)+delta16(typeWord(typ, code), typeWord(nt, code))))
		return IPv6Size + copy(b[IPv6Size:], m)
	}
	if !IsICMPError(typ) || p.InnerOff == 0 {
		return 0
	}
	nt, nc, rest, ok := icmpError4to6(typ, code, binary.BigEndian.Uint32(m[icmpIdent:]))
	if !ok {
		return 0
	}
	// The quote, read before anything moves over it.
	q := b[p.InnerOff:end]
	iq := IPv4(q)
	itos, ittl, ihl := iq.TOS(), iq.TTL(), p.InnerHeaderLen
	isrc, idst := [4]byte(q[ipSrc:ipSrc+4]), [4]byte(q[ipDst:ipDst+4])
	ulen := max(int(iq.TotalLen())-ihl, 0) // the quoted packet's, not the quote's
	iproto := p.InnerProto
	t := q[ihl:]
	switch iproto {
	case ProtoUDP, ProtoTCP:
		fixQuotedChecksum(t, iproto, delta16(sum4(&isrc, &idst), sum16(&a.InnerSrc, &a.InnerDst)))
	case ProtoICMP:
		nt := uint8(ICMPv6EchoRequest)
		if t[icmpType] == ICMPEchoReply {
			nt = ICMPv6EchoReply
		}
		ph := Fold(PseudoHeaderSum6(netip.AddrFrom16(a.InnerSrc), netip.AddrFrom16(a.InnerDst), ProtoICMPv6, uint32(ulen)))
		d := delta16(0, ph) + delta16(typeWord(t[icmpType], t[icmpCode]), typeWord(nt, t[icmpCode]))
		t[icmpType] = nt
		binary.BigEndian.PutUint16(t[icmpChecksum:], applyDelta(binary.BigEndian.Uint16(t[icmpChecksum:]), d))
		iproto = ProtoICMPv6
	}
	// The ICMPv6 header at 40, the quote's IPv6 header at 48 and its
	// upper layer at 88, the whole at most 1280 bytes.
	const hdr, quote, upper = IPv6Size, IPv6Size + ICMPv6MinSize, IPv6Size + ICMPv6MinSize + IPv6Size
	tn := min(len(t), IPv6MinMTU-upper, len(b)-upper)
	if tn < 8 {
		return 0
	}
	copy(b[upper:upper+tn], t[:tn])
	writeIPv6Header(b[quote:], itos, uint16(ulen), iproto, ittl, &a.InnerSrc, &a.InnerDst)
	n := upper + tn
	h := b[hdr:n]
	h[icmpType], h[icmpCode] = nt, nc
	binary.BigEndian.PutUint16(h[icmpChecksum:], 0)
	binary.BigEndian.PutUint32(h[icmpIdent:], rest)
	binary.BigEndian.PutUint16(h[icmpChecksum:], Checksum(h, PseudoHeaderSum6(netip.AddrFrom16(a.Src), netip.AddrFrom16(a.Dst), ProtoICMPv6, uint32(len(h)))))
	return n
}

// TranslateTo4 rewrites IPv6 packet b, decoded into p, as IPv4 in place
// with addresses a, and returns its new length: 20 bytes shorter, less
// any extension headers (RFC 7915 section 5.1). It returns 0, having
// changed b or not, when the packet cannot be translated: not OK, a
// fragment, a protocol other than UDP, TCP and ICMPv6 echo and errors,
// an ICMPv6 type or code section 5.2 drops, an ICMPv6 error with a bad
// checksum, or UDP with a zero checksum (invalid over IPv6). It does not
// allocate.
func TranslateTo4(b []byte, p *ParsedV6, a *Addrs4) int {
	if p.Status != OK || p.IsFragment() || p.Length > len(b) {
		return 0
	}
	ip := IPv6(b)
	tc, hop := ip.TrafficClass(), ip.HopLimit()
	src6, dst6 := ip.SrcBytes(), ip.DstBytes()
	off, end := p.TransportOff, p.Length
	if end-off+IPv4MinSize > 0xffff {
		return 0
	}
	proto := p.Proto
	var n int
	switch proto {
	case ProtoUDP, ProtoTCP:
		at := off + udpChecksum
		if proto == ProtoTCP {
			at = off + tcpChecksum
		}
		c := binary.BigEndian.Uint16(b[at:])
		if proto == ProtoUDP && c == 0 {
			return 0
		}
		c = applyDelta(c, delta16(sum16(&src6, &dst6), sum4(&a.Src, &a.Dst)))
		if proto == ProtoUDP {
			c = udpChecksumFix(c)
		}
		binary.BigEndian.PutUint16(b[at:], c)
		n = IPv4MinSize + copy(b[IPv4MinSize:], b[off:end])
	case ProtoICMPv6:
		n = icmp6to4(b, p, a, &src6, &dst6)
		proto = ProtoICMP
	}
	if n == 0 {
		return 0
	}
	writeIPv4Header(b, tc, uint16(n), hop, proto, &a.Src, &a.Dst, n > nat64DFAbove)
	return n
}

// icmp6to4 translates the ICMPv6 message of IPv6 packet b (from src6 to
// dst6) to ICMPv4 at offset 20 and returns the IPv4 packet's length, its
// header left for the caller; 0 if it is not translated.
func icmp6to4(b []byte, p *ParsedV6, a *Addrs4, src6, dst6 *[16]byte) int {
	off, end := p.TransportOff, p.Length
	m := b[off:end]
	typ, code := m[icmpType], m[icmpCode]
	c := binary.BigEndian.Uint16(m[icmpChecksum:])
	ph := PseudoHeaderSum6(netip.AddrFrom16(*src6), netip.AddrFrom16(*dst6), ProtoICMPv6, uint32(len(m)))
	if IsICMPv6Query(typ) {
		nt := uint8(ICMPEchoRequest)
		if typ == ICMPv6EchoReply {
			nt = ICMPEchoReply
		}
		m[icmpType] = nt
		binary.BigEndian.PutUint16(m[icmpChecksum:], applyDelta(c, delta16(Fold(ph), 0)+delta16(typeWord(typ, code), typeWord(nt, code))))
		return IPv4MinSize + copy(b[IPv4MinSize:], m)
	}
	if !IsICMPv6Error(typ) || p.InnerOff == 0 || Checksum(m, ph) != 0 {
		return 0
	}
	nt, nc, rest, ok := icmpError6to4(typ, code, binary.BigEndian.Uint32(m[icmpIdent:]))
	if !ok {
		return 0
	}
	q := b[p.InnerOff:end]
	iq := IPv6(q)
	itc, ihop, ihl := iq.TrafficClass(), iq.HopLimit(), p.InnerHeaderLen
	isrc, idst := iq.SrcBytes(), iq.DstBytes()
	ulen := max(int(iq.PayloadLen())-(ihl-IPv6Size), 0)
	iproto := p.InnerProto
	t := q[ihl:]
	switch iproto {
	case ProtoUDP, ProtoTCP:
		fixQuotedChecksum(t, iproto, delta16(sum16(&isrc, &idst), sum4(&a.InnerSrc, &a.InnerDst)))
	case ProtoICMPv6:
		nt := uint8(ICMPEchoRequest)
		if t[icmpType] == ICMPv6EchoReply {
			nt = ICMPEchoReply
		}
		ph := Fold(PseudoHeaderSum6(netip.AddrFrom16(isrc), netip.AddrFrom16(idst), ProtoICMPv6, uint32(ulen)))
		d := delta16(ph, 0) + delta16(typeWord(t[icmpType], t[icmpCode]), typeWord(nt, t[icmpCode]))
		t[icmpType] = nt
		binary.BigEndian.PutUint16(t[icmpChecksum:], applyDelta(binary.BigEndian.Uint16(t[icmpChecksum:]), d))
		iproto = ProtoICMP
	}
	// The ICMPv4 header at 20, the quote's IPv4 header at 28 and its
	// upper layer at 48.
	const hdr, quote, upper = IPv4MinSize, IPv4MinSize + ICMPv4MinSize, 2*IPv4MinSize + ICMPv4MinSize
	tn := copy(b[upper:], t)
	writeIPv4Header(b[quote:], itc, uint16(min(IPv4MinSize+ulen, 0xffff)), ihop, iproto, &a.InnerSrc, &a.InnerDst, false)
	n := upper + tn
	h := b[hdr:n]
	h[icmpType], h[icmpCode] = nt, nc
	binary.BigEndian.PutUint16(h[icmpChecksum:], 0)
	binary.BigEndian.PutUint32(h[icmpIdent:], rest)
	binary.BigEndian.PutUint16(h[icmpChecksum:], Checksum(h, 0))
	return n
}

// icmpError6to4 maps an ICMPv6 error's type, code and bytes 4-7 to
// ICMPv4's (RFC 7915 section 5.2), reporting false for those it drops.
func icmpError6to4(typ, code uint8, rest uint32) (uint8, uint8, uint32, bool) {
	switch typ {
	case ICMPv6DestUnreachable:
		switch code {
		case ICMPv6CodeNoRoute, 2, ICMPv6CodeAddrUnreachable: // 2: beyond scope
			return ICMPDestUnreachable, ICMPCodeHostUnreachable, 0, true
		case ICMPv6CodeAdminProhibited:
			return ICMPDestUnreachable, 10, 0, true // host administratively prohibited
		case ICMPv6CodePortUnreachable:
			return ICMPDestUnreachable, ICMPCodePortUnreachable, 0, true
		}
	case ICMPv6PacketTooBig:
		// The MTU less the header difference, in the 16 bits ICMPv4 has.
		mtu := min(max(rest, IPv6Size-IPv4MinSize)-(IPv6Size-IPv4MinSize), 0xffff)
		return ICMPDestUnreachable, ICMPCodeFragNeeded, mtu, true
	case ICMPv6TimeExceeded:
		return ICMPTimeExceeded, code, 0, true
	case ICMPv6ParamProblem:
		switch code {
		case 0: // erroneous header field: the pointer moves to the IPv4 field
			if p, ok := pointer6to4(rest); ok {
				return ICMPParamProblem, 0, uint32(p) << 24, true
			}
		case 1: // unrecognized next header
			return ICMPDestUnreachable, 2, 0, true // protocol unreachable
		}
	}
	return 0, 0, 0, false
}

// icmpError4to6 maps an ICMPv4 error's type, code and bytes 4-7 to
// ICMPv6's (RFC 7915 section 4.2), reporting false for those it drops.
func icmpError4to6(typ, code uint8, rest uint32) (uint8, uint8, uint32, bool) {
	switch typ {
	case ICMPDestUnreachable:
		switch code {
		case ICMPCodeNetUnreachable, ICMPCodeHostUnreachable, 5, 6, 7, 8, 11, 12:
			return ICMPv6DestUnreachable, ICMPv6CodeNoRoute, 0, true
		case 9, 10, ICMPCodeAdminProhibited, 15:
			return ICMPv6DestUnreachable, ICMPv6CodeAdminProhibited, 0, true
		case 2: // protocol unreachable: the pointer names the next header
			return ICMPv6ParamProblem, 1, 6, true
		case ICMPCodePortUnreachable:
			return ICMPv6DestUnreachable, ICMPv6CodePortUnreachable, 0, true
		case ICMPCodeFragNeeded:
			// The MTU plus the header difference, and no less than IPv6's
			// minimum (an old router says 0).
			return ICMPv6PacketTooBig, 0, max(rest&0xffff+IPv6Size-IPv4MinSize, IPv6MinMTU), true
		}
	case ICMPTimeExceeded:
		return ICMPv6TimeExceeded, code, 0, true
	case ICMPParamProblem:
		if code == 0 || code == 2 {
			if p, ok := pointer4to6(uint8(rest >> 24)); ok {
				return ICMPv6ParamProblem, 0, uint32(p), true
			}
		}
	}
	return 0, 0, 0, false
}

// pointer4to6 maps a Parameter Problem pointer into the IPv4 header to
// the IPv6 field it became (RFC 7915 section 4.2, figure 3).
func pointer4to6(p uint8) (uint8, bool) {
	switch {
	case p <= 1: // version/IHL, type of service
		return p, true
	case p <= 3: // total length
		return 4, true
	case p == 8: // TTL
		return 7, true
	case p == 9: // protocol
		return 6, true
	case p >= 12 && p <= 15: // source
		return 8, true
	case p >= 16 && p <= 19: // destination
		return 24, true
	}
	return 0, false
}

// pointer6to4 is pointer4to6 the other way (RFC 7915 section 5.2, figure
// 6).
func pointer6to4(p uint32) (uint8, bool) {
	switch {
	case p <= 1: // version/traffic class
		return uint8(p), true
	case p == 4 || p == 5: // payload length
		return 2, true
	case p == 6: // next header
		return 9, true
	case p == 7: // hop limit
		return 8, true
	case p >= 8 && p <= 23: // source
		return 12, true
	case p >= 24 && p <= 39: // destination
		return 16, true
	}
	return 0, false
}

// fixQuotedChecksum applies pseudo-header delta d to the checksum of the
// quoted UDP or TCP header t, where the quote holds it. A zero UDP
// checksum stays zero: the quote tells what was sent.
func fixQuotedChecksum(t []byte, proto uint8, d uint32) {
	at := udpChecksum
	if proto == ProtoTCP {
		at = tcpChecksum
	}
	if len(t) < at+2 {
		return
	}
	c := binary.BigEndian.Uint16(t[at:])
	if proto == ProtoUDP {
		if c == 0 {
			return
		}
		c = udpChecksumFix(applyDelta(c, d))
	} else {
		c = applyDelta(c, d)
	}
	binary.BigEndian.PutUint16(t[at:], c)
}

// writeIPv4Header writes a 20-byte IPv4 header at the start of b, with
// identification 0, DF as df says and its checksum.
func writeIPv4Header(b []byte, tos uint8, total uint16, ttl, proto uint8, src, dst *[4]byte, df bool) {
	h := b[:IPv4MinSize]
	h[ipVersIHL] = 4<<4 | IPv4MinSize>>2
	h[ipTOS] = tos
	binary.BigEndian.PutUint16(h[ipTotalLen:], total)
	binary.BigEndian.PutUint16(h[ipID:], 0)
	var flags uint16
	if df {
		flags = ipFlagDF
	}
	binary.BigEndian.PutUint16(h[ipFlagsFrag:], flags)
	h[ipTTL], h[ipProtocol] = ttl, proto
	binary.BigEndian.PutUint16(h[ipChecksum:], 0)
	copy(h[ipSrc:], src[:])
	copy(h[ipDst:], dst[:])
	IPv4(h).SetChecksum(IPv4(h).ComputeChecksum())
}

// writeIPv6Header writes a 40-byte IPv6 header at the start of b, with
// flow label 0.
func writeIPv6Header(b []byte, tc uint8, plen uint16, next, hop uint8, src, dst *[16]byte) {
	h := b[:IPv6Size]
	binary.BigEndian.PutUint32(h[ip6VersTCFlow:], 6<<28|uint32(tc)<<20)
	binary.BigEndian.PutUint16(h[ip6PayloadLen:], plen)
	h[ip6NextHeader], h[ip6HopLimit] = next, hop
	copy(h[ip6Src:], src[:])
	copy(h[ip6Dst:], dst[:])
}

// typeWord is an ICMP header's first word: type and code.
func typeWord(typ, code uint8) uint16 { return uint16(typ)<<8 | uint16(code) }

// sum4 is the folded sum of two IPv4 addresses' words: their part of a
// pseudo-header.
func sum4(a, b *[4]byte) uint16 { return Fold(Sum(a[:], Sum(b[:], 0))) }

// sum16 is sum4 for IPv6 addresses.
func sum16(a, b *[16]byte) uint16 { return Fold(Sum(a[:], Sum(b[:], 0))) }
