package header

import (
	"encoding/binary"
	"net/netip"
)

// ParsedV6 is an IPv6 packet decoded once, with the offsets and 5-tuple
// the NAT needs: Parsed's counterpart. It is a type of its own rather
// than more fields in Parsed so that the IPv4 path keeps its record
// small (Parsed is copied and cleared per packet) and neither family's
// fields are there to be misread for the other: IPv6 has no header
// checksum, identification or DF bit, and an upper layer that starts
// after a chain of extension headers.
type ParsedV6 struct {
	// Status says whether the rest can be trusted. When it is not OK, the
	// fields decoded before the problem was found are set and the others
	// are zero (Src and Dst addresses are set for BadExtChain,
	// BadTransport and BadInner).
	Status Status
	// Proto is the upper-layer protocol, after the extension headers.
	Proto uint8
	// Src and Dst are the addresses and transport ports. An echo's
	// identifier is both ports. Ports are 0 where there are none: other
	// protocols, ICMPv6 errors, and fragments other than the first.
	Src, Dst netip.AddrPort
	// TransportOff is the offset of the upper-layer header: 40 plus the
	// extension headers.
	TransportOff int
	// Length is 40 plus the payload length. Bytes past it (link padding)
	// are not part of the packet.
	Length int
	// HopLimit is the hop limit.
	HopLimit uint8
	// FragHdrOff is the offset of the Fragment header, 0 when there is
	// none; FragID, FragOffset (in bytes) and MoreFrags are its fields.
	FragHdrOff int
	FragID     uint32
	FragOffset uint16
	MoreFrags  bool
	// TCPFlags is the TCP flags byte of a TCP first fragment.
	TCPFlags uint8
	// ICMPType and ICMPCode are set for an ICMPv6 first fragment only.
	ICMPType, ICMPCode uint8

	// The Inner fields describe the packet an ICMPv6 error quotes
	// (IsICMPv6Error), and are set only when Status is OK.

	// InnerOff is the offset of the quoted IPv6 header in the packet
	// (always TransportOff+8), or 0 when there is no usable quote.
	InnerOff int
	// InnerHeaderLen is the quoted packet's fixed and extension headers'
	// length; at least 8 bytes of its upper-layer header follow.
	InnerHeaderLen int
	// InnerProto is the quoted packet's upper-layer protocol: UDP, TCP
	// or ICMPv6 (then an echo).
	InnerProto uint8
	// InnerSrc and InnerDst are the quoted packet's addresses and ports
	// (an echo's identifier in both).
	InnerSrc, InnerDst netip.AddrPort
}

// Decode decodes the IPv6 packet at the start of b into p, overwriting
// all of p. It never panics and never allocates, whatever b holds. It
// checks lengths, not checksums, as Parsed.Decode does.
//
// Ports are read only from first fragments whose upper-layer header is
// complete (RFC 8200 section 4.5 and RFC 7112 put the whole header chain
// in the first fragment); a first fragment too short for one is
// BadTransport.
func (p *ParsedV6) Decode(b []byte) {
	*p = ParsedV6{}
	if len(b) == 0 {
		p.Status = Truncated
		return
	}
	if b[ip6VersTCFlow]>>4 != 6 {
		p.Status = BadVersion
		return
	}
	if len(b) < IPv6Size {
		p.Status = Truncated
		return
	}
	pl := int(binary.BigEndian.Uint16(b[ip6PayloadLen:]))
	if pl == 0 && b[ip6NextHeader] == ProtoHopByHop {
		p.Status = BadPayloadLen
		return
	}
	if IPv6Size+pl > len(b) {
		p.Status = Truncated
		return
	}
	p.Length = IPv6Size + pl
	p.HopLimit = b[ip6HopLimit]
	src := netip.AddrFrom16([16]byte(b[ip6Src : ip6Src+16]))
	dst := netip.AddrFrom16([16]byte(b[ip6Dst : ip6Dst+16]))
	p.Src = netip.AddrPortFrom(src, 0)
	p.Dst = netip.AddrPortFrom(dst, 0)
	pkt := b[:p.Length]
	c, ok := WalkExtensions(pkt, b[ip6NextHeader], IPv6Size)
	if c.FragOff != 0 {
		f := IPv6Fragment(pkt[c.FragOff:])
		p.FragHdrOff = c.FragOff
		p.FragID = f.Ident()
		p.FragOffset = f.Offset()
		p.MoreFrags = f.More()
	}
	if !ok {
		p.Status = BadExtChain
		return
	}
	p.Proto = c.Proto
	p.TransportOff = c.Off
	if p.FragOffset != 0 {
		return
	}
	t := pkt[c.Off:]
	switch p.Proto {
	case ProtoUDP, ProtoTCP:
		if !transportHeaderOK(t, p.Proto, p.MoreFrags) {
			p.Status = BadTransport
			return
		}
		if p.Proto == ProtoTCP {
			p.TCPFlags = t[tcpFlags]
		}
		// Same offsets in both.
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(t[udpSrcPort:]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(t[udpDstPort:]))
	case ProtoICMPv6:
		if len(t) < ICMPv6MinSize {
			p.Status = BadTransport
			return
		}
		p.ICMPType = t[icmpType]
		p.ICMPCode = t[icmpCode]
		switch {
		case IsICMPv6Query(p.ICMPType):
			id := binary.BigEndian.Uint16(t[icmpIdent:])
			p.Src = netip.AddrPortFrom(src, id)
			p.Dst = netip.AddrPortFrom(dst, id)
		case IsICMPv6Error(p.ICMPType):
			// An error in fragments cannot be translated alone: its
			// checksum covers the whole message.
			if p.MoreFrags || !p.decodeInner(t[ICMPv6MinSize:]) {
				p.Status = BadInner
				return
			}
			p.InnerOff = c.Off + ICMPv6MinSize
		}
	}
}

