package labdns

// DNS64 (RFC 6147): AAAA records made from A records for clients behind a
// NAT64, by embedding the IPv4 address in the NAT64's prefix (RFC 6052).

import (
	"fmt"
	"net/netip"
)

// WellKnownPrefix is the NAT64 well-known prefix of RFC 6052 §2.1.
var WellKnownPrefix = netip.MustParsePrefix("64:ff9b::/96")

// View is what the server does for the clients of one source prefix: those
// behind a NAT64 get AAAA records synthesized from A records.
type View struct {
	// Clients is the source prefix the view applies to (IPv4 or IPv6).
	Clients netip.Prefix
	// Prefix is the NAT64's prefix: WellKnownPrefix or a network-specific
	// one of 32, 40, 48, 56, 64 or 96 bits (RFC 6052 §2.2).
	Prefix netip.Prefix
	// ExcludeV6 are IPv6 ranges whose AAAA records count as absent
	// (RFC 6147 §5.1.4): a name whose AAAA records all lie in them gets
	// synthesized ones. nil takes DefaultExcludeV6.
	ExcludeV6 []netip.Prefix
	// ExcludeV4 are IPv4 ranges never embedded in a synthesized AAAA.
	// nil takes DefaultExcludeV4(Prefix).
	ExcludeV4 []netip.Prefix
}

// DefaultExcludeV6 is the exclusion set RFC 6147 §5.1.4 requires at the
// least: IPv4-mapped addresses (::ffff:0:0/96).
var DefaultExcludeV6 = []netip.Prefix{netip.MustParsePrefix("::ffff:0:0/96")}

// special are IPv4 ranges no NAT64 can reach: "this network", loopback,
// link-local, multicast and reserved (RFC 6147 §5.1.4 lets a DNS64
// exclude them; there is nothing to translate to).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// private are the ranges RFC 6052 §3.1 forbids with the well-known
// prefix: private (RFC 1918) and shared (RFC 6598) space.
var private = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// DefaultExcludeV4 is the IPv4 exclusion set for a NAT64 prefix: the
// special ranges, and with the well-known prefix the private ones too.
// Documentation ranges stay in: the lab's public network uses them.
func DefaultExcludeV4(prefix netip.Prefix) []netip.Prefix {
	out := append([]netip.Prefix(nil), special...)
	if prefix == WellKnownPrefix {
		out = append(out, private...)
	}
	return out
}

// check validates v and fills in the default exclusion sets.
func (v View) check() (View, error) {
	if !v.Clients.IsValid() {
		return v, fmt.Errorf("dns64 view: no client prefix")
	}
	v.Clients = v.Clients.Masked()
	if !v.Prefix.IsValid() || !v.Prefix.Addr().Is6() || v.Prefix.Addr().Is4In6() {
		return v, fmt.Errorf("dns64 view %s: prefix %s is not an IPv6 prefix", v.Clients, v.Prefix)
	}
	switch v.Prefix.Bits() {
	case 32, 40, 48, 56, 64, 96:
	default:
		return v, fmt.Errorf("dns64 view %s: prefix %s: RFC 6052 allows /32, /40, /48, /56, /64 or /96", v.Clients, v.Prefix)
	}
	if v.Prefix != v.Prefix.Masked() {
		return v, fmt.Errorf("dns64 view %s: prefix %s has bits set past its length", v.Clients, v.Prefix)
	}
	if v.Prefix.Bits() < 96 {
		// Bits 64..71 (the "u" octet) must be zero in every address.
		if b := v.Prefix.Addr().As16(); b[8] != 0 {
			return v, fmt.Errorf("dns64 view %s: prefix %s sets bits 64-71, which RFC 6052 §2.2 reserves", v.Clients, v.Prefix)
		}
	}
	if v.ExcludeV6 == nil {
		v.ExcludeV6 = DefaultExcludeV6
	}
	if v.ExcludeV4 == nil {
		v.ExcludeV4 = DefaultExcludeV4(v.Prefix)
	}
	return v, nil
}

// Synthesize embeds a4 in prefix as RFC 6052 §2.2 lays out: the IPv4
// address follows the prefix, skipping bits 64..71, which stay zero.
// prefix must be one of the lengths View allows.
func Synthesize(prefix netip.Prefix, a4 netip.Addr) netip.Addr {
	b := prefix.Masked().Addr().As16()
	v4 := a4.As4()
	i := prefix.Bits() / 8
	for _, o := range v4 {
		if i == 8 {
			i++ // the u octet
		}
		b[i] = o
		i++
	}
	return netip.AddrFrom16(b)
}

// Extract is Synthesize's inverse: the IPv4 address embedded in a6.
func Extract(prefix netip.Prefix, a6 netip.Addr) netip.Addr {
	b := a6.As16()
	var v4 [4]byte
	i := prefix.Bits() / 8
	for k := range v4 {
		if i == 8 {
			i++
		}
		v4[k] = b[i]
		i++
	}
	return netip.AddrFrom4(v4)
}

func inAny(a netip.Addr, set []netip.Prefix) bool {
	for _, p := range set {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
