package lab

// NATs in the nat64 mode: the inside network is IPv6-only, a mobile
// carrier's. Such a NAT has inside6 and no inside (its hosts get IPv6
// addresses only; an IPv4 address behind it is an error), sits on the
// public network, and its hosts resolve through the lab DNS server at
// its address embedded in the NAT's prefix, reached through the NAT64
// itself: queries come from the NAT's external addresses, which the
// server serves with DNS64 (RFC 6147, a view per NAT64).

import (
	"net/netip"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/labdns"
	"github.com/gonat/gonat/table"
)

// isNAT64 reports whether the NAT's file entry asks for the nat64 mode.
func isNAT64(m map[string]any) bool {
	s, ok := m[keyIPv6].(string)
	if !ok {
		return false
	}
	mode, err := table.ParseIPv6Mode(s)
	return err == nil && mode == table.IPv6NAT64
}

// checkNAT64 checks each nat64 NAT's place and networks: on the public
// network (where its external addresses are what the lab DNS server
// sees its hosts' queries come from), with inside6 and without inside.
func (p *parser) checkNAT64(nats []*natDraft, maps []map[string]any) {
	for i, d := range nats {
		if !isNAT64(maps[i]) {
			continue
		}
		line := p.pos.key(keyNAT, d.idx, keyIPv6)
		if _, has4 := maps[i][keyInside]; has4 {
			p.errorf(p.pos.key(keyNAT, d.idx, keyInside), "%s: inside with ipv6 = \"nat64\": the inside network of a NAT64 is IPv6-only (leave inside out; give inside6, e.g. inside6 = \"fd00:64::/64\")", d.who)
		}
		if !d.n.Inside6.IsValid() {
			p.errorf(line, "%s: ipv6 = \"nat64\" without inside6: its IPv6-only hosts need an IPv6 network (e.g. inside6 = \"fd00:64::/64\")", d.who)
		}
		if d.up >= 0 {
			p.errorf(line, "%s: ipv6 = \"nat64\" behind nat %q: a NAT64 must be on the public network, where the lab DNS server tells its hosts' queries apart (DNS64)", d.who, nats[d.up].n.Name)
		}
	}
	for _, d := range nats {
		if d.up >= 0 && isNAT64(maps[d.up]) {
			p.errorf(p.pos.key(keyNAT, d.idx, keyUpstream), "%s: upstream %q is a NAT64, whose inside network is IPv6-only: a NAT needs an IPv4 address upstream (put it on the public network or behind a NAT without ipv6 = \"nat64\")", d.who, nats[d.up].n.Name)
		}
	}
}

// IsNAT64 reports whether the NAT runs in the nat64 mode.
func (n *NATNode) IsNAT64() bool { return n.Behavior.IPv6 == table.IPv6NAT64 }

// Reach is the address a host of network net (a NAT's name or Public)
// reaches public IPv4 address a at: a, or behind a NAT64 a embedded in
// its prefix.
func (t *Topology) Reach(net string, a netip.Addr) netip.Addr {
	for i := range t.NATs {
		n := &t.NATs[i]
		if n.Name == net && n.IsNAT64() && a.Is4() {
			x, err := header.NewNAT64Prefix(n.Behavior.NAT64PrefixOrDefault())
			if err != nil {
				return a
			}
			return netip.AddrFrom16(x.Embed(a.As4()))
		}
	}
	return a
}

// DNSServer is the address a host of network net reaches the lab DNS
// server at.
func (t *Topology) DNSServer(net string) netip.Addr { return t.Reach(net, DNSAddr) }

// DNS64Views are the lab DNS server's DNS64 views: one per external
// address of each nat64 NAT, with that NAT's prefix.
func (t *Topology) DNS64Views() []labdns.View {
	var vs []labdns.View
	for i := range t.NATs {
		n := &t.NATs[i]
		if !n.IsNAT64() {
			continue
		}
		for _, a := range n.External {
			vs = append(vs, labdns.View{Clients: netip.PrefixFrom(a, 32), Prefix: n.Behavior.NAT64PrefixOrDefault()})
		}
	}
	return vs
}
