package lab

// A host that moves to another NAT's network (gonat lab move, [[event]]
// move): its link to its NAT goes, addresses and routes with it, and it
// comes up on an inside port of the other NAT with the next free address
// of that network and a default route through it. Its sockets see the
// network change as on a laptop that changes Wi-Fi: the old address is
// gone. The old NAT's mappings stay until they lapse.
//
// A forwarding plane's ports are fixed while it runs, so a NAT keeps
// free inside ports for hosts that move in: free-ports on its [[nat]],
// and one for each [[event]] move into its network. A free port's
// device waits, down and without addresses, in the lab's namespace
// LAB._free; the port a host leaves goes there and is free in its turn.
// Every device that moves has a name no other in the lab has (gm0, gm1,
// ...), so it never meets a namesake in the namespace it moves to.

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/observe"
)

// OpMove moves host Request.Node to the network of NAT Request.NAT.
const OpMove = "move"

const (
	keyMove      = "move"
	keyFreePorts = "free-ports"
)

// maxFreePorts bounds a NAT's free ports: each is a TUN device.
const maxFreePorts = 64

// freeNamespace is where lab name's free inside ports wait. No node name
// holds '_', so it is no node's namespace.
func freeNamespace(name string) string { return NamespacePrefix(name) + "_free" }

// parseFreePorts reads a [[nat]]'s free-ports.
func (p *parser) parseFreePorts(d *natDraft, m map[string]any, line func(string) int) {
	v, ok := m[keyFreePorts]
	if !ok {
		return
	}
	n, isInt := v.(int64)
	if !isInt || n < 0 || n > maxFreePorts {
		p.errorf(line(keyFreePorts), "%s: %s: want a whole number from 0 to %d (inside ports kept for hosts that move in), got %s",
			d.who, keyFreePorts, maxFreePorts, describe(v))
		return
	}
	d.n.FreePorts = int(n)
}

// FreePortsOf is how many free inside ports NAT n starts with: its
// FreePorts and one for each [[event]] move into its network.
func (t *Topology) FreePortsOf(n *NATNode) int {
	k := n.FreePorts
	for _, ev := range t.Events {
		if ev.Request.Op == OpMove && ev.Request.NAT == n.Name {
			k++
		}
	}
	return min(k, maxFreePorts)
}

// hasFreePorts reports whether any NAT of t keeps free ports.
func (t *Topology) hasFreePorts() bool {
	for i := range t.NATs {
		if t.FreePortsOf(&t.NATs[i]) > 0 {
			return true
		}
	}
	return false
}

// movedName returns a device name no other device of the lab has.
func (l *Lab) movedName() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.moved++
	return fmt.Sprintf("gm%d", l.moved-1)
}

// Move moves host to the network of NAT network: its link to its NAT
// goes (the port waits as a free one), and a free inside port of the
// other NAT comes up in its namespace with the next free address of
// that network and the default route; the lab's DNS server gives its
// name the new address. A MOVE event says when, from where and to where.
func (l *Lab) Move(host, network string) error {
	l.moving.Lock()
	defer l.moving.Unlock()
	h, src, i, err := l.movable(host, network)
	if err != nil {
		return err
	}
	dst := l.nats[network]
	j := -1
	l.mu.Lock()
	for k, in := range dst.spec.Inside {
		if in.Free {
			j = k
			break
		}
	}
	l.mu.Unlock()
	if j < 0 {
		return fmt.Errorf("nat %s has no free inside port for a host to move in: give it free-ports = N in the topology file (each [[event]] move into it keeps one too)", network)
	}
	netw := l.Topo.NAT(network)
	addr, ok := l.freeAddress(network, netw.Inside, netw.Gateway)
	if !ok {
		return fmt.Errorf("network %s (%s) has no free address left for %s", network, netw.Inside, host)
	}
	pf := netip.PrefixFrom(addr, netw.Inside.Bits())
	free := freeNamespace(l.Name)
	l.mu.Lock()
	from, old := h.Network, h.Addresses
	oldDev, newDev := src.spec.Inside[i].Name, dst.spec.Inside[j].Name
	oldHosts := src.spec.Inside[i].Hosts
	srcNet := l.Topo.NAT(from).Inside
	l.mu.Unlock()

	// The old link leaves the host, its addresses and routes with it,
	// then the new one comes in. A step that fails undoes those before
	// it, so the host is where it was.
	parked := l.movedName()
	var undo []func()
	fail := func(err error) error {
		for k := len(undo) - 1; k >= 0; k-- {
			undo[k]()
		}
		return fmt.Errorf("move %s: %w (it stays on %s)", host, err, from)
	}
	if err := ns.MoveLink(h.Namespace, oldDev, free, parked); err != nil {
		return fail(err)
	}
	undo = append(undo, func() {
		if ns.MoveLink(free, parked, h.Namespace, oldDev) == nil {
			upLink(h.Namespace, oldDev, oldHosts)
		}
	})
	if err := ns.MoveLink(free, newDev, h.Namespace, newDev); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { ns.MoveLink(h.Namespace, newDev, free, newDev) })
	if err := upLink(h.Namespace, newDev, []netip.Prefix{pf}); err != nil {
		return fail(err)
	}
	if err := src.Engine.SetInsideHosts(nat.Port(i+1), nil); err != nil {
		return fail(fmt.Errorf("nat %s: %w", from, err))
	}
	undo = append(undo, func() { src.Engine.SetInsideHosts(nat.Port(i+1), oldHosts) })
	if err := dst.Engine.SetInsideHosts(nat.Port(j+1), []netip.Prefix{pf}); err != nil {
		return fail(fmt.Errorf("nat %s: %w", network, err))
	}
	// The link the host left is no link of its any more: what was set
	// on it (impairment, a link down) does not wait for the next host.
	if r := src.Router; r != nil {
		r.SetImpair(i+1, forward.PortImpair{})
		r.SetLinkDown(nat.Port(i+1), false)
	}
	l.mu.Lock()
	src.spec.Inside[i] = InsideSpec{Namespace: free, Free: true, Network: srcNet, Name: parked}
	dst.spec.Inside[j] = InsideSpec{Namespace: h.Namespace, Hosts: []netip.Prefix{pf}, Name: newDev}
	h.Network, h.Addresses = network, []netip.Addr{addr}
	l.mu.Unlock()
	oldText := make([]string, len(old))
	for k, a := range old {
		oldText[k] = a.String()
	}
	l.Events.Announce(observe.Event{NAT: network, Kind: observe.KindMove, Node: host,
		OldAddress: strings.Join(oldText, ","), NewAddress: addr.String(),
		Text: fmt.Sprintf("MOVE %s from %s (%s) to %s (%s)", host, from, strings.Join(oldText, ", "), network, addr)})
	if l.names != nil {
		if err := l.names.SetAddrs(host, []netip.Addr{addr}); err != nil {
			return fmt.Errorf("%s moved to %s, but its name does not: %w", host, network, err)
		}
	}
	return nil
}

