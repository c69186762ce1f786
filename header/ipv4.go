// Package header reads and rewrites IPv4 and IPv6 packets (UDP, TCP,
// ICMPv4 and ICMPv6 above them) in place, for gonat's per-packet path.
//
// Headers are views: IPv4, UDP, TCP and ICMPv4 are []byte with accessors
// and no bounds checks beyond Go's own, so a packet is decoded once with
// Parsed.Decode, which checks every length, and the views are used only
// at offsets it vouched for. The NAT rewrites (RewriteSrc and friends)
// keep every checksum valid with RFC 1624 incremental updates instead of
// recomputing them. Nothing on the per-packet path allocates.
//
// IPv6 has the same shape beside it: IPv6, IPv6Fragment and ICMPv6 views,
// ParsedV6.Decode, and the RewriteSrc6 family.
package header

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)

// Minimum header sizes in bytes.
const (
	IPv4MinSize   = 20 // RFC 791: IHL 5
	UDPSize       = 8  // RFC 768
	TCPMinSize    = 20 // RFC 9293: data offset 5
	ICMPv4MinSize = 8  // RFC 792: type, code, checksum and 4 bytes
)

// IPv4 header field offsets (RFC 791 section 3.1).
const (
	ipVersIHL   = 0
	ipTOS       = 1
	ipTotalLen  = 2
	ipID        = 4
	ipFlagsFrag = 6
	ipTTL       = 8
	ipProtocol  = 9
	ipChecksum  = 10
	ipSrc       = 12
	ipDst       = 16
)

// Flags and fragment offset field (RFC 791 section 3.1).
const (
	ipFlagDF      = 0x4000
	ipFlagMF      = 0x2000
	ipFragOffMask = 0x1fff
)

// IPv4 is a view of an IPv4 packet, header first. The accessors trust the
// header length and total length fields: call Parsed.Decode first.
type IPv4 []byte

// Version is the IP version field: 4 for IPv4.
func (b IPv4) Version() uint8 { return b[ipVersIHL] >> 4 }

// TOS is the type of service byte (DSCP and ECN).
func (b IPv4) TOS() uint8 { return b[ipTOS] }

// HeaderLen is the header length in bytes (IHL * 4).
func (b IPv4) HeaderLen() int { return int(b[ipVersIHL]&0x0f) << 2 }

// TotalLen is the total length field: header plus payload, in bytes.
func (b IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(b[ipTotalLen:]) }

// ID is the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipID:]) }

// DontFragment reports whether the DF flag is set.
func (b IPv4) DontFragment() bool { return binary.BigEndian.Uint16(b[ipFlagsFrag:])&ipFlagDF != 0 }

// MoreFragments reports whether the MF flag is set.
func (b IPv4) MoreFragments() bool { return binary.BigEndian.Uint16(b[ipFlagsFrag:])&ipFlagMF != 0 }

// FragmentOffset is the fragment offset in bytes (the field counts 8-byte
// units).
func (b IPv4) FragmentOffset() uint16 {
	return (binary.BigEndian.Uint16(b[ipFlagsFrag:]) & ipFragOffMask) << 3
}

// IsFragment reports whether the packet is a fragment: MF set or a
// fragment offset other than 0.
func (b IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(b[ipFlagsFrag:])&(ipFlagMF|ipFragOffMask) != 0
}

// TTL is the time to live.
func (b IPv4) TTL() uint8 { return b[ipTTL] }

// Protocol is the protocol number of the payload.
func (b IPv4) Protocol() uint8 { return b[ipProtocol] }

// Checksum is the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipChecksum:]) }

// Src is the source address.
func (b IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(b[ipSrc : ipSrc+4])) }

// Dst is the destination address.
func (b IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(b[ipDst : ipDst+4])) }

// Payload is the bytes from the end of the header to the total length:
// link-layer padding after the packet is left out.
func (b IPv4) Payload() []byte { return b[b.HeaderLen():b.TotalLen()] }

// SetTTL sets the time to live without fixing the checksum; DecTTL fixes it.
func (b IPv4) SetTTL(ttl uint8) { b[ipTTL] = ttl }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[ipChecksum:], c) }

// SetTotalLen sets the total length field without fixing the checksum.
func (b IPv4) SetTotalLen(n uint16) { binary.BigEndian.PutUint16(b[ipTotalLen:], n) }

// SetID sets the identification field without fixing the checksum.
func (b IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(b[ipID:], id) }

// SetSrc sets the source address without fixing any checksum (use
// RewriteSrc for that). a must be IPv4.
func (b IPv4) SetSrc(a netip.Addr) { *(*[4]byte)(b[ipSrc : ipSrc+4]) = a.As4() }

// SetDst sets the destination address without fixing any checksum (use
// RewriteDst for that). a must be IPv4.
func (b IPv4) SetDst(a netip.Addr) { *(*[4]byte)(b[ipDst : ipDst+4]) = a.As4() }

// ComputeChecksum computes the header checksum as if the checksum field
// were zero, the way a sender fills it in (RFC 791).
func (b IPv4) ComputeChecksum() uint16 {
	hl := b.HeaderLen()
	return ^Fold(Sum(b[ipSrc:hl], Sum(b[:ipChecksum], 0)))
}

// ChecksumValid reports whether the header checksum is correct (RFC 1812
// §5.2.2: a router verifies it on every packet). b must hold the whole
// header.
func (b IPv4) ChecksumValid() bool {
	// The usual header, without options, in three loads. The words are
	// read in the machine's order: a one's-complement sum of byte-swapped
	// words is the byte-swapped sum (RFC 1071 §2(B)), and a correct
	// header sums to 0xffff either way. The header length is read from
	// the first load, so that it stays one load.
	if len(b) >= IPv4MinSize {
		x0 := binary.LittleEndian.Uint64(b[0:])
		if hl := int(x0&0x0f) << 2; hl != IPv4MinSize {
			return Checksum(b[:hl], 0) == 0
		}
		s, c := bits.Add64(x0, binary.LittleEndian.Uint64(b[8:]), 0)
		s, c = bits.Add64(s, uint64(binary.LittleEndian.Uint32(b[16:])), c)
		s += c // no overflow: with a carry out, s < 2^32+1
		s = s>>32 + s&0xffffffff
		s = s>>32 + s&0xffffffff
		return Fold(uint32(s)) == 0xffff
	}
	return Checksum(b[:b.HeaderLen()], 0) == 0
}

// RewriteID sets the identification field, fixing the header checksum
// (RFC 1624), and records it in p.
func RewriteID(b []byte, p *Parsed, id uint16) {
	ip := IPv4(b)
	ip.SetChecksum(UpdateChecksum16(ip.Checksum(), ip.ID(), id))
	ip.SetID(id)
	p.ID = id
}

// DecTTL decrements the TTL and updates the header checksum for it
// incrementally (RFC 1624; RFC 1812 section 5.3.1 requires the forwarding
// router to do both). A TTL of 0 is left alone rather than wrapped to
// 255: callers drop such packets, with Time Exceeded, before forwarding.
func (b IPv4) DecTTL() {
	ttl := b[ipTTL]
	if ttl == 0 {
		return
	}
	// TTL is the high byte of the word it shares with the protocol.
	old := uint16(ttl)<<8 | uint16(b[ipProtocol])
	b[ipTTL] = ttl - 1
	b.SetChecksum(UpdateChecksum16(b.Checksum(), old, old-0x100))
}
