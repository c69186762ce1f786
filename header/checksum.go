package header

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Sum adds b to initial as big-endian 16-bit words in one's-complement
// arithmetic (RFC 1071 section 4.1), padding an odd final byte with zero.
// The result is neither folded nor inverted, so sums over pieces chain:
// Sum(b2, Sum(b1, 0)) == Sum(b1+b2, 0) when len(b1) is even. Every
// piece but the last must have an even length, because the words are
// counted from the start of b.
//
// The result is at most 0x1FFFE, so a caller may add a few sums together
// before Fold without overflowing.
func Sum(b []byte, initial uint32) uint32 {
	// Adding 64-bit words with end-around carry gives the same sum modulo
	// 0xFFFF as adding 16-bit words, because 2^16 ≡ 1 (mod 0xFFFF).
	acc := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	acc = addCarry(acc, c)
	if len(b) >= 4 {
		acc = addCarry(bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), 0))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc = addCarry(bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), 0))
		b = b[2:]
	}
	if len(b) == 1 {
		acc = addCarry(bits.Add64(acc, uint64(b[0])<<8, 0))
	}
	// Fold 64 -> 32 -> 17 bits. End-around carries keep a non-zero sum
	// non-zero, which matters for the +0/-0 distinction (see Fold).
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	return uint32(acc)
}

// addCarry adds back the carry out of a 64-bit addition (end-around
// carry). It cannot overflow: if c is 1, s is at most 2^64-2.
func addCarry(s, c uint64) uint64 { return s + c }

// Fold reduces a one's-complement sum to 16 bits by adding the carries
// back in. It does not invert. A non-zero sum never folds to 0, so data
// whose words sum to a multiple of 0xFFFF folds to 0xFFFF (-0), and only
// all-zero data folds to 0 (+0).
func Fold(sum uint32) uint16 {
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}

// Checksum is the Internet checksum of b on top of initial (for instance
// a PseudoHeaderSum): the one's complement of the folded sum. Computed
// over data whose checksum field holds a correct checksum, it returns 0.
func Checksum(b []byte, initial uint32) uint16 {
	return ^Fold(Sum(b, initial))
}

// PseudoHeaderSum is the sum of the IPv4 pseudo-header that UDP and TCP
// checksums cover (RFC 768, RFC 9293 section 3.1): source, destination,
// zero and protocol, and the transport length. src and dst must be IPv4.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length uint16) uint32 {
	s, d := src.As4(), dst.As4()
	return addrSum(s) + addrSum(d) + uint32(proto) + uint32(length)
}

// addrSum is the sum of an IPv4 address's two 16-bit words.
func addrSum(a [4]byte) uint32 {
	return (uint32(a[0])<<8 | uint32(a[1])) + (uint32(a[2])<<8 | uint32(a[3]))
}

// UpdateChecksum16 returns checksum cksum adjusted for one 16-bit word of
// the covered data changing from old to new, without touching the rest
// of the data: RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'). Eqn. 3 rather
// than RFC 1141's eqn. 2 because it never produces the -0 (0xFFFF) that
// a full computation would not; a valid checksum stays identical to a
// full recomputation.
func UpdateChecksum16(cksum, old, new uint16) uint16 {
	return applyDelta(cksum, delta16(old, new))
}

// UpdateChecksum32 is UpdateChecksum16 for a 4-byte field at an even
// offset, such as an IPv4 address.
func UpdateChecksum32(cksum uint16, old, new [4]byte) uint16 {
	return applyDelta(cksum, delta32(old, new))
}

// delta16 is the term ~m + m' of RFC 1624 eqn. 3 for one changed word.
// Terms of several changed words add up (each is at most 0x1FFFE) and are
// applied once with applyDelta.
func delta16(old, new uint16) uint32 {
	return uint32(^old) + uint32(new)
}

// delta32 is delta16 for both words of a 4-byte field.
func delta32(old, new [4]byte) uint32 {
	return delta16(uint16(old[0])<<8|uint16(old[1]), uint16(new[0])<<8|uint16(new[1])) +
		delta16(uint16(old[2])<<8|uint16(old[3]), uint16(new[2])<<8|uint16(new[3]))
}

// applyDelta finishes RFC 1624 eqn. 3: ~(~HC + sum of deltas).
func applyDelta(cksum uint16, d uint32) uint16 {
	return ^Fold(uint32(^cksum) + d)
}

// SetTransportChecksum computes the UDP or TCP checksum of IPv4 packet b
// (its header and total lengths as they are) the way a sender does, the
// field taken as zero, and writes it: a computed 0 goes out as 0xFFFF
// for UDP (RFC 768). Other protocols are left alone.
func SetTransportChecksum(b IPv4) {
	t := b.Payload()
	var off int
	switch b.Protocol() {
	case ProtoUDP:
		off = udpChecksum
	case ProtoTCP:
		off = tcpChecksum
	default:
		return
	}
	binary.BigEndian.PutUint16(t[off:], 0)
	c := Checksum(t, PseudoHeaderSum(b.Src(), b.Dst(), b.Protocol(), uint16(len(t))))
	if b.Protocol() == ProtoUDP {
		c = udpChecksumFix(c)
	}
	binary.BigEndian.PutUint16(t[off:], c)
}
