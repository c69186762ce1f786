package nat

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/offload"
)

// NAT64 (IPv6 mode nat64): the inside hosts are IPv6-only and reach IPv4
// as addresses embedded in the NAT64 prefix (RFC 6052), through stateful
// NAT64 (RFC 6146) built as SIIT (RFC 7915) in front of the IPv4 engine.
//
// Every inside IPv6 host the NAT is configured with has an alias: an
// IPv4 address of its own in 240.0.0.0/8 (class E, which no packet
// carries on a wire, and which the IPv4 path refuses as a source from
// outside), fixed when the engine is made, and known to the IPv4 path as
// a host of the host's port. A packet from such a host to the prefix is
// translated to IPv4 in place, from the alias to the embedded address,
// and handed to the IPv4 path as if an IPv4 host had sent it: mappings,
// filtering, port settings, timeouts, TCP state, limits and events are
// the IPv4 side's, unchanged. What the IPv4 path sends to an alias (a
// reply through a mapping, an ICMP error about one, a hairpin) is
// translated back to IPv6, sources embedded in the prefix. The aliases
// never leave the engine: bindings, events and traces show the host's
// IPv6 address.
//
// The table of aliases is exact, bounded by the hosts configured and
// read without a lock (it never changes). An address of an inside prefix
// that is no configured host gets no alias and is not translated, as an
// unknown IPv4 host gets no mapping.
//
// Not translated, and counted as nat64-untranslatable: fragments either
// way, super-packets of devices with offloads (the NAT opens plain
// devices for nat64), UDP from IPv6 with a zero checksum (RFC 6145
// section 5.1 lets it be dropped), ICMP types RFC 7915 drops.
//
// IPv6 to and from addresses outside the prefix is native and goes as in
// mode routed, through the stateful firewall (RFC 6092): a carrier's
// IPv6-only network has IPv6 beyond it too, and DNS64 gives a name's
// real AAAA records when it has some (RFC 6147 section 5.1.4).

// aliasFirst is the first byte of every alias.
const aliasFirst = 240

// maxAliases is the most inside IPv6 hosts that get an alias.
const maxAliases = 1<<24 - 2

// aliases maps inside IPv6 hosts to their IPv4 aliases and back.
type aliases struct {
	of   map[netip.Addr][4]byte // IPv6 host -> alias
	host []netip.Addr           // alias 240.x.y.z -> host at x<<16|y<<8|z - 1
}

// newAliases gives each IPv6 host of the inside ports an alias, in the
// ports' order; index adds them to the IPv4 path's host index.
func newAliases(inside []InsidePort) (aliases, error) {
	var al aliases
	for _, ip := range inside {
		for _, h := range ip.Hosts {
			a := h.Addr()
			if !a.Is6() || a.Is4In6() {
				continue
			}
			if _, dup := al.of[a]; dup {
				continue
			}
			if len(al.host) == maxAliases {
				return aliases{}, fmt.Errorf("more than %d inside IPv6 hosts", maxAliases)
			}
			if al.of == nil {
				al.of = make(map[netip.Addr][4]byte)
			}
			k := len(al.host) + 1
			al.of[a] = [4]byte{aliasFirst, byte(k >> 16), byte(k >> 8), byte(k)}
			al.host = append(al.host, a)
		}
	}
	return al, nil
}

// index puts the alias of each aliased host in hosts, the index of
// inside host addresses, on the port that now holds the host: to the
// IPv4 path an alias is a host of that port.
func (al *aliases) index(inside []InsidePort, hosts map[netip.Addr]uint32) {
	for i, ip := range inside {
		for _, h := range ip.Hosts {
			if v4, ok := al.of[h.Addr()]; ok {
				hosts[netip.AddrFrom4(v4)] = uint32(i + 1)
			}
		}
	}
}

// lookup returns the IPv6 host of alias a.
func (al *aliases) lookup(a [4]byte) (netip.Addr, bool) {
	if a[0] != aliasFirst {
		return netip.Addr{}, false
	}
	k := int(a[1])<<16 | int(a[2])<<8 | int(a[3])
	if k < 1 || k > len(al.host) {
		return netip.Addr{}, false
	}
	return al.host[k-1], true
}

// unalias is ap with an alias replaced by its IPv6 host: how bindings,
// events and traces show the hosts behind NAT64.
func (e *Engine) unalias(ap netip.AddrPort) netip.AddrPort {
	if a := ap.Addr(); a.Is4() {
		if h, ok := e.aliases.lookup(a.As4()); ok {
			return netip.AddrPortFrom(h, ap.Port())
		}
	}
	return ap
}

