package header

import (
	"encoding/binary"
	"net/netip"
)

// Status is Decode's verdict on a packet. Anything but OK means the packet
// must not be forwarded: its offsets could not be trusted.
type Status uint8

// Decode results, in the order Parsed.Decode checks them; the last two
// are ParsedV6.Decode's alone.
const (
	// OK: a well-formed IPv4 packet; every offset in Parsed is in bounds.
	OK Status = iota
	// Truncated: the buffer ends before the IPv4 header, or before the
	// header length or total length says the packet ends.
	Truncated
	// BadVersion: not IPv4.
	BadVersion
	// BadHeaderLen: IHL below 5.
	BadHeaderLen
	// BadTotalLen: total length smaller than the header length.
	BadTotalLen
	// BadTransport: a first fragment too short for its UDP, TCP or ICMP
	// header, or a TCP data offset below 20 bytes or past the end.
	BadTransport
	// BadInner: an ICMP error (IsICMPError) whose quoted packet cannot be
	// translated: not IPv4, header cut short, fewer than 8 bytes of its
	// transport header, a non-first fragment, or a protocol other than
	// UDP, TCP and ICMP queries. RFC 792 and RFC 1122 section 3.2.2 make
	// the sender quote the header and at least 8 bytes of a first
	// fragment, and never about an ICMP error. For IPv6 (ParsedV6), the
	// same of an ICMPv6 error's quote, its extension headers included.
	BadInner
	// BadPayloadLen: IPv6 only; a payload length of 0 before hop-by-hop
	// options, which marks a jumbogram (RFC 2675): no link gonat serves
	// carries one. A payload length past the buffer is Truncated.
	BadPayloadLen
	// BadExtChain: IPv6 only; an extension header runs past the packet,
	// hop-by-hop options come anywhere but first, two Fragment headers,
	// or more than MaxExtHeaders of them (WalkExtensions).
	BadExtChain
)

var statusNames = [...]string{
	OK:            "ok",
	Truncated:     "truncated",
	BadVersion:    "bad-version",
	BadHeaderLen:  "bad-header-length",
	BadTotalLen:   "bad-total-length",
	BadTransport:  "bad-transport-header",
	BadInner:      "bad-inner-packet",
	BadPayloadLen: "bad-payload-length",
	BadExtChain:   "bad-extension-chain",
}

// String names the status; it does not allocate.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown-status"
}

// Parsed is a packet decoded once, with the offsets and 5-tuple the NAT
// needs. Decode fills it; the Rewrite functions keep it in step with the
// bytes they change. It holds no reference to the packet.
type Parsed struct {
	// Status says whether the rest can be trusted. When it is not OK, the
	// fields decoded before the problem was found are set and the others
	// are zero (Src and Dst addresses are set from BadTransport on).
	Status Status
	// IPProto is the IPv4 protocol field.
	IPProto uint8
	// Src and Dst are the addresses and transport ports. An ICMP query's
	// identifier is both ports (RFC 5508 section 3; the identifier
	// names the flow both ways). Ports are 0 where there are none: other
	// protocols, ICMP errors, and fragments other than the first.
	Src, Dst netip.AddrPort
	// IPHeaderLen is the IPv4 header length: the transport header starts
	// here.
	IPHeaderLen int
	// Length is the IPv4 total length. Bytes past it (link padding) are
	// not part of the packet.
	Length int
	// TTL is the time to live.
	TTL uint8
	// ID is the identification field.
	ID uint16
	// FragOffset is the fragment offset in bytes.
	FragOffset uint16
	// MoreFrags and DontFrag are the MF and DF flags.
	MoreFrags, DontFrag bool
	// TCPFlags is the TCP flags byte of a TCP first fragment.
	TCPFlags uint8
	// ICMPType and ICMPCode are set for an ICMP first fragment only; a
	// later fragment leaves them 0, which is also ICMPEchoReply, so look
	// at IsFirstFragment first.
	ICMPType, ICMPCode uint8

	// The Inner fields describe the packet an ICMP error (IsICMPError)
	// quotes, and are set only when Status is OK.

	// InnerOff is the offset of the quoted IPv4 header in the packet
	// (always IPHeaderLen+8), or 0 when there is no usable quote.
	InnerOff int
	// InnerHeaderLen is the quoted IPv4 header's length; at least 8 bytes
	// of its transport header follow it.
	InnerHeaderLen int
	// InnerProto is the quoted packet's protocol: UDP, TCP or ICMP (then
	// a query).
	InnerProto uint8
	// InnerSrc and InnerDst are the quoted packet's addresses and ports
	// (an ICMP query's identifier in both).
	InnerSrc, InnerDst netip.AddrPort
}

