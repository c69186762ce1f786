package lab

// NATs in the nptv6 mode (RFC 6296) on the public network: the engine
// maps the inside6 prefix to the prefix of the same length around the
// NAT's external6 address, so that prefix must be the NAT's own. Each
// such NAT takes a /48 of nptv6Pool, apart from public6Pool where public
// hosts and other NATs' external6 addresses live; the lab routes the
// mapped prefix to the NAT's outside port (nat.go).

import (
	"net/netip"

	"github.com/gonat/gonat/table"
)

// nptv6Pool holds the external prefixes of nptv6 NATs, one /48 each
// (2001:db8:4000::/48, 2001:db8:4001::/48, ...); the NAT's external6 is
// ::1 of its /48 unless given.
var nptv6Pool = netip.MustParsePrefix("2001:db8:4000::/40")

const keyIPv6 = "ipv6" // the behaviour setting that picks the IPv6 mode

// isNPTv6 reports whether the NAT's settings ask for the nptv6 mode.
func isNPTv6(d *natDraft) bool {
	s, ok := d.n.Settings[keyIPv6]
	if !ok {
		return false
	}
	m, err := table.ParseIPv6Mode(s)
	return err == nil && m == table.IPv6NPTv6
}

// nptv6Block is the /48 of nptv6Pool that a holds.
func nptv6Block(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, 48).Masked()
}

// checkNPTv6 checks each nptv6 NAT's place and prefixes: on the public
// network, with an inside6 from /48 to /64 (RFC 6296 section 3.1 maps
// /64 or shorter; the external prefix must fit its /48), and a given
// external6 in nptv6Pool, in a /48 no other NAT has.
func (p *parser) checkNPTv6(nats []*natDraft) {
	owner := map[netip.Prefix]*natDraft{}
	for _, d := range nats {
		if !isNPTv6(d) || d.up == upBad {
			continue
		}
		line := p.pos.key(keyNAT, d.idx, keyIPv6)
		if !d.n.Inside6.IsValid() {
			p.errorf(line, "%s: ipv6 = \"nptv6\" without inside6: there is no IPv6 prefix to translate (give an inside6 network, e.g. inside6 = \"fd00:1::/48\")", d.who)
			continue
		}
		if d.up != upPublic {
			p.errorf(line, "%s: ipv6 = \"nptv6\" behind nat %q: an nptv6 NAT must be on the public network, where its external prefix (from %s) is routed", d.who, nats[d.up].n.Name, nptv6Pool)
			continue
		}
		if b := d.n.Inside6.Bits(); b > 64 {
			p.errorf(p.pos.key(keyNAT, d.idx, keyInside6), "%s: inside6 %s is longer than /64: ipv6 = \"nptv6\" maps prefixes of /48 to /64 (RFC 6296 section 3.1)", d.who, d.n.Inside6)
		}
		if len(d.n.External6) == 0 {
			continue
		}
		e, l6 := d.n.External6[0], p.pos.key(keyNAT, d.idx, keyExt6)
		if !nptv6Pool.Contains(e) {
			p.errorf(l6, "%s: external6 %s is outside %s: with ipv6 = \"nptv6\" the NAT's external prefix is the /48 around external6, and nptv6 NATs take theirs from %s (leave external6 out for the next free one)", d.who, e, nptv6Pool, nptv6Pool)
			continue
		}
		if o, dup := owner[nptv6Block(e)]; dup {
			p.errorf(l6, "%s: external6 %s is in %s, the external prefix of %s: each nptv6 NAT needs a /48 of its own", d.who, e, nptv6Block(e), o.who)
			continue
		}
		owner[nptv6Block(e)] = d
	}
}

// assignNPTv6 gives an nptv6 NAT without external6 ::1 of the next /48
// of nptv6Pool no other NAT holds.
func (p *parser) assignNPTv6(nats []*natDraft, d *natDraft, line int) {
	held := map[netip.Prefix]bool{}
	for _, o := range nats {
		for _, e := range o.n.External6 {
			if nptv6Pool.Contains(e) {
				held[nptv6Block(e)] = true
			}
		}
	}
	for b := nptv6Pool.Addr(); nptv6Pool.Contains(b); {
		blk := netip.PrefixFrom(b, 48)
		if !held[blk] {
			a := b.Next()
			d.n.External6 = []netip.Addr{a}
			p.public.used[a] = use{who: d.who, key: keyExt6, line: line, net: upPublic, addr: a}
			return
		}
		// The next /48: add one to the third 16-bit word.
		x := b.As16()
		v := uint16(x[4])<<8 | uint16(x[5]) + 1
		x[4], x[5] = byte(v>>8), byte(v)
		b = netip.AddrFrom16(x)
	}
	p.errorf(line, "%s: no free /48 left in %s for the nptv6 external prefix: give one with external6 = \"...\"", d.who, nptv6Pool)
}

// nptv6Named reports whether the NAT who names is in the nptv6 mode.
func nptv6Named(nats []*natDraft, who string) bool {
	for _, d := range nats {
		if d.who == who {
			return isNPTv6(d)
		}
	}
	return false
}
