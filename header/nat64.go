package header

import (
	"errors"
	"fmt"
	"net/netip"
)

// NAT64WellKnown is the well-known prefix for IPv4-embedded IPv6
// addresses (RFC 6052 section 2.1).
var NAT64WellKnown = netip.MustParsePrefix("64:ff9b::/96")

// NAT64Prefix embeds IPv4 addresses in IPv6 ones and takes them out
// again, as RFC 6052 section 2.2 lays them out for the prefix lengths 32,
// 40, 48, 56, 64 and 96: the IPv4 address follows the prefix, skipping
// bits 64-71 (the "u" octet, always zero), and the suffix is zero.
type NAT64Prefix struct {
	prefix [16]byte
	bits   int
	// at are the four positions the IPv4 address's bytes take.
	at [4]uint8
}

// NewNAT64Prefix prepares prefix p for embedding, or says why it cannot
// be one: not IPv6, a length RFC 6052 does not define, or bits 64-71 set.
func NewNAT64Prefix(p netip.Prefix) (NAT64Prefix, error) {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
		return NAT64Prefix{}, fmt.Errorf("nat64 prefix %s: not an IPv6 prefix", p)
	}
	p = p.Masked()
	x := NAT64Prefix{prefix: p.Addr().As16(), bits: p.Bits()}
	if x.bits%8 != 0 || x.bits < 32 || x.bits > 96 || x.bits > 64 && x.bits < 96 {
		return NAT64Prefix{}, fmt.Errorf("nat64 prefix %s: the length must be 32, 40, 48, 56, 64 or 96 (RFC 6052 section 2.2)", p)
	}
	if x.bits > 64 && x.prefix[8] != 0 {
		return NAT64Prefix{}, errors.New("nat64 prefix " + p.String() + ": bits 64 to 71 must be zero (RFC 6052 section 2.2)")
	}
	i := x.bits / 8
	for k := range x.at {
		if i == 8 {
			i++ // the u octet
		}
		x.at[k] = uint8(i)
		i++
	}
	return x, nil
}

// Prefix is the prefix as given, masked.
func (x *NAT64Prefix) Prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16(x.prefix), x.bits)
}

// Embed is the IPv6 address that stands for IPv4 address a.
func (x *NAT64Prefix) Embed(a [4]byte) [16]byte {
	r := x.prefix
	for k, i := range x.at {
		r[i] = a[k]
	}
	return r
}

// Extract is the IPv4 address embedded in a, reporting false when a is
// not in the prefix. The suffix is not read (RFC 6052 section 2.2 asks
// receivers to ignore it).
func (x *NAT64Prefix) Extract(a [16]byte) ([4]byte, bool) {
	full := x.bits / 8
	for i := 0; i < full; i++ {
		if a[i] != x.prefix[i] {
			return [4]byte{}, false
		}
	}
	return [4]byte{a[x.at[0]], a[x.at[1]], a[x.at[2]], a[x.at[3]]}, true
}