// Decode decodes the IPv4 packet at the start of b into p, overwriting all
// of p. It never panics and never allocates, whatever b holds. It checks
// lengths, not checksums: the rewrites keep a bad checksum bad, so the
// receiver still drops a corrupted packet. ICMP errors are the exception
// the NAT must verify (RFC 5508 REQ-3): see ICMPChecksumValid and
// InnerIPChecksumValid.
//
// Ports are read only from first fragments (FragOffset 0) whose transport
// header is complete; a first fragment too short for one is BadTransport.
func (p *Parsed) Decode(b []byte) {
	*p = Parsed{}
	if len(b) == 0 {
		p.Status = Truncated
		return
	}
	if b[ipVersIHL]>>4 != 4 {
		p.Status = BadVersion
		return
	}
	if len(b) < IPv4MinSize {
		p.Status = Truncated
		return
	}
	hl := int(b[ipVersIHL]&0x0f) << 2
	if hl < IPv4MinSize {
		p.Status = BadHeaderLen
		return
	}
	if hl > len(b) {
		p.Status = Truncated
		return
	}
	tl := int(binary.BigEndian.Uint16(b[ipTotalLen:]))
	if tl < hl {
		p.Status = BadTotalLen
		return
	}
	if tl > len(b) {
		p.Status = Truncated
		return
	}
	frag := binary.BigEndian.Uint16(b[ipFlagsFrag:])
	p.IPProto = b[ipProtocol]
	p.IPHeaderLen = hl
	p.Length = tl
	p.TTL = b[ipTTL]
	p.ID = binary.BigEndian.Uint16(b[ipID:])
	p.FragOffset = (frag & ipFragOffMask) << 3
	p.MoreFrags = frag&ipFlagMF != 0
	p.DontFrag = frag&ipFlagDF != 0
	src := netip.AddrFrom4([4]byte(b[ipSrc : ipSrc+4]))
	dst := netip.AddrFrom4([4]byte(b[ipDst : ipDst+4]))
	p.Src = netip.AddrPortFrom(src, 0)
	p.Dst = netip.AddrPortFrom(dst, 0)
	if p.FragOffset != 0 {
		// No transport header in this fragment.
		return
	}
	t := b[hl:tl]
	switch p.IPProto {
	case ProtoUDP, ProtoTCP:
		if !transportHeaderOK(t, p.IPProto, p.MoreFrags) {
			p.Status = BadTransport
			return
		}
		if p.IPProto == ProtoTCP {
			p.TCPFlags = t[tcpFlags]
		}
		// Same offsets in both.
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(t[udpSrcPort:]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(t[udpDstPort:]))
	case ProtoICMP:
		if len(t) < ICMPv4MinSize {
			p.Status = BadTransport
			return
		}
		p.ICMPType = t[icmpType]
		p.ICMPCode = t[icmpCode]
		switch {
		case IsICMPQuery(p.ICMPType):
			id := binary.BigEndian.Uint16(t[icmpIdent:])
			p.Src = netip.AddrPortFrom(src, id)
			p.Dst = netip.AddrPortFrom(dst, id)
		case IsICMPError(p.ICMPType):
			if !p.decodeInner(b[hl+ICMPv4MinSize : tl]) {
				p.Status = BadInner
				return
			}
			p.InnerOff = hl + ICMPv4MinSize
		}
	}
}

// transportHeaderOK reports whether t starts with a whole UDP or TCP
// (proto) header the NAT can read ports from, in either IP version. The
// UDP length covers the header and the datagram: never under 8, and
// within the packet unless later fragments (more) carry the rest;
// shorter than the packet is padding, which receivers trim.
func transportHeaderOK(t []byte, proto uint8, more bool) bool {
	if proto == ProtoUDP {
		if len(t) < UDPSize {
			return false
		}
		l := int(binary.BigEndian.Uint16(t[udpLength:]))
		return l >= UDPSize && (l <= len(t) || more)
	}
	if len(t) < TCPMinSize {
		return false
	}
	off := TCP(t).DataOffset()
	return off >= TCPMinSize && off <= len(t)
}

// quotedPorts reads the ports of the upper-layer header t of a packet an
// ICMP error quotes (at least 8 bytes of it): a UDP or TCP header, or an
// echo (whose identifier stands for both ports) when proto is icmp, the
// family's ICMP, and isEcho says t holds a query. ok is false for
// anything else, which the NAT cannot translate.
func quotedPorts(t []byte, proto, icmp uint8, isEcho bool) (sp, dp uint16, ok bool) {
	switch proto {
	case ProtoUDP, ProtoTCP:
		// Same offsets in both.
		return binary.BigEndian.Uint16(t[udpSrcPort:]), binary.BigEndian.Uint16(t[udpDstPort:]), true
	case icmp:
		if !isEcho {
			return 0, 0, false
		}
		id := binary.BigEndian.Uint16(t[icmpIdent:])
		return id, id, true
	}
	return 0, 0, false
}

