package lab

// Impairment in topology files: `impair`, `impair-in` and `impair-out`
// on [[nat]] impair its uplink (the link beyond its outside port), as
// gonat run's --impair flags impair the outside link; on [[host]] they
// impair the host's link to its NAT (the NAT's inside port for that
// host) or a public host's link to the core (a wire, wire.go, seeded by
// the host's seed). In and out are the node's own: a NAT's impair-in is
// what comes into it from its upstream, a host's what the host
// receives; impair-out is what each sends. A NAT's seed seeds every
// link of it.

import (
	"fmt"
	"strings"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/impair"
)

const (
	keyImpair    = "impair"
	keyImpairIn  = "impair-in"
	keyImpairOut = "impair-out"
	keySeed      = "seed"
)

const impairExample = "delay=50ms loss=1%"

// parseNATImpair reads a [[nat]] entry's impairment of its uplink: In
// what comes into the NAT from upstream, Out what leaves it upstream.
func (p *parser) parseNATImpair(d *natDraft, m map[string]any, line func(string) int) {
	d.n.Impair, _ = p.parseImpairWays(d.who, m, line, false)
}

// parseImpairWays reads an entry's impair (both ways), impair-in (In)
// and impair-out (Out): a way given both by impair and by its one-way
// key keeps the one-way key's settings over impair's. With off, "off"
// stands for no impairment (that way, or both for impair). given says
// whether any of the keys is there.
func (p *parser) parseImpairWays(who string, m map[string]any, line func(string) int, off bool) (pi forward.PortImpair, given bool) {
	isOff := func(s string) bool { return off && strings.TrimSpace(s) == "off" }
	both, ok := p.str(m, keyImpair, who, line(keyImpair), impairExample)
	given = ok
	if isOff(both) {
		both = ""
	} else if ok {
		sp, err := impair.Parse(both)
		if err != nil {
			p.errorf(line(keyImpair), "%s: %s %q: %v", who, keyImpair, both, impairErr(err))
			return pi, given
		}
		pi = forward.PortImpair{In: sp, Out: sp}
	}
	for _, w := range []struct {
		key string
		to  *impair.Spec
	}{{keyImpairIn, &pi.In}, {keyImpairOut, &pi.Out}} {
		s, ok := p.str(m, w.key, who, line(w.key), impairExample)
		if !ok {
			continue
		}
		given = true
		if isOff(s) {
			*w.to = impair.Spec{}
			continue
		}
		sp, err := impair.Parse(impair.Overlay(both, s))
		switch {
		case err != nil && both != "":
			p.errorf(line(w.key), "%s: %s %q over impair %q: %v", who, w.key, s, both, impairErr(err))
		case err != nil:
			p.errorf(line(w.key), "%s: %s %q: %v", who, w.key, s, impairErr(err))
		default:
			*w.to = sp
		}
	}
	return pi, given
}

// parseHostImpair reads a [[host]] entry's impairment of its link (In
// what the host receives, Out what it sends), and for a public host the
// seed of its Wire. A public host given any impair key ("off" too) gets
// a Wire instead of a veth.
func (p *parser) parseHostImpair(d *hostDraft, m map[string]any, line func(string) int) {
	public := d.h.Network == Public
	var ok bool
	d.h.Impair, ok = p.parseImpairWays(d.who, m, line, public)
	d.h.Wire = ok && public
	v, given := m[keySeed]
	if !given {
		return
	}
	n, isInt := v.(int64)
	switch {
	case !isInt || n <= 0:
		p.errorf(line(keySeed), "%s: seed: want a positive integer such as 7 (it seeds the impairment of the host's link), got %s", d.who, describe(v))
	case !public:
		p.errorf(line(keySeed), "%s: seed: the link of a host behind a NAT is impaired with its NAT's seed; set seed on the [[nat]]", d.who)
	case !ok:
		p.errorf(line(keySeed), "%s: seed: it seeds the impairment of the host's link, which has none: give it impair too (\"off\" to start unimpaired)", d.who)
	default:
		d.h.Seed = n
	}
}

