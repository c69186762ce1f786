package header

import (
	"encoding/binary"
	"net/netip"
)

// PseudoHeaderSum6 is the sum of the IPv6 pseudo-header that UDP, TCP
// and ICMPv6 checksums cover (RFC 8200 section 8.1): source,
// destination, upper-layer length as 32 bits, three zero bytes and the
// upper-layer protocol. length is the upper layer's, without the
// extension headers before it. src and dst must be IPv6.
func PseudoHeaderSum6(src, dst netip.Addr, proto uint8, length uint32) uint32 {
	s, d := src.As16(), dst.As16()
	return uint32(Fold(Sum(s[:], Sum(d[:], 0)))) + length>>16 + length&0xffff + uint32(proto)
}

// addrSum16 is the folded sum of a 16-byte address's eight words.
func addrSum16(a *[16]byte) uint32 {
	return uint32(Fold(Sum(a[:], 0)))
}

// delta128 is delta16 (RFC 1624 eqn. 3's ~m + m') for all eight words of
// a 16-byte field at an even offset, such as an IPv6 address. It is at
// most 8 * 0x1FFFE, so a few more terms may be added before applyDelta.
func delta128(old, new *[16]byte) uint32 {
	var d uint32
	for i := 0; i < 16; i += 2 {
		d += delta16(binary.BigEndian.Uint16(old[i:]), binary.BigEndian.Uint16(new[i:]))
	}
	return d
}

// UpdateChecksum128 is UpdateChecksum16 for a 16-byte field at an even
// offset: an IPv6 address in a pseudo-header or a quoted header.
func UpdateChecksum128(cksum uint16, old, new [16]byte) uint16 {
	return applyDelta(cksum, delta128(&old, &new))
}

// SetTransportChecksum6 computes the UDP, TCP or ICMPv6 checksum of the
// upper-layer header at off in IPv6 packet b (its payload length as it
// is; off past any extension headers) the way a sender does, the field
// taken as zero, and writes it: a computed 0 goes out as 0xFFFF for UDP
// (RFC 8200 section 8.1). Other protocols are left alone.
func SetTransportChecksum6(b IPv6, proto uint8, off int) {
	t := b[off : IPv6Size+int(b.PayloadLen())]
	var at int
	switch proto {
	case ProtoUDP:
		at = udpChecksum
	case ProtoTCP:
		at = tcpChecksum
	case ProtoICMPv6:
		at = icmpChecksum
	default:
		return
	}
	binary.BigEndian.PutUint16(t[at:], 0)
	c := Checksum(t, PseudoHeaderSum6(b.Src(), b.Dst(), proto, uint32(len(t))))
	if proto == ProtoUDP {
		c = udpChecksumFix(c)
	}
	binary.BigEndian.PutUint16(t[at:], c)
}

// NPTv6 translates addresses between two prefixes of the same length
// without changing any checksum that covers them: RFC 6296's
// checksum-neutral mapping. The prefix bits are replaced and one 16-bit
// word after them is adjusted so that the address's one's-complement sum
// stays the same (section 3.2), which is why no transport checksum needs
// an update.
type NPTv6 struct {
	inside, outside [16]byte
	bits            int
	// adj is added to the adjustment word going out (inside to outside)
	// and subtracted coming in, in one's-complement arithmetic.
	adj uint16
}

// NewNPTv6 prepares the translation between prefixes inside and outside
// (masked; of equal length, at most /64 as RFC 6296 section 3.1 allows
// for the adjustment word to lie in the interface identifier when longer
// than /48). It reports false for other prefixes.
func NewNPTv6(inside, outside netip.Prefix) (NPTv6, bool) {
	inside, outside = inside.Masked(), outside.Masked()
	if !inside.Addr().Is6() || !outside.Addr().Is6() || inside.Bits() != outside.Bits() || inside.Bits() > 64 {
		return NPTv6{}, false
	}
	n := NPTv6{inside: inside.Addr().As16(), outside: outside.Addr().As16(), bits: inside.Bits()}
	// RFC 6296 section 3.2: the adjustment is the difference between the
	// sums of the two prefixes.
	n.adj = Fold(addrSum16(&n.inside) + uint32(^Fold(addrSum16(&n.outside))))
	return n, true
}

// Outbound maps an address in the inside prefix to the outside prefix. It
// reports false when a is not in the inside prefix or its adjustment word
// is 0xFFFF (RFC 6296 section 3.5: such addresses are not translated).
func (n *NPTv6) Outbound(a [16]byte) ([16]byte, bool) {
	return n.translate(a, &n.inside, &n.outside, n.adj)
}

// Inbound maps an address in the outside prefix back to the inside one,
// reporting false as Outbound does.
func (n *NPTv6) Inbound(a [16]byte) ([16]byte, bool) {
	return n.translate(a, &n.outside, &n.inside, ^n.adj)
}

func (n *NPTv6) translate(a [16]byte, from, to *[16]byte, adj uint16) ([16]byte, bool) {
	full, rest := n.bits/8, n.bits%8
	for i := 0; i < full; i++ {
		if a[i] != from[i] {
			return a, false
		}
	}
	mask := byte(0xff) << (8 - rest)
	if rest != 0 && a[full]&mask != from[full] {
		return a, false
	}
	// The adjustment word: bits 48-63 for prefixes up to /48, else the
	// first word of the interface identifier that is not 0xFFFF
	// (section 3.4).
	w := 6
	if n.bits > 48 {
		w = 8
		for w < 16 && binary.BigEndian.Uint16(a[w:]) == 0xffff {
			w += 2
		}
		if w == 16 {
			return a, false
		}
	}
	old := binary.BigEndian.Uint16(a[w:])
	if old == 0xffff {
		return a, false
	}
	copy(a[:full], to[:full])
	if rest != 0 {
		a[full] = a[full]&^mask | to[full]
	}
	nw := Fold(uint32(old) + uint32(adj))
	if nw == 0xffff {
		nw = 0 // RFC 6296 section 3.5: 0xFFFF becomes 0, its equal
	}
	binary.BigEndian.PutUint16(a[w:], nw)
	return a, true
}