// decodeInner decodes the packet quoted by an ICMPv6 error into p's
// Inner fields, except InnerOff, and reports whether it can be
// translated: an IPv6 packet whose header chain is all there, not a later
// fragment, with 8 bytes of a UDP, TCP or echo header. The quoted payload
// length is not checked: it describes the original packet, not the
// quote.
func (p *ParsedV6) decodeInner(q []byte) bool {
	if len(q) < IPv6Size || q[ip6VersTCFlow]>>4 != 6 {
		return false
	}
	c, ok := WalkExtensions(q, q[ip6NextHeader], IPv6Size)
	if !ok || c.Off+8 > len(q) {
		return false
	}
	if c.FragOff != 0 && IPv6Fragment(q[c.FragOff:]).Offset() != 0 {
		return false
	}
	t := q[c.Off:]
	sp, dp, ok := quotedPorts(t, c.Proto, ProtoICMPv6, IsICMPv6Query(t[icmpType]))
	if !ok {
		return false
	}
	p.InnerHeaderLen = c.Off
	p.InnerProto = c.Proto
	p.InnerSrc = netip.AddrPortFrom(netip.AddrFrom16([16]byte(q[ip6Src:ip6Src+16])), sp)
	p.InnerDst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(q[ip6Dst:ip6Dst+16])), dp)
	return true
}

// IsFirstFragment reports whether the packet starts its datagram
// (fragment offset 0), which is also true of unfragmented packets: only
// these carry the upper-layer header.
func (p *ParsedV6) IsFirstFragment() bool { return p.FragOffset == 0 }

// IsFragment reports whether the packet has a Fragment header that makes
// it part of a larger one: M set or a non-zero offset. An atomic
// fragment (RFC 6946: offset 0, M clear) is not.
func (p *ParsedV6) IsFragment() bool { return p.MoreFrags || p.FragOffset != 0 }

// HasPorts reports whether Src and Dst carry ports the NAT can map: a
// UDP or TCP first fragment, or an echo, that decoded OK.
func (p *ParsedV6) HasPorts() bool {
	if p.Status != OK || p.FragOffset != 0 {
		return false
	}
	switch p.Proto {
	case ProtoUDP, ProtoTCP:
		return true
	case ProtoICMPv6:
		return IsICMPv6Query(p.ICMPType)
	}
	return false
}

// Flow6 is Flow for IPv6: what Decode puts in Proto, Src and Dst for a
// packet that HasPorts (UDP, TCP or an echo, not a later fragment),
// reading only the bytes that name its flow and the extension headers
// before them, and ok false for every other packet.
func Flow6(b []byte) (proto uint8, src, dst netip.AddrPort, ok bool) {
	if len(b) < IPv6Size || b[ip6VersTCFlow]>>4 != 6 {
		return 0, src, dst, false
	}
	end := IPv6Size + int(binary.BigEndian.Uint16(b[ip6PayloadLen:]))
	if end > len(b) {
		return 0, src, dst, false
	}
	pkt := b[:end]
	// A jumbogram's hop-by-hop header cannot fit in a payload length of
	// 0, so the walk refuses it as Decode does.
	c, walked := WalkExtensions(pkt, b[ip6NextHeader], IPv6Size)
	more := false
	if c.FragOff != 0 {
		f := IPv6Fragment(pkt[c.FragOff:])
		if f.Offset() != 0 {
			return 0, src, dst, false
		}
		more = f.More()
	}
	if !walked {
		return 0, src, dst, false
	}
	t := pkt[c.Off:]
	var sp, dp uint16
	switch c.Proto {
	case ProtoUDP:
		if len(t) < UDPSize {
			return 0, src, dst, false
		}
		if l := int(binary.BigEndian.Uint16(t[udpLength:])); l < UDPSize || (l > len(t) && !more) {
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
	case ProtoICMPv6:
		if len(t) < ICMPv6MinSize || !IsICMPv6Query(t[icmpType]) {
			return 0, src, dst, false
		}
		sp = binary.BigEndian.Uint16(t[icmpIdent:])
		dp = sp
	default:
		return 0, src, dst, false
	}
	src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[ip6Src:ip6Src+16])), sp)
	dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[ip6Dst:ip6Dst+16])), dp)
	return c.Proto, src, dst, true
}