// nat64 handles an IPv6 packet in mode nat64: from an inside host to
// the prefix, translated to IPv4 and on through the IPv4 path; anything
// else as mode routed does.
func (e *Engine) nat64(pk *packet6, st *v6State) Result {
	p := &pk.p
	d4, ok := st.nat64.Extract(p.Dst.Addr().As16())
	if pk.in == Outside || !ok {
		return e.routed6(pk, st)
	}
	src := p.Src.Addr()
	if e.spoofed6(pk.in, src) {
		return e.drop6(pk, DropSpoofed)
	}
	if martian6(src) {
		return e.drop6(pk, DropMartian)
	}
	if p.HopLimit <= 1 {
		return e.timeExceeded6(pk, e.gateway6(pk.in))
	}
	s4, ok := e.aliases.of[src]
	if !ok {
		return e.drop6(pk, DropNoRoute) // on the port's network, but no host the NAT knows
	}
	a := header.Addrs4{Src: s4, Dst: d4}
	if p.Proto == header.ProtoICMPv6 && header.IsICMPv6Error(p.ICMPType) && p.InnerOff != 0 {
		// An error about a packet that came from IPv4 through the NAT.
		is, ok1 := st.nat64.Extract(p.InnerSrc.Addr().As16())
		id, ok2 := e.aliases.of[p.InnerDst.Addr()]
		if !ok1 || !ok2 {
			return e.drop6(pk, DropNAT64Untranslatable)
		}
		a.InnerSrc, a.InnerDst = is, id
	}
	n := header.TranslateTo4(pk.b, p, &a)
	if n == 0 {
		return e.drop6(pk, DropNAT64Untranslatable)
	}
	res := pk.q.process(pk.in, pk.b[:n], pk.reply, pk.now, 1, 0)
	if res.Verdict == Forward && res.Len == 0 {
		res.Len = n
	}
	if res.ReplyLen > 0 {
		// The IPv4 path answered the alias (a refused mapping's 3/13):
		// the answer goes to the host in IPv6, from the NAT's inside
		// address.
		res.ReplyLen = e.replyTo6(pk.reply, res.ReplyLen, st, e.gateway6(pk.in))
	}
	return res
}

// toInside6 translates to IPv6 a packet the IPv4 path forwarded to an
// alias (pk.b, decoded in pk.p, already rewritten), so that it reaches
// the alias's host: res with the new length, or a drop when it cannot be
// translated.
func (e *Engine) toInside6(pk *packet, res Result) Result {
	st := e.v6.Load()
	n := 0
	if st.mode == table.IPv6NAT64 {
		n = e.translate6(pk.b, &pk.p, st, netip.Addr{})
	}
	if n == 0 {
		// Counted as forwarded on the way: counted as dropped instead.
		pk.q.forwarded.Add(^uint64(0))
		return e.done(DropNAT64Untranslatable, 0, 0)
	}
	res.Len = n
	return res
}

// replyTo6 translates the ICMPv4 error of n bytes the IPv4 path wrote in
// reply about a translated packet, from src, and returns its length as
// ICMPv6 (0 when it cannot be translated).
func (e *Engine) replyTo6(reply []byte, n int, st *v6State, src netip.Addr) int {
	var p header.Parsed
	p.Decode(reply[:n])
	return e.translate6(reply[:n:len(reply)], &p, st, src)
}

// translate6 translates IPv4 packet b (decoded in p), addressed to an
// alias, to IPv6 in place: the alias becomes its host, IPv4 addresses
// are embedded in the prefix; src, if valid, is the source instead. It
// returns the new length, 0 when the packet cannot be translated.
func (e *Engine) translate6(b []byte, p *header.Parsed, st *v6State, src netip.Addr) int {
	if p.IsFragment() {
		return 0
	}
	ip := header.IPv4(b)
	h, ok := e.aliases.lookup(ip.Dst().As4())
	if !ok {
		return 0
	}
	a := header.Addrs6{Dst: h.As16()}
	if src.IsValid() {
		a.Src = src.As16()
	} else {
		a.Src = st.nat64.Embed(ip.Src().As4())
	}
	if p.IPProto == header.ProtoICMP && header.IsICMPError(p.ICMPType) && p.InnerOff != 0 {
		ih, ok := e.aliases.lookup(p.InnerSrc.Addr().As4())
		if !ok {
			return 0
		}
		a.InnerSrc, a.InnerDst = ih.As16(), st.nat64.Embed(p.InnerDst.Addr().As4())
	}
	return header.TranslateTo6(b, p, &a)
}

// processVirtio64 is ProcessVirtio for an IPv4 packet with a virtio-net
// header that says something, while the IPv6 mode is nat64: a packet the
// engine may turn into IPv6 must be one plain packet, so a partial
// checksum is finished here and a super-packet dropped (the NAT opens
// plain devices for nat64; this is for a mode changed at run time).
func (q *Queue) processVirtio64(in Port, b []byte, h *offload.VirtioHdr, reply []byte, now time.Time) Result {
	if h.IsGSO() || !h.FinishCsumAt(b) {
		pk := packet{q: q, in: in, now: now}
		pk.p.Decode(b)
		return q.e.drop(&pk, DropNAT64Untranslatable)
	}
	h.Flags &^= offload.VirtioNeedsCsum
	return q.Process(in, b, reply, now)
}

// aliasSource reports whether b, read from inside port in, is an IPv4
// packet from an alias: one only the NAT64 translation may make, which a
// host sending it itself would pass off as an IPv6 host (its bindings
// shown as that host's).
func aliasSource(in Port, b []byte) bool {
	return in != Outside && len(b) > ipv4Src && b[0]>>4 == 4 && b[ipv4Src] == aliasFirst
}

// dropAliasSource drops b, an IPv4 packet from an alias read from inside
// port in, as spoofed.
func (q *Queue) dropAliasSource(in Port, b []byte, now time.Time) Result {
	pk := packet{q: q, in: in, now: now}
	pk.p.Decode(b)
	return q.e.drop(&pk, DropSpoofed)
}

// Offsets of an IPv4 header's source and destination addresses.
const (
	ipv4Src = 12
	ipv4Dst = 16
)
