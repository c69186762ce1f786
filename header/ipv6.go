package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 protocol numbers: upper layers and extension headers (IANA
// "Assigned Internet Protocol Numbers", RFC 8200 section 4).
const (
	ProtoICMPv6       = 58
	ProtoHopByHop     = 0
	ProtoRouting      = 43
	ProtoFragment     = 44
	ProtoESP          = 50
	ProtoAH           = 51
	ProtoNoNext       = 59
	ProtoDestinations = 60
)

// Sizes in bytes.
const (
	IPv6Size         = 40 // RFC 8200 section 3: a fixed header
	IPv6FragmentSize = 8  // RFC 8200 section 4.5
	ICMPv6MinSize    = 8  // RFC 4443 section 2.1: type, code, checksum and 4 bytes
	// IPv6MinMTU is the link MTU every IPv6 link carries (RFC 8200
	// section 5), and the most an ICMPv6 error may take (RFC 4443
	// section 2.4(c)).
	IPv6MinMTU = 1280
)

// IPv6 header field offsets (RFC 8200 section 3).
const (
	ip6VersTCFlow = 0
	ip6PayloadLen = 4
	ip6NextHeader = 6
	ip6HopLimit   = 7
	ip6Src        = 8
	ip6Dst        = 24
)

// IPv6 is a view of an IPv6 packet, fixed header first. The accessors
// trust the payload length: call ParsedV6.Decode first.
type IPv6 []byte

// Version is the IP version field: 6 for IPv6.
func (b IPv6) Version() uint8 { return b[ip6VersTCFlow] >> 4 }

// TrafficClass is the traffic class byte (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[ip6VersTCFlow:]) >> 4)
}

// FlowLabel is the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(b[ip6VersTCFlow:]) & 0xfffff }

// PayloadLen is the payload length field: the bytes after the fixed
// header, extension headers included.
func (b IPv6) PayloadLen() uint16 { return binary.BigEndian.Uint16(b[ip6PayloadLen:]) }

// NextHeader is the protocol of what follows the fixed header: an
// extension header or the upper layer.
func (b IPv6) NextHeader() uint8 { return b[ip6NextHeader] }

// HopLimit is the hop limit.
func (b IPv6) HopLimit() uint8 { return b[ip6HopLimit] }

// SrcBytes is the source address as it is in the packet.
func (b IPv6) SrcBytes() [16]byte { return [16]byte(b[ip6Src : ip6Src+16]) }

// DstBytes is the destination address as it is in the packet.
func (b IPv6) DstBytes() [16]byte { return [16]byte(b[ip6Dst : ip6Dst+16]) }

// Src is the source address.
func (b IPv6) Src() netip.Addr { return netip.AddrFrom16([16]byte(b[ip6Src : ip6Src+16])) }

// Dst is the destination address.
func (b IPv6) Dst() netip.Addr { return netip.AddrFrom16([16]byte(b[ip6Dst : ip6Dst+16])) }

// Payload is the bytes from the end of the fixed header to the payload
// length: link-layer padding after the packet is left out.
func (b IPv6) Payload() []byte { return b[IPv6Size : IPv6Size+int(b.PayloadLen())] }

// SetPayloadLen sets the payload length field.
func (b IPv6) SetPayloadLen(n uint16) { binary.BigEndian.PutUint16(b[ip6PayloadLen:], n) }

// SetHopLimit sets the hop limit. IPv6 has no header checksum to fix.
func (b IPv6) SetHopLimit(h uint8) { b[ip6HopLimit] = h }

// SetSrc sets the source address without fixing any checksum (use
// RewriteSrc6 for that). a must be IPv6.
func (b IPv6) SetSrc(a netip.Addr) { *(*[16]byte)(b[ip6Src : ip6Src+16]) = a.As16() }

// SetDst sets the destination address without fixing any checksum (use
// RewriteDst6 for that). a must be IPv6.
func (b IPv6) SetDst(a netip.Addr) { *(*[16]byte)(b[ip6Dst : ip6Dst+16]) = a.As16() }