// impairErr is an impair.Parse error without the package's prefix: the
// message already names the key.
func impairErr(err error) string {
	return strings.TrimPrefix(err.Error(), "impair: ")
}

// portImpair is the impairment of NAT n's ports as specOf lays them
// out: the outside port, then one inside port per host in hosts (then
// the nested NATs', never impaired); nil when nothing is impaired.
func portImpair(n *NATNode, hosts []*HostNode) []forward.PortImpair {
	pis := make([]forward.PortImpair, 1+len(hosts))
	pis[0] = n.Impair
	some := !n.Impair.In.IsZero() || !n.Impair.Out.IsZero()
	for i, h := range hosts {
		// The port reads what the host sends and writes what it receives.
		pis[1+i] = forward.PortImpair{In: h.Impair.Out, Out: h.Impair.In}
		some = some || !h.Impair.In.IsZero() || !h.Impair.Out.IsZero()
	}
	if !some {
		return nil
	}
	return pis
}

// impairSummary describes a NAT's uplink impairment for Describe:
// "uplink impair ..." as impairWays puts it, or "" when none.
func (n *NATNode) impairSummary() string {
	if w := impairWays(n.Impair); w != "" {
		return "uplink impair " + w
	}
	return ""
}

// impairWays describes pi: its spec when both ways are alike, else
// "in SPEC, out SPEC" without a way that has none; "" when neither has.
func impairWays(pi forward.PortImpair) string {
	in, out := pi.In.String(), pi.Out.String()
	if in == out {
		return in
	}
	var parts []string
	if in != "" {
		parts = append(parts, "in "+in)
	}
	if out != "" {
		parts = append(parts, "out "+out)
	}
	return strings.Join(parts, ", ")
}

// Impair sets the impairment of a node's link while the lab runs: a
// NAT's uplink, a host's link to its NAT, or a public host's wire, both
// ways. spec is in
// impair.Syntax; "" or "off" clears it. Packets already delayed leave
// when due.
func (l *Lab) Impair(node, spec string) error {
	var sp impair.Spec
	if s := strings.TrimSpace(spec); s != "" && s != "off" {
		var err error
		if sp, err = impair.Parse(s); err != nil {
			return fmt.Errorf("impair %q: %s", spec, impairErr(err))
		}
	}
	if w, public, err := l.wireOf(node); public {
		if err != nil {
			return err
		}
		w.SetImpair(forward.PortImpair{In: sp, Out: sp})
		return nil
	}
	n, port, err := l.impairPort(node)
	if err != nil {
		return err
	}
	return n.Router.SetImpair(port, forward.PortImpair{In: sp, Out: sp})
}

// impairPort finds the NAT and the port of that NAT whose link is node's:
// a NAT's outside port, or the inside port of a host behind a NAT.
func (l *Lab) impairPort(node string) (*NAT, int, error) {
	if n := l.nats[node]; n != nil {
		return n, 0, nil
	}
	nd := l.nodes[node]
	if nd == nil || nd.Kind != "host" {
		return nil, 0, fmt.Errorf("no NAT or host %q in lab %s (NATs: %s)", node, l.Name, strings.Join(l.natOrder, ", "))
	}
	l.mu.Lock() // a move changes the host's network and the ports' namespaces
	defer l.mu.Unlock()
	n := l.nats[nd.Network]
	if n == nil {
		return nil, 0, fmt.Errorf("host %s is on the %s network: it has no NAT link to impair; impair a NAT's uplink instead", node, nd.Network)
	}
	for i, in := range n.spec.Inside {
		if in.Namespace == nd.Namespace && !in.Free {
			return n, i + 1, nil
		}
	}
	return nil, 0, fmt.Errorf("host %s: no port of NAT %s leads to it", node, nd.Network)
}