// decodeInner decodes the packet quoted by an ICMP error into p's Inner
// fields, except InnerOff, and reports whether it can be translated.
func (p *Parsed) decodeInner(q []byte) bool {
	if len(q) < IPv4MinSize || q[ipVersIHL]>>4 != 4 {
		return false
	}
	hl := int(q[ipVersIHL]&0x0f) << 2
	// The quoted total length is not checked: it describes the original
	// packet, not the quote, and some stacks are known to mangle it.
	if hl < IPv4MinSize || hl+8 > len(q) {
		return false
	}
	if binary.BigEndian.Uint16(q[ipFlagsFrag:])&ipFragOffMask != 0 {
		return false
	}
	t := q[hl:]
	sp, dp, ok := quotedPorts(t, q[ipProtocol], ProtoICMP, IsICMPQuery(t[icmpType]))
	if !ok {
		return false
	}
	p.InnerHeaderLen = hl
	p.InnerProto = q[ipProtocol]
	p.InnerSrc = netip.AddrPortFrom(netip.AddrFrom4([4]byte(q[ipSrc:ipSrc+4])), sp)
	p.InnerDst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(q[ipDst:ipDst+4])), dp)
	return true
}

// IsFirstFragment reports whether the packet starts its datagram
// (fragment offset 0), which is also true of unfragmented packets: only
// these carry the transport header.
func (p *Parsed) IsFirstFragment() bool { return p.FragOffset == 0 }

// IsFragment reports whether the packet is part of a fragmented datagram:
// MF set or a non-zero offset.
func (p *Parsed) IsFragment() bool { return p.MoreFrags || p.FragOffset != 0 }

// HasPorts reports whether Src and Dst carry ports the NAT can map: a
// UDP or TCP first fragment, or an ICMP query, that decoded OK.
func (p *Parsed) HasPorts() bool {
	if p.Status != OK || p.FragOffset != 0 {
		return false
	}
	switch p.IPProto {
	case ProtoUDP, ProtoTCP:
		return true
	case ProtoICMP:
		return IsICMPQuery(p.ICMPType)
	}
	return false
}

// Flow returns what Decode puts in IPProto, Src and Dst for a packet
// that carries ports (HasPorts: UDP, TCP or an ICMP query, not a later
// fragment), reading only the bytes that name its flow, and ok false
// for every other packet. It is for a lookahead that wants only the
// flow of each packet in a batch (the engine's prefetch pass), where
// Decode's full record costs more than the lookahead saves.
func Flow(b []byte) (proto uint8, src, dst netip.AddrPort, ok bool) {
	if len(b) < IPv4MinSize || b[ipVersIHL]>>4 != 4 {
		return 0, src, dst, false
	}
	hl := int(b[ipVersIHL]&0x0f) << 2
	tl := int(binary.BigEndian.Uint16(b[ipTotalLen:]))
	if hl < IPv4MinSize || tl < hl || tl > len(b) ||
		binary.BigEndian.Uint16(b[ipFlagsFrag:])&ipFragOffMask != 0 {
		return 0, src, dst, false
	}
	t := b[hl:tl]
	var sp, dp uint16
	switch proto = b[ipProtocol]; proto {
	case ProtoUDP:
		if len(t) < UDPSize {
			return 0, src, dst, false
		}
		// Decode's length check: a packet it finds BadTransport has no flow.
		l := int(binary.BigEndian.Uint16(t[udpLength:]))
		if l < UDPSize || (l > len(t) && binary.BigEndian.Uint16(b[ipFlagsFrag:])&ipFlagMF == 0) {
			return 0, src, dst, false
		}
		sp, dp = binary.BigEndian.Uint16(t[udpSrcPort:]), binary.BigEndian.Uint16(t[udpDstPort:])
	case ProtoTCP:
		if len(t) < TCPMinSize {
			return 0, src, dst, false
		}
		if off := TCP(t).DataOffset(); off < TCPMinSize || off > len(t) {
			return 0, src, dst, false
		}
		sp, dp = binary.BigEndian.Uint16(t[tcpSrcPort:]), binary.BigEndian.Uint16(t[tcpDstPort:])
	case ProtoICMP:
		if len(t) < ICMPv4MinSize || !IsICMPQuery(t[icmpType]) {
			return 0, src, dst, false
		}
		sp = binary.BigEndian.Uint16(t[icmpIdent:])
		dp = sp
	default:
		return 0, src, dst, false
	}
	src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[ipSrc:ipSrc+4])), sp)
	dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[ipDst:ipDst+4])), dp)
	return proto, src, dst, true
}
