package lab

import "github.com/gonat/gonat/table"

// checkNAT66 checks each NAT in the nat66 mode has an inside6: it
// translates its inside hosts' IPv6 addresses to its external6, which it
// is given (or takes upstream) as any dual-stack NAT does.
func (p *parser) checkNAT66(nats []*natDraft) {
	for _, d := range nats {
		s, ok := d.n.Settings[keyIPv6]
		if m, err := table.ParseIPv6Mode(s); !ok || err != nil || m != table.IPv6NAT66 {
			continue
		}
		if !d.n.Inside6.IsValid() {
			p.errorf(p.pos.key(keyNAT, d.idx, keyIPv6), "%s: ipv6 = \"nat66\" without inside6: no inside host has an IPv6 address to translate (give an inside6 network, e.g. inside6 = \"fd00:1::/64\")", d.who)
		}
	}
}
