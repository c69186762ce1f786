package lab

// Path MTU in topology files: `uplink-mtu` on [[nat]] is the MTU of the
// link beyond its outside port (gonat run's --outside-mtu), `mtu` on
// [[host]] the MTU of the host's link to its NAT. Each sets the MTU of
// the device on the far side of the NAT's port, so the kernel there keeps
// to it, and the NAT enforces it for what it sends that way: DF-clear
// IPv4 fragmented, the rest refused with ICMP (nat/pmtu.go).

import "strconv"

const (
	keyUplinkMTU = "uplink-mtu"
	keyMTU       = "mtu"
)

// MTU bounds (RFC 791, RFC 8200 section 5).
const (
	minMTU4 = 68
	minMTU6 = 1280
	maxMTU  = 65535
)

// mtuValue reads key as an MTU: a TOML integer of 68-65535.
func (p *parser) mtuValue(m map[string]any, key, who string, line int) int {
	v, ok := m[key]
	if !ok {
		return 0
	}
	n, ok := v.(int64)
	if !ok || n < minMTU4 || n > maxMTU {
		p.errorf(line, "%s: %s: want an integer MTU in bytes, %d-%d (IPv4 needs at least %d, IPv6 %d), such as 1280; got %s",
			who, key, minMTU4, maxMTU, minMTU4, minMTU6, describe(v))
		return 0
	}
	return int(n)
}

// parseNATMTU reads a [[nat]] entry's uplink-mtu.
func (p *parser) parseNATMTU(d *natDraft, m map[string]any, line func(string) int) {
	d.n.UplinkMTU = p.mtuValue(m, keyUplinkMTU, d.who, line(keyUplinkMTU))
}

// parseHostMTU reads a [[host]] entry's mtu.
func (p *parser) parseHostMTU(d *hostDraft, m map[string]any, line func(string) int) {
	d.h.MTU = p.mtuValue(m, keyMTU, d.who, line(keyMTU))
	if d.h.MTU > 0 && d.h.Network == Public {
		p.errorf(line(keyMTU), "%s: mtu: a public host has no link of a NAT's; set uplink-mtu on a NAT instead", d.who)
		d.h.MTU = 0
	}
}

// checkMTUs checks, once addresses are assigned, that a link carrying
// IPv6 has an MTU of at least 1280: a NAT's uplink when it has external6,
// a host's link when the host has an IPv6 address.
func (p *parser) checkMTUs(nats []*natDraft, hosts []*hostDraft) {
	for _, d := range nats {
		if n := d.n.UplinkMTU; n > 0 && n < minMTU6 && len(d.n.External6) > 0 {
			p.errorf(p.pos.key(keyNAT, d.idx, keyUplinkMTU), "%s: uplink-mtu %d: the uplink carries IPv6 (external6 %s), which needs at least %d (RFC 8200)",
				d.who, n, d.n.External6[0], minMTU6)
		}
	}
	for _, d := range hosts {
		if n := d.h.MTU; n > 0 && n < minMTU6 {
			if _, v6 := families(d.h.Addresses); v6 {
				p.errorf(p.pos.key(keyHost, d.idx, keyMTU), "%s: mtu %d: the host's link carries IPv6, which needs at least %d (RFC 8200)", d.who, n, minMTU6)
			}
		}
	}
}

// mtuSummary describes a NAT's uplink MTU for Describe, or "" when it
// has none.
func (n *NATNode) mtuSummary() string {
	if n.UplinkMTU == 0 {
		return ""
	}
	return "uplink-mtu " + strconv.Itoa(n.UplinkMTU)
}