// DecHopLimit decrements the hop limit, as a forwarding router does (RFC
// 8200 section 3). A hop limit of 0 is left alone rather than wrapped:
// callers drop such packets, with Time Exceeded, before forwarding.
func (b IPv6) DecHopLimit() {
	if h := b[ip6HopLimit]; h != 0 {
		b[ip6HopLimit] = h - 1
	}
}

// Fragment header fields (RFC 8200 section 4.5).
const (
	fragNextHeader = 0
	fragOffFlags   = 2
	fragIdent      = 4
	fragOffMask    = 0xfff8
	fragM          = 0x0001
)

// IPv6Fragment is a view of an IPv6 Fragment extension header: 8 bytes.
type IPv6Fragment []byte

// NextHeader is the protocol of the fragmentable part.
func (b IPv6Fragment) NextHeader() uint8 { return b[fragNextHeader] }

// Offset is the fragment offset in bytes (the field counts 8-byte units
// in its top 13 bits).
func (b IPv6Fragment) Offset() uint16 { return binary.BigEndian.Uint16(b[fragOffFlags:]) & fragOffMask }

// More reports whether the M flag (more fragments) is set.
func (b IPv6Fragment) More() bool { return binary.BigEndian.Uint16(b[fragOffFlags:])&fragM != 0 }

// Ident is the identification of the fragmented packet.
func (b IPv6Fragment) Ident() uint32 { return binary.BigEndian.Uint32(b[fragIdent:]) }

// MaxExtHeaders bounds how many extension headers WalkExtensions follows.
// RFC 8200 section 4.1 asks each to appear at most once (destination
// options twice), which makes a legitimate chain at most 7 long; the
// bound stops a hostile chain of many small headers from costing a walk
// of the whole packet.
const MaxExtHeaders = 8

// ExtChain is where WalkExtensions found the upper layer.
type ExtChain struct {
	// Proto is the upper-layer protocol: the Next Header value that is no
	// extension header WalkExtensions follows (ESP and No Next Header end
	// the walk and are reported here as they are).
	Proto uint8
	// Off is the offset of the upper-layer header from the start of the
	// buffer walked.
	Off int
	// FragOff is the offset of the Fragment header, 0 when there is none.
	FragOff int
}

// WalkExtensions follows the extension headers that start at off in b,
// the first being of type next (an IPv6 header's NextHeader, off its
// end), and reports where the upper layer starts. It follows hop-by-hop
// options (allowed only first, RFC 8200 section 4.1), routing, fragment,
// destination options and AH (RFC 4302 section 2.2: its length counts
// 4-byte words). ESP, No Next Header and any other value end the chain.
// A fragment other than the first ends it too: what follows its Fragment
// header is the middle of the fragmentable part, with no headers in it.
//
// It reports false when a header runs past len(b), hop-by-hop options
// come anywhere but first, or the chain holds more than MaxExtHeaders.
// Every header is at least 8 bytes, so the walk moves forward and stays
// within b whatever the bytes say. It does not allocate.
func WalkExtensions(b []byte, next uint8, off int) (ExtChain, bool) {
	c := ExtChain{Proto: next, Off: off}
	for i := 0; ; i++ {
		var n int
		switch c.Proto {
		case ProtoHopByHop, ProtoRouting, ProtoDestinations, ProtoAH, ProtoFragment:
		default:
			return c, true
		}
		if i == MaxExtHeaders || c.Off+8 > len(b) || (c.Proto == ProtoHopByHop && i != 0) {
			return c, false
		}
		h := b[c.Off:]
		switch c.Proto {
		case ProtoFragment:
			if c.FragOff != 0 {
				return c, false // two Fragment headers: no reassembly makes that
			}
			c.FragOff = c.Off
			c.Proto = h[fragNextHeader]
			c.Off += IPv6FragmentSize
			if IPv6Fragment(h).Offset() != 0 {
				return c, true
			}
			continue
		case ProtoAH:
			n = (int(h[1]) + 2) << 2
		default:
			n = (int(h[1]) + 1) << 3
		}
		if c.Off+n > len(b) {
			return c, false
		}
		c.Proto = h[0]
		c.Off += n
	}
}
