package nat

import (
	"encoding/binary"
	"net/netip"

	"github.com/gonat/gonat/header"
)

// Source and destination validation: what a router refuses to forward
// whatever its mappings say.
//
// From inside, a source must be on the port it came in by (BCP 38, RFC
// 2827): a configured host of another port, or an address outside every
// network of the port, is spoofed. Two hosts on one port sharing a
// network cannot be told apart: a TUN carries no link-layer addresses.
//
// From outside, a source no remote host can have is martian (RFC 1812
// §5.3.7, RFC 3927 §2.7): this network (0/8), loopback (127/8),
// link-local (169.254/16), multicast (224/4), class E and broadcast
// (240/4), the NAT's own external addresses and its inside networks.
// Private addresses (RFC 1918) pass: behind nested NATs the outside
// network is itself private. An ICMP error from a link-local source
// passes too, since a router whose links carry only link-local addresses
// (as a lab's core) reports from one; it never changes a mapping.
//
// Destinations a NAT never translates: this network, loopback,
// link-local, multicast, class E and broadcast.

// martianFirst marks the first bytes of source or destination addresses
// that are never forwarded, whatever the rest of the address: 0, 127
// and 224 and up.
var martianFirst = func() (t [256]bool) {
	t[0], t[127] = true, true
	for i := 224; i < 256; i++ {
		t[i] = true
	}
	return t
}()

// martian reports whether a is an address no router forwards to or
// from: this network, loopback, link-local, multicast, class E or
// broadcast.
func martian(a [4]byte) bool {
	return martianFirst[a[0]] || a[0] == 169 && a[1] == 254
}

// offPort reports whether src, not a configured host, lies outside
// every network of inside port in.
func (e *Engine) offPort(in Port, src netip.Addr) bool {
	nets := e.in.Load().portNets
	if in < 1 || int(in) > len(nets) {
		return true
	}
	for _, n := range nets[in-1] {
		if n.Contains(src) {
			return false
		}
	}
	return true
}

// martianSource reports whether the source of pk, which came from
// outside, is one no remote host can have.
func (e *Engine) martianSource(pk *packet) bool {
	if martian(pk.srcIn) {
		// Link-local ICMP errors pass (see above).
		return pk.srcIn[0] != 169 || pk.p.IPProto != header.ProtoICMP || !header.IsICMPError(pk.p.ICMPType)
	}
	if !e.ownHasExternal && e.isExternal(pk.p.Src.Addr()) {
		return true
	}
	k := binary.BigEndian.Uint32(pk.srcIn[:])
	for _, n := range e.in.Load().ownMasks {
		if k&n.mask == n.addr {
			return true
		}
	}
	return false
}

// netMask is an IPv4 network as two words: a is in it if a&mask == addr.
// Every inbound packet checks its source against the inside networks and
// the external addresses; this costs a compare each, where
// netip.Prefix.Contains costs several and a lookup in an addrIndex a
// multiply and a load.
type netMask struct{ addr, mask uint32 }

func netMasks(nets []netip.Prefix) []netMask {
	var ms []netMask
	for _, n := range nets {
		if !n.Addr().Is4() {
			continue
		}
		a := n.Masked().Addr().As4()
		ms = append(ms, netMask{binary.BigEndian.Uint32(a[:]), ^uint32(0) << (32 - n.Bits())})
	}
	return ms
}
