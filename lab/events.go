package lab

// Network events of a running lab: links that fail and return, NATs that
// rebind their mappings or reboot, and the behaviour changes (set, flush)
// a schedule may also make. Each is a control op (docs/control.md) and
// the network events appear in the event stream (observe.Announce) with
// their time.

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/observe"
)

// The network event ops.
const (
	OpLink   = "link"   // Request.Node's link goes Request.State: down or up
	OpRebind = "rebind" // NAT Request.NAT moves its live mappings, to Request.Address if set
	OpReboot = "reboot" // NAT Request.NAT loses every mapping, taking Request.Address if set
)

// linkPort finds the link of node: a host's is its NAT's inside port for
// it, a NAT's is its own outside port (its uplink).
func (l *Lab) linkPort(node string) (*NAT, string, nat.Port, error) {
	n := l.nodes[node]
	if n == nil {
		return nil, "", 0, fmt.Errorf("no node %q in lab %s", node, l.Name)
	}
	switch n.Kind {
	case "nat":
		if m := l.nats[node]; m != nil {
			return m, node, nat.Outside, nil
		}
	case "host":
		l.mu.Lock() // a move changes the host's network and the ports' namespaces
		defer l.mu.Unlock()
		m := l.nats[n.Network]
		if m == nil {
			return nil, "", 0, fmt.Errorf("host %s is on the %s network, not behind a NAT: it has no NAT link to fail", node, n.Network)
		}
		for i, in := range m.spec.Inside {
			if in.Namespace == n.Namespace && !in.Free {
				return m, n.Network, nat.Port(i + 1), nil
			}
		}
	}
	return nil, "", 0, fmt.Errorf("%s %s has no link gonat can fail (a host behind a NAT, or a NAT's uplink)", n.Kind, node)
}

// Link takes node's link down (down true) or brings it back up. Packets
// on it are dropped and counted (link-down) while it is down; mappings
// stay.
func (l *Lab) Link(node string, down bool) error {
	m, natName, port, err := l.linkPort(node)
	if err != nil {
		return err
	}
	changed, err := m.Router.SetLinkDown(port, down)
	if err != nil {
		return err
	}
	state := map[bool]string{true: "down", false: "up"}[down]
	where := "uplink of " + natName
	if port != nat.Outside {
		where = fmt.Sprintf("inside port %d of %s", port, natName)
	}
	text := fmt.Sprintf("LINK %s %s (%s)", node, state, where)
	if !changed {
		text += ", as it was"
	}
	l.Events.Announce(observe.Event{NAT: natName, Kind: observe.KindLink, Node: node, Action: state, Text: text})
	return nil
}

// parseLinkState reads a link op's state word.
func parseLinkState(s string) (down bool, err error) {
	switch strings.ToLower(s) {
	case "down":
		return true, nil
	case "up":
		return false, nil
	}
	return false, fmt.Errorf("link state %q: want down or up", s)
}

// handleEvent answers the ops a schedule can make: the network events,
// set and flush.
func (l *Lab) handleEvent(req Request) error {
	switch req.Op {
	case OpLink:
		down, err := parseLinkState(req.State)
		if err != nil {
			return err
		}
		return l.Link(req.Node, down)
	case OpRebind, OpReboot:
		m, err := l.natNamed(req.NAT)
		if err != nil {
			return err
		}
		var addr netip.Addr
		if req.Address != "" {
			if addr, err = netip.ParseAddr(req.Address); err != nil {
				return fmt.Errorf("address: %v", err)
			}
		}
		return l.renumber(req.NAT, m, req.Op == OpReboot, addr)
	case OpMove:
		return l.Move(req.Node, req.NAT)
	case OpSet, OpFlush:
		m, err := l.natNamed(req.NAT)
		if err != nil {
			return err
		}
		text := "FLUSH " + req.NAT + ": every mapping dropped"
		kind := observe.KindFlush
		if req.Op == OpFlush {
			m.Flush()
		} else {
			if err := m.Set(req.Preset, req.Settings); err != nil {
				return err
			}
			c := m.Engine.Config().Table
			kind = observe.KindSet
			text = fmt.Sprintf("SET %s%s: mapping %s filtering %s port-assignment %s, its mappings dropped",
				req.NAT, setArgs(req), c.Mapping, c.Filtering, c.PortAssignment)
		}
		l.Events.Announce(observe.Event{NAT: req.NAT, Kind: kind, Node: req.NAT, Text: text})
		return nil
	}
	return fmt.Errorf("unknown op %q", req.Op)
}

