package nat

import (
	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// The firewall setting (table.Firewall) filters IPv4 packets at the
// outside boundary. Outbound packets meet it before translation, so a
// refused one makes no mapping; inbound ones after their mapping was
// found, so an unsolicited packet is still counted no-mapping, and only
// what the NAT would have let in is counted firewall. Inbound ICMP
// errors meet it before the mapping of the packet they quote is looked
// up. Hairpinned packets never cross the boundary and are not filtered;
// IPv6 goes by the ipv6 mode (ipv6.go), not by these rules.

// setFirewall puts f in force for packets.
func (e *Engine) setFirewall(f table.Firewall) {
	if f.IsZero() {
		e.firewall.Store(nil)
		return
	}
	e.firewall.Store(&f)
}

// firewallRefuses says whether the firewall refuses packet p, going out
// (out) or coming in. The port a rule sees is the remote endpoint's.
func (e *Engine) firewallRefuses(p *header.Parsed, out bool) bool {
	fw := e.firewall.Load()
	if fw == nil {
		return false
	}
	var port uint16
	if p.IPProto == header.ProtoUDP || p.IPProto == header.ProtoTCP {
		if out {
			port = p.Dst.Port()
		} else {
			port = p.Src.Port()
		}
	}
	return !fw.Allows(table.Protocol(p.IPProto), port, out)
}