// upLink gives device dev of namespace nsName the addresses hosts, brings
// it up and routes the default through it: a host's link to its NAT.
func upLink(nsName, dev string, hosts []netip.Prefix) error {
	for _, p := range hosts {
		if err := ns.AddAddr(nsName, dev, p); err != nil {
			return err
		}
	}
	if err := ns.LinkUp(nsName, dev); err != nil {
		return err
	}
	return ns.AddRoute(nsName, dev, netip.PrefixFrom(netip.IPv4Unspecified(), 0), netip.Addr{})
}

// movable checks that host can move to network and returns it, the NAT
// it is behind and its inside port there (0 the first).
func (l *Lab) movable(host, network string) (*Node, *NAT, int, error) {
	h := l.nodes[host]
	switch {
	case l.Topo == nil:
		return nil, nil, 0, fmt.Errorf("only a lab's hosts move (gonat lab up): %s is gonat run's", l.Name)
	case h == nil:
		return nil, nil, 0, fmt.Errorf("no host %q in lab %s", host, l.Name)
	case h.Kind == "nat":
		return nil, nil, 0, fmt.Errorf("%s is a NAT: only a host moves", host)
	case h.Kind != "host":
		return nil, nil, 0, fmt.Errorf("%s is the public network, not a host", host)
	}
	if l.nats[network] == nil {
		if network == Public {
			return nil, nil, 0, fmt.Errorf("a host moves to a NAT's network, not to %s (a NAT's inside port is its link)", Public)
		}
		return nil, nil, 0, fmt.Errorf("no network %q in lab %s (a NAT's name: %s)", network, l.Name, strings.Join(l.natOrder, ", "))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if h.Network == network {
		return nil, nil, 0, fmt.Errorf("host %s is on network %s already", host, network)
	}
	src := l.nats[h.Network]
	if src == nil {
		return nil, nil, 0, fmt.Errorf("host %s is on the %s network: only a host behind a NAT moves (its link is the NAT's inside port)", host, h.Network)
	}
	if n := dualStack(l.Topo, h.Network, network); n != "" {
		return nil, nil, 0, fmt.Errorf("nat %s has inside6: a host moves between IPv4-only networks", n)
	}
	for i, in := range src.spec.Inside {
		if in.Namespace == h.Namespace && !in.Free {
			return h, src, i, nil
		}
	}
	return nil, nil, 0, fmt.Errorf("host %s has no inside port on nat %s", host, h.Network)
}

// freeAddress is the first address of inside, from .2 up, that no node on
// network has, nor is gw or the broadcast address.
func (l *Lab) freeAddress(network string, inside netip.Prefix, gw netip.Addr) (netip.Addr, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	used := map[netip.Addr]bool{gw: true}
	for _, n := range l.nodes {
		if n.Network == network {
			for _, a := range n.Addresses {
				used[a] = true
			}
		}
	}
	last := lastAddr(inside)
	for a := inside.Addr().Next().Next(); inside.Contains(a) && a != last; a = a.Next() {
		if !used[a] {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// dualStack names the first of NATs a and b that has an IPv6 inside
// network, or is "". A move makes IPv4 links only: the host's IPv6
// address, routes and NPTv6 or NAT64 set-up would not follow it.
func dualStack(t *Topology, a, b string) string {
	for _, name := range []string{a, b} {
		if n := t.NAT(name); n != nil && n.Inside6.IsValid() {
			return name
		}
	}
	return ""
}
