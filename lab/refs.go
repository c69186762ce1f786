package lab

// Checks between entries: names used once, each upstream a NAT that
// leads to the public network, each host's network a NAT or public.

import (
	"sort"
	"strings"
)

// checkNames reports node names used twice, in line order.
func (p *parser) checkNames(nats []*natDraft, hosts []*hostDraft) {
	type node struct {
		kind, name, who string
		line, at        int
	}
	var all []node
	for _, d := range nats {
		if d.named {
			all = append(all, node{"nat", d.n.Name, d.who, d.n.Line, p.pos.key(keyNAT, d.idx, keyName)})
		}
	}
	for _, d := range hosts {
		if d.named {
			all = append(all, node{"host", d.h.Name, d.who, d.h.Line, p.pos.key(keyHost, d.idx, keyName)})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].line < all[j].line })
	seen := map[string]node{}
	for _, n := range all {
		if first, dup := seen[n.name]; dup {
			p.errorf(n.at, "%s: name %q is already used by the %s on line %d (NATs and hosts share one namespace per node)", n.who, n.name, first.kind, first.line)
			continue
		}
		seen[n.name] = n
	}
}

func withPublic(names []string) []string {
	return append(append([]string(nil), names...), Public)
}

func natList(names []string) string {
	if len(names) == 0 {
		return "the lab has none"
	}
	return "NATs: " + strings.Join(names, ", ")
}

// resolveUpstreams links each NAT to its upstream and finds the NATs that
// do not lead to the public network (cycles).
func (p *parser) resolveUpstreams(nats []*natDraft, natIdx map[string]int, names []string) {
	for _, d := range nats {
		if d.up == upBad {
			continue
		}
		up := d.n.Upstream
		if up == Public {
			d.up = upPublic
			continue
		}
		l := p.pos.key(keyNAT, d.idx, keyUpstream)
		j, ok := natIdx[up]
		switch {
		case !ok:
			p.errorf(l, "%s: upstream %q: no such NAT (%s)%s", d.who, up, natList(names), didYouMean(up, withPublic(names), nil))
			d.up = upBad
		case j == d.idx:
			p.errorf(l, "%s: upstream %q: a NAT cannot be its own upstream", d.who, up)
			d.up = upBad
		default:
			d.up = j
		}
	}
	for i := range nats {
		var chain []int
		onChain := map[int]int{}
		j, result := i, 0
		for result == 0 {
			if nats[j].reaches != 0 {
				result = nats[j].reaches
				break
			}
			if at, ok := onChain[j]; ok {
				p.reportCycle(nats, chain[at:])
				result = 2
				break
			}
			onChain[j] = len(chain)
			chain = append(chain, j)
			switch u := nats[j].up; {
			case u == upPublic:
				result = 1
			case u < 0:
				result = 2
			default:
				j = u
			}
		}
		for _, c := range chain {
			nats[c].reaches = result
		}
	}
}

func (p *parser) reportCycle(nats []*natDraft, cycle []int) {
	first := 0
	for k, c := range cycle {
		if c < cycle[first] {
			first = k
		}
	}
	var names []string
	for k := range cycle {
		names = append(names, nats[cycle[(first+k)%len(cycle)]].n.Name)
	}
	names = append(names, names[0])
	d := nats[cycle[first]]
	p.errorf(p.pos.key(keyNAT, d.idx, keyUpstream), "%s: upstream cycle %s: every chain of upstreams must end at %q",
		d.who, strings.Join(names, " -> "), Public)
}

func (p *parser) resolveNetworks(hosts []*hostDraft, natIdx map[string]int, names []string) {
	for _, d := range hosts {
		switch {
		case d.h.Network == "": // missing or empty: reported by parseHost
		case d.h.Network == Public:
			d.net = upPublic
		default:
			j, ok := natIdx[d.h.Network]
			if !ok {
				p.errorf(p.pos.key(keyHost, d.idx, keyNetwork), "%s: network %q: no such NAT (networks: %s)%s",
					d.who, d.h.Network, strings.Join(append([]string{Public}, names...), ", "), didYouMean(d.h.Network, withPublic(names), nil))
				continue
			}
			d.net = j
		}
	}
}
