package lab

// The address plan: ranges no address may touch, every given address
// checked against its network, inside networks disjoint along a path,
// and the next free address for each host that gives none.

import (
	"fmt"
	"net/netip"
	"sort"
)

// publicPool is where public hosts without an address get one: from
// publicFirst (203.0.113.10, TEST-NET-3 of RFC 5737) upward, skipping
// DNSAddr.
var (
	publicPool  = netip.MustParsePrefix("203.0.113.0/24")
	publicFirst = netip.MustParseAddr("203.0.113.10")
)

// public6Pool is the public network's IPv6 space NATs' external6
// addresses are drawn from, from public6First upward; public hosts may
// take addresses anywhere in 2001:db8::/32 outside every inside6.
var (
	public6Pool  = netip.MustParsePrefix("2001:db8::/48")
	public6First = netip.MustParseAddr("2001:db8::100")
)

// reserved are the ranges no lab address or network may touch.
var reserved = []struct {
	p    netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "0.0.0.0/8 (\"this network\")"},
	{netip.MustParsePrefix("127.0.0.0/8"), "127.0.0.0/8 (loopback)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "169.254.0.0/16 (link-local, used by the lab's own links)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "224.0.0.0/4 (multicast)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "240.0.0.0/4 (reserved, broadcast)"},
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(pf netip.Prefix) netip.Addr {
	b := pf.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= ^uint32(0) >> pf.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// network is one network's address book while addresses are checked.
type network struct {
	name string
	pf   netip.Prefix // invalid for the public network
	pf6  netip.Prefix // the NAT's inside6; invalid for IPv4-only and public
	gw6  netip.Addr
	used map[netip.Addr]use
}

type use struct {
	who, key string
	line     int
	net      int // index into nats, or upPublic
	addr     netip.Addr
}

// checkAddresses checks every given address against its network: inside
// it, not its network, gateway or broadcast address, used once; public
// addresses unique and outside every private range of the lab.
func (p *parser) checkAddresses(nats []*natDraft, hosts []*hostDraft) {
	var uses []use
	for _, d := range nats {
		if d.up == upBad {
			continue
		}
		l := p.pos.key(keyNAT, d.idx, keyExternal)
		for _, a := range d.n.External {
			uses = append(uses, use{d.who, keyExternal, l, d.up, a})
		}
		l6 := p.pos.key(keyNAT, d.idx, keyExt6)
		for _, a := range d.n.External6 {
			uses = append(uses, use{d.who, keyExt6, l6, d.up, a})
		}
	}
	for _, d := range hosts {
		if d.net == upBad {
			continue
		}
		l := p.pos.key(keyHost, d.idx, keyAddress)
		for _, a := range d.h.Addresses {
			uses = append(uses, use{d.who, keyAddress, l, d.net, a})
		}
	}
	sort.SliceStable(uses, func(i, j int) bool { return uses[i].line < uses[j].line })
	p.nets = make([]*network, len(nats))
	for i, d := range nats {
		if d.insideOK {
			p.nets[i] = &network{name: d.n.Name, pf: d.n.Inside, pf6: d.n.Inside6, gw6: d.n.Gateway6, used: map[netip.Addr]use{}}
		}
	}
	p.public = &network{name: Public, used: map[netip.Addr]use{}}
	for _, u := range uses {
		p.take(nats, u)
	}
}

// take checks one address use and records it in its network.
func (p *parser) take(nats []*natDraft, u use) {
	net := p.public
	if u.net >= 0 {
		if net = p.nets[u.net]; net == nil {
			return
		}
		ok := false
		if u.addr.Is6() {
			ok = p.inNetwork6(net, u)
		} else {
			ok = p.inNetwork4(net, nats[u.net].n.Gateway, u)
		}
		if !ok {
			return
		}
	} else if !p.publicOK(nats, u) {
		return
	}
	if first, dup := net.used[u.addr]; dup {
		if first.who == u.who && first.key == u.key {
			return // reported by addrList
		}
		p.errorf(u.line, "%s: %s %s is already used by %s (line %d) in network %s", u.who, u.key, u.addr, first.who, first.line, net.name)
		return
	}
	net.used[u.addr] = u
}

// inNetwork4 checks an IPv4 address use in a NAT's network: inside it,
// not its network, gateway or broadcast address.
func (p *parser) inNetwork4(net *network, gw netip.Addr, u use) bool {
	pf, a := net.pf, u.addr
	if !pf.IsValid() {
		p.errorf(u.line, "%s: %s %s: network %s is IPv6-only (ipv6 = \"nat64\"): what is behind it takes IPv6 addresses only", u.who, u.key, a, net.name)
		return false
	}
	what := fmt.Sprintf("network %s (%s)", net.name, pf)
	if u.key == keyExternal {
		what += ", the inside network of its upstream"
	}
	switch {
	case !pf.Contains(a):
		p.errorf(u.line, "%s: %s %s is outside %s", u.who, u.key, a, what)
	case a == pf.Addr():
		p.errorf(u.line, "%s: %s %s is the network address of %s: hosts start at %s", u.who, u.key, a, what, a.Next().Next())
	case a == gw:
		p.errorf(u.line, "%s: %s %s is the gateway of %s: the NAT's own inside address; hosts start at %s", u.who, u.key, a, what, a.Next())
	case a == lastAddr(pf):
		p.errorf(u.line, "%s: %s %s is the broadcast address of %s", u.who, u.key, a, what)
	default:
		return true
	}
	return false
}

// publicOK checks an address use on the public network: not the lab DNS
// server's, outside every inside network of the lab, and for IPv6 in the
// documentation prefix.
func (p *parser) publicOK(nats []*natDraft, u use) bool {
	if u.addr.Is6() && !doc6.Contains(u.addr) {
		p.errorf(u.line, "%s: %s %s is not a public address: the public network's IPv6 addresses are in %s", u.who, u.key, u.addr, doc6)
		return false
	}
	if u.addr == DNSAddr {
		p.errorf(u.line, "%s: %s %s is reserved for the lab DNS server", u.who, u.key, u.addr)
		return false
	}
	if nptv6Pool.Contains(u.addr) && !(u.key == keyExt6 && nptv6Named(nats, u.who)) {
		p.errorf(u.line, "%s: %s %s is in %s, the external prefixes of NATs with ipv6 = \"nptv6\": public hosts and other NATs take IPv6 addresses elsewhere in %s", u.who, u.key, u.addr, nptv6Pool, doc6)
		return false
	}
	for _, d := range nats {
		in := netip.Prefix{}
		switch {
		case d.insideOK && d.n.Inside.Contains(u.addr):
			in = d.n.Inside
		case d.n.Inside6.IsValid() && d.n.Inside6.Contains(u.addr):
			in = d.n.Inside6
		default:
			continue
		}
		p.errorf(u.line, "%s: %s %s is a public address inside nat %q's network %s: public addresses must not lie in a private range the lab uses (routes would be ambiguous)",
			u.who, u.key, u.addr, d.n.Name, in)
		return false
	}
	return true
}

// inNetwork6 checks an IPv6 address use in a NAT's network: the NAT has
// an inside6 that holds it, and it is not the network's subnet-router
// anycast address (RFC 4291 2.6.1) or the NAT's own.
func (p *parser) inNetwork6(net *network, u use) bool {
	pf, a := net.pf6, u.addr
	if !pf.IsValid() {
		p.errorf(u.line, "%s: %s %s: network %s has no IPv6 (give nat %q an inside6 network)", u.who, u.key, a, net.name, net.name)
		return false
	}
	what := fmt.Sprintf("network %s (%s)", net.name, pf)
	if u.key == keyExt6 {
		what += ", the inside6 network of its upstream"
	}
	switch {
	case !pf.Contains(a):
		p.errorf(u.line, "%s: %s %s is outside %s", u.who, u.key, a, what)
		return false
	case a == pf.Addr():
		p.errorf(u.line, "%s: %s %s is the subnet-router anycast address of %s: hosts start at %s", u.who, u.key, a, what, a.Next().Next())
		return false
	case a == net.gw6:
		p.errorf(u.line, "%s: %s %s is the gateway of %s: the NAT's own inside address; hosts start at %s", u.who, u.key, a, what, a.Next())
		return false
	}
	return true
}

// checkPaths rejects a NAT whose inside network overlaps the inside
// network of a NAT on its path to the public network. NATs on different
// paths (siblings, cousins) may share a range, as real homes do.
func (p *parser) checkPaths(nats []*natDraft) {
	for _, d := range nats {
		if d.reaches != 1 || !d.insideOK {
			continue
		}
		for j := d.up; j >= 0; j = nats[j].up {
			a := nats[j]
			if a.insideOK && a.n.Inside.Overlaps(d.n.Inside) {
				p.errorf(p.pos.key(keyNAT, d.idx, keyInside), "%s: inside %s overlaps network %s (%s) on its path to the public network: addresses there would be ambiguous (NATs on one path need disjoint ranges; NATs on different paths may share one)",
					d.who, d.n.Inside, a.n.Name, a.n.Inside)
			}
			if d.n.Inside6.IsValid() && a.n.Inside6.IsValid() && a.n.Inside6.Overlaps(d.n.Inside6) {
				p.errorf(p.pos.key(keyNAT, d.idx, keyInside6), "%s: inside6 %s overlaps network %s (%s) on its path to the public network: addresses there would be ambiguous (NATs on one path need disjoint ranges; NATs on different paths may share one)",
					d.who, d.n.Inside6, a.n.Name, a.n.Inside6)
			}
		}
	}
}

// assign gives each NAT with inside6 but no external6 the next free
// IPv6 address upstream, then each host without an address of a family
// its network has the next free one of that family.
func (p *parser) assign(nats []*natDraft, hosts []*hostDraft) {
	p.assignExternal6(nats)
	for _, d := range hosts {
		if d.net == upBad {
			continue
		}
		has4, has6 := families(d.h.Addresses)
		if !has6 && d.net >= 0 && p.nets[d.net] != nil && p.nets[d.net].pf6.IsValid() {
			net := p.nets[d.net]
			if a, ok := next6(net, net.pf6.Addr().Next().Next()); ok {
				d.h.Addresses = append(d.h.Addresses, a)
				net.used[a] = use{who: d.who, key: keyAddress, line: d.h.Line, net: d.net, addr: a}
			} else {
				p.errorf(d.h.Line, "%s: network %s (%s) has no free IPv6 address left", d.who, net.name, net.pf6)
			}
		}
		if has4 {
			continue
		}
		if d.net >= 0 {
			net := p.nets[d.net]
			if net == nil || !net.pf.IsValid() {
				continue // IPv6-only (nat64)
			}
			last := lastAddr(net.pf)
			found := false
			for a := net.pf.Addr().Next().Next(); net.pf.Contains(a) && a != last; a = a.Next() {
				if _, used := net.used[a]; !used {
					d.h.Addresses = append([]netip.Addr{a}, d.h.Addresses...)
					net.used[a] = use{who: d.who, key: keyAddress, line: d.h.Line, net: d.net, addr: a}
					found = true
					break
				}
			}
			if !found {
				p.errorf(d.h.Line, "%s: network %s (%s) has no free address left", d.who, net.name, net.pf)
			}
			continue
		}
		found := false
	next:
		for a := publicFirst; publicPool.Contains(a) && a != lastAddr(publicPool); a = a.Next() {
			if _, used := p.public.used[a]; used || a == DNSAddr {
				continue
			}
			for _, n := range nats {
				if n.insideOK && n.n.Inside.Contains(a) {
					continue next
				}
			}
			d.h.Addresses = append([]netip.Addr{a}, d.h.Addresses...)
			p.public.used[a] = use{who: d.who, key: keyAddress, line: d.h.Line, net: upPublic, addr: a}
			found = true
			break
		}
		if !found {
			p.errorf(d.h.Line, "%s: no free public address left in %s from %s: give one with address = \"...\"", d.who, publicPool, publicFirst)
		}
	}
}

// assignExternal6 gives each NAT with inside6 and no external6 the next
// free IPv6 address of its upstream: from public6First on the public
// network, from ::2 up in an upstream NAT's inside6. An upstream NAT
// without inside6 cannot carry the NAT's IPv6.
func (p *parser) assignExternal6(nats []*natDraft) {
	for _, d := range nats {
		if !d.n.Inside6.IsValid() || d.up == upBad {
			continue
		}
		line := p.pos.key(keyNAT, d.idx, keyInside6)
		net, first := p.public, public6First
		if d.up >= 0 {
			if net = p.nets[d.up]; net == nil {
				continue
			}
			if !net.pf6.IsValid() {
				p.errorf(line, "%s: inside6 behind nat %q, which has no inside6: its IPv6 would have no way out (give nat %q an inside6 network)", d.who, net.name, net.name)
				continue
			}
			first = net.pf6.Addr().Next().Next()
		}
		if len(d.n.External6) > 0 {
			continue
		}
		if d.up == upPublic && isNPTv6(d) {
			p.assignNPTv6(nats, d, line)
			continue
		}
		a, ok := next6(net, first)
		if !ok || (d.up == upPublic && !public6Pool.Contains(a)) {
			p.errorf(line, "%s: no free IPv6 address left upstream for external6: give one with external6 = \"...\"", d.who)
			continue
		}
		d.n.External6 = []netip.Addr{a}
		net.used[a] = use{who: d.who, key: keyExt6, line: line, net: d.up, addr: a}
	}
}

// next6 is the first address from first up that net has not used, within
// its inside6 (or, for the public network, public6Pool).
func next6(net *network, first netip.Addr) (netip.Addr, bool) {
	pf := net.pf6
	if !pf.IsValid() {
		pf = public6Pool
	}
	for a := first; pf.Contains(a); a = a.Next() {
		if _, used := net.used[a]; !used {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// families reports which address families as holds.
func families(as []netip.Addr) (has4, has6 bool) {
	for _, a := range as {
		if a.Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	return has4, has6
}
