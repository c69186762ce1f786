package nat

import (
	"fmt"
	"net/netip"
	"slices"
)

// The inside ports as packets read them: which host is behind which
// port, each port's networks, the addresses no outside source may have.
// The view is replaced whole when a port's hosts change (a host moving),
// never changed in place, so packets read it without a lock.

// insideView is the inside ports as packets see them. It never changes:
// a change makes a new one.
type insideView struct {
	ports []InsidePort
	hosts addrIndex // inside host address -> port
	// portNets are each inside port's networks (port i at i-1), each
	// once: a source from that port must lie in one of them.
	portNets [][]netip.Prefix
	// hosts6 are the inside hosts' IPv6 addresses and their ports.
	hosts6 map[netip.Addr]Port
	// ownMasks are the inside networks and gateways, each once, as
	// words (the first numNets); then the external addresses too when
	// there are few (Engine.ownHasExternal). No source from outside is
	// in them.
	ownMasks []netMask
	numNets  int
}

// withExternal returns the masks of the inside networks (the first
// numNets of masks) followed, when the engine keeps them there, by
// those of the external addresses ext.
func (e *Engine) withExternal(masks []netMask, numNets int, ext []netip.Addr) []netMask {
	out := slices.Clone(masks[:numNets])
	if e.ownHasExternal {
		for _, a := range ext {
			out = append(out, netMasks([]netip.Prefix{netip.PrefixFrom(a, 32)})...)
		}
	}
	return out
}

// setInsideLocked makes the view packets read of the inside ports
// (host index, each port's networks, the inside networks as masks, the
// IPv6 state) from inside. The whole engine is locked, or not yet
// running.
func (e *Engine) setInsideLocked(inside []InsidePort) error {
	hosts := make(map[netip.Addr]uint32)
	v := &insideView{ports: inside, portNets: make([][]netip.Prefix, len(inside))}
	var nets []netip.Prefix // the inside networks and gateways, each once
	for i, ip := range inside {
		nets = appendNet(nets, netip.PrefixFrom(ip.Gateway, 32))
		for _, h := range ip.Hosts {
			if h.Addr().Is6() {
				if v.hosts6 == nil {
					v.hosts6 = make(map[netip.Addr]Port)
				}
				v.hosts6[h.Addr()] = Port(i + 1)
				v.portNets[i] = appendNet(v.portNets[i], h.Masked())
				continue
			}
			hosts[h.Addr()] = uint32(i + 1)
			nets = appendNet(nets, h.Masked())
			v.portNets[i] = appendNet(v.portNets[i], h.Masked())
		}
	}
	e.aliases.index(inside, hosts)
	v.hosts = newAddrIndex(hosts)
	masks := netMasks(nets)
	v.numNets = len(masks)
	v.ownMasks = e.withExternal(masks, v.numNets, e.external)
	st, err := newV6State(&e.cfg.Table, v.portNets, v.hosts6)
	if err != nil {
		return err
	}
	e.v6.Store(st)
	e.in.Store(v)
	return nil
}

// SetInsideHosts puts hosts behind inside port in, in place of those it
// had: a host moving in or out of the NAT's network (lab move). Without
// hosts the port is free. Mappings stay: those of a host that left lapse
// by their timeouts, their inbound packets dropped (no-route) as no port
// holds their host's address.
func (e *Engine) SetInsideHosts(in Port, hosts []netip.Prefix) error {
	e.shared.Lock()
	defer e.shared.Unlock()
	cur := e.in.Load().ports
	if in < 1 || int(in) > len(cur) {
		return fmt.Errorf("no inside port %d (the engine has %d)", in, len(cur))
	}
	inside := slices.Clone(cur)
	inside[in-1].Hosts = slices.Clone(hosts)
	inside[in-1].Free = len(hosts) == 0
	c := e.cfg
	c.Inside = inside
	if err := c.Validate(); err != nil {
		return err
	}
	if err := e.setInsideLocked(inside); err != nil {
		return err
	}
	e.cfg.Inside = inside
	return nil
}