// setArgs is a set request's preset and settings as the command's
// flags: " --preset symmetric --filtering eif".
func setArgs(req Request) string {
	var b strings.Builder
	if req.Preset != "" {
		b.WriteString(" --preset " + req.Preset)
	}
	keys := slices.Sorted(maps.Keys(req.Settings))
	for _, k := range keys {
		fmt.Fprintf(&b, " --%s=%s", k, req.Settings[k])
	}
	return b.String()
}

// natNamed returns the lab's NAT natName, or an error that lists them.
func (l *Lab) natNamed(natName string) (*NAT, error) {
	if m := l.nats[natName]; m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("no NAT %q in lab %s (NATs: %s)", natName, l.Name, strings.Join(l.natOrder, ", "))
}

// Renumber rebinds NAT natName (its live mappings move to new external
// ports) or, with reboot, reboots it (every mapping is lost). With a
// valid addr the NAT's external address becomes addr: the route to it in
// the outside namespace replaces the old one. Only a NAT on the public
// network with one external IPv4 address can take a new one: a nested
// NAT's address is a host address of the NAT above it.
func (l *Lab) Renumber(natName string, reboot bool, addr netip.Addr) error {
	m, err := l.natNamed(natName)
	if err != nil {
		return err
	}
	return l.renumber(natName, m, reboot, addr)
}

// renumber is Renumber once the NAT is found.
func (l *Lab) renumber(natName string, m *NAT, reboot bool, addr netip.Addr) error {
	var ext []netip.Addr
	var old netip.Addr
	if addr.IsValid() {
		var err error
		if old, err = l.newAddressCheck(natName, m, addr); err != nil {
			return err
		}
		if len(m.devices) == 0 {
			return fmt.Errorf("nat %s has no outside device to route a new address to", natName)
		}
		ext = []netip.Addr{addr}
	}
	var dev string
	if ext != nil {
		dev = m.devices[0].Name()
		if err := ns.AddRoute(m.spec.Outside, dev, netip.PrefixFrom(addr, 32), netip.Addr{}); err != nil {
			return err
		}
	}
	kind, text := observe.KindRebind, ""
	var err error
	if reboot {
		kind = observe.KindReboot
		err = m.Engine.Reboot(ext, time.Now())
		text = fmt.Sprintf("REBOOT %s: every mapping lost", natName)
	} else {
		var moved int
		moved, err = m.Engine.Rebind(ext, time.Now())
		text = fmt.Sprintf("REBIND %s: %d mappings moved to new external ports", natName, moved)
	}
	if err != nil {
		if ext != nil {
			ns.DelRoute(m.spec.Outside, dev, netip.PrefixFrom(addr, 32))
		}
		return err
	}
	if ext != nil {
		text += fmt.Sprintf("; external address %s, was %s", addr, old)
		if err := ns.DelRoute(m.spec.Outside, dev, netip.PrefixFrom(old, 32)); err != nil {
			text += fmt.Sprintf(" (its route stays: %v)", err)
		}
		l.mu.Lock()
		if n := l.nodes[natName]; n != nil {
			addrs := slices.Clone(n.Addresses)
			for i, a := range addrs {
				if a == old {
					addrs[i] = addr
				}
			}
			n.Addresses = addrs
			if l.names != nil {
				// Its name follows, as a dynamic DNS client would make it.
				if err := l.names.SetAddrs(natName, addrs); err != nil {
					text += fmt.Sprintf(" (its name does not follow: %v)", err)
				}
			}
		}
		l.mu.Unlock()
	}
	l.Events.Announce(observe.Event{NAT: natName, Kind: kind, Node: natName, External: addrString(ext), Text: text})
	return nil
}

// newAddressCheck reports why NAT natName cannot take addr as its
// external address, if it cannot, and the address it has.
func (l *Lab) newAddressCheck(natName string, m *NAT, addr netip.Addr) (netip.Addr, error) {
	if !addr.Is4() {
		return netip.Addr{}, fmt.Errorf("address %s: an external address is IPv4", addr)
	}
	cur := m.Engine.Config().Table.External
	if len(cur) != 1 {
		return netip.Addr{}, fmt.Errorf("nat %s has %d external addresses; --address replaces one", natName, len(cur))
	}
	if n := l.nodes[natName]; n != nil && n.Network != Public {
		return netip.Addr{}, fmt.Errorf("nat %s is behind nat %s: only a NAT on the public network can take a new address", natName, n.Network)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.nodes {
		if slices.Contains(n.Addresses, addr) {
			return netip.Addr{}, fmt.Errorf("address %s is %s's", addr, n.Name)
		}
	}
	return cur[0], nil
}

func addrString(as []netip.Addr) string {
	if len(as) == 0 {
		return ""
	}
	return as[0].String()
}
