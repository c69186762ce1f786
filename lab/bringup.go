package lab

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
)

// Bring-up and teardown do many independent kernel operations (a
// namespace per node, devices per NAT); they run on a few goroutines at
// once. Most of the work holds the kernel's RTNL lock, so more workers
// than this gain little, and every worker inside a namespace holds an OS
// thread that Go keeps afterwards.
func workers() int { return min(max(2*runtime.NumCPU(), 4), 16) }

// parallel calls f(0) .. f(n-1) on at most w goroutines, handing out
// indices in order, and returns the error of the lowest index that
// failed. After a failure no further index is handed out; those already
// running finish. So every index below the one reported was called, as
// a loop that stops at the first error would have done.
func parallel(n, w int, f func(i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(w, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = f(i); errs[i] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// makeNamespaces creates the namespace of every node but the core (made
// already), in parallel: NAT uplinks with forwarding on, hosts, and the
// veth (or wire) from each public host to the core with its addresses
// and routes.
// Every namespace made is in l.made, failure or not.
func (l *Lab) makeNamespaces(topo *Topology, core string) error {
	var jobs []func() error
	mk := func(n string) error {
		if err := ns.Create(n); err != nil {
			return err
		}
		l.mu.Lock()
		l.made = append(l.made, n)
		l.mu.Unlock()
		return nil
	}
	for _, n := range topo.NATs {
		if n.Upstream == Public {
			continue
		}
		name := l.nodes[n.Name].Namespace
		v6 := n.Inside6.IsValid()
		jobs = append(jobs, func() error {
			if err := mk(name); err != nil {
				return err
			}
			if v6 {
				if err := ns.Sysctl(name, "net/ipv6/conf/all/forwarding", "1"); err != nil {
					return err
				}
			}
			return ns.Sysctl(name, "net/ipv4/ip_forward", "1")
		})
	}
	if topo.hasFreePorts() {
		jobs = append(jobs, func() error { return mk(freeNamespace(l.Name)) })
	}
	pubIndex := 0
	for _, h := range topo.Hosts {
		name := l.nodes[h.Name].Namespace
		if h.Network != Public {
			jobs = append(jobs, func() error { return mk(name) })
			continue
		}
		coreDev := fmt.Sprintf("pub%d", pubIndex)
		pubIndex++
		if h.Wire { // its link impaired: a wire (wire.go)
			jobs = append(jobs, func() error {
				if err := mk(name); err != nil {
					return err
				}
				return l.makeWire(&h, name, core, coreDev)
			})
			continue
		}
		// A veth to the core: host side eth0 with its addresses, default
		// via the core's on-link address; core side routes each address.
		_, v6 := families(h.Addresses)
		jobs = append(jobs, func() error {
			if err := mk(name); err != nil {
				return err
			}
			if v6 {
				// No duplicate address detection on the veth (its
				// addresses are the lab's to hand out): usable at once.
				if err := ns.Sysctl(name, "net/ipv6/conf/default/accept_dad", "0"); err != nil {
					return err
				}
			}
			if err := ns.VethPeer(name, "eth0", core, coreDev); err != nil {
				return err
			}
			if err := ns.AddAddr(core, coreDev, netip.PrefixFrom(coreLink, 32)); err != nil {
				return err
			}
			if v6 {
				if err := ns.AddAddr(core, coreDev, netip.PrefixFrom(coreLink6, 64)); err != nil {
					return err
				}
			}
			for _, a := range h.Addresses {
				if err := ns.AddAddr(name, "eth0", netip.PrefixFrom(a, a.BitLen())); err != nil {
					return err
				}
				if err := ns.AddRoute(core, coreDev, netip.PrefixFrom(a, a.BitLen()), netip.Addr{}); err != nil {
					return err
				}
			}
			if v6 {
				if err := ns.AddRoute(name, "eth0", netip.PrefixFrom(netip.IPv6Unspecified(), 0), coreLink6); err != nil {
					return err
				}
			}
			return ns.AddRoute(name, "eth0", netip.PrefixFrom(netip.IPv4Unspecified(), 0), coreLink)
		})
	}
	return parallel(len(jobs), workers(), func(i int) error { return jobs[i]() })
}

// natLevels groups topo.Order() by depth: the NATs on the public network
// first, then those behind them, and so on; each level in topology order.
// A NAT's outside port is in the namespace where its upstream's inside
// port for it is, so a level starts once the one before it is up.
func natLevels(topo *Topology) [][]*NATNode {
	depth := map[string]int{Public: -1}
	var levels [][]*NATNode
	for _, n := range topo.Order() { // upstreams before the NATs behind them
		d := depth[n.Upstream] + 1
		depth[n.Name] = d
		if d == len(levels) {
			levels = append(levels, nil)
		}
		levels[d] = append(levels[d], n)
	}
	return levels
}

// startNATs starts every NAT of topo, a level at a time and the NATs of
// a level in parallel. Each NAT gets the outside device name it would get
// started one by one in topology order, so names do not depend on which
// came first. The NATs that started are in l.nats, in topology order, even
// when one failed; the error is that of the first in topology order
// among the first level with a failure.
func (l *Lab) startNATs(ctx context.Context, topo *Topology, opt Options, backend string, logf func(string, ...any)) error {
	pfx := NamespacePrefix(l.Name)
	core := pfx + Public
	outside := 0 // devices in the core so far
	hosts := map[string][]*HostNode{}
	inner := map[string][]*NATNode{}
	for i := range topo.Hosts {
		hosts[topo.Hosts[i].Network] = append(hosts[topo.Hosts[i].Network], &topo.Hosts[i])
	}
	for i := range topo.NATs {
		inner[topo.NATs[i].Upstream] = append(inner[topo.NATs[i].Upstream], &topo.NATs[i])
	}
	var err error
	for _, level := range natLevels(topo) {
		specs := make([]*NATSpec, len(level))
		for i, n := range level {
			spec := l.specOf(n, hosts[n.Name], inner[n.Name], opt, backend, logf)
			if len(spec.Inside) == 0 {
				// A NAT with nothing behind it still runs (hosts may come
				// later in a future version); give it nothing to route.
				logf("nat %s has no hosts behind it", n.Name)
				continue
			}
			if spec.Outside == core {
				spec.OutsideName = fmt.Sprintf("gnat%d", outside)
				outside++
			}
			specs[i] = spec
		}
		running := make([]*NAT, len(level))
		err = parallel(len(level), workers(), func(i int) error {
			n := level[i]
			if specs[i] == nil {
				return nil
			}
			logf("starting nat %s (%s)", n.Name, n.Behavior.Mapping.Short(false)+"/"+n.Behavior.Filtering.Short(true))
			r, err := StartNAT(ctx, *specs[i])
			if err != nil {
				return fmt.Errorf("nat %s: %w", n.Name, err)
			}
			logf("nat %s: readers %s", n.Name, r.ReadersDesc())
			running[i] = r
			return nil
		})
		for i, r := range running {
			if r == nil {
				continue
			}
			name := level[i].Name
			var also func(nat.Event)
			if opt.Observer != nil {
				also = func(ev nat.Event) { opt.Observer(name, ev) }
			}
			l.Events.Attach(name, r.Engine, also)
			l.nats[name] = r
		}
		if err != nil {
			break
		}
	}
	for _, n := range topo.Order() {
		if l.nats[n.Name] != nil {
			l.natOrder = append(l.natOrder, n.Name)
		}
	}
	return err
}

// closeNATs closes every NAT, the innermost depth first, the NATs of one
// depth together: all are told to stop, then waited for (closing a device
// waits for the kernel; waits made together end together, and the
// forward package bounds how many run at once).
func (l *Lab) closeNATs() {
	levels := [][]string{l.natOrder}
	if l.Topo != nil {
		levels = nil
		for _, level := range natLevels(l.Topo) {
			var names []string
			for _, n := range level {
				if l.nats[n.Name] != nil {
					names = append(names, n.Name)
				}
			}
			levels = append(levels, names)
		}
	}
	for i := len(levels) - 1; i >= 0; i-- {
		for _, name := range levels[i] {
			l.nats[name].cancel()
		}
		for _, name := range levels[i] {
			l.nats[name].Close()
		}
	}
}

// specOf is how Up starts NAT n: its outside port where its upstream
// is, an inside port for each of its hosts and each NAT nested in it
// (inner), in topology order.
func (l *Lab) specOf(n *NATNode, hosts []*HostNode, inner []*NATNode, opt Options, backend string, logf func(string, ...any)) *NATSpec {
	pfx := NamespacePrefix(l.Name)
	spec := &NATSpec{Outside: l.nodes[n.Name].Namespace, Behavior: n.Behavior, Backend: backend, ReadMode: opt.ReadMode,
		OutsideMTU: n.UplinkMTU}
	natName := n.Name
	spec.Logf = func(f string, a ...any) { logf("nat %s: %s", natName, fmt.Sprintf(f, a...)) }
	if opt.Tap != nil {
		spec.Tap = opt.Tap(natName)
	}
	if n.Upstream == Public {
		spec.Outside = pfx + Public
	}
	for _, h := range hosts {
		in := InsideSpec{Namespace: pfx + h.Name, MTU: h.MTU}
		in.Hosts = n.prefixes(h.Addresses)
		spec.Inside = append(spec.Inside, in)
	}
	for _, m := range inner {
		in := InsideSpec{Namespace: pfx + m.Name, Transit: true}
		in.Hosts = n.prefixes(append(slices.Clone(m.External), m.External6...))
		spec.Inside = append(spec.Inside, in)
	}
	spec.Impair = portImpair(n, hosts)
	if l.Topo != nil {
		for range l.Topo.FreePortsOf(n) {
			spec.Inside = append(spec.Inside, InsideSpec{Namespace: freeNamespace(l.Name), Free: true, Network: n.Inside, Name: fmt.Sprintf("gm%d", l.moved)})
			l.moved++
		}
	}
	return spec
}

// prefixes puts each address of a node behind n in its network: the
// inside network, or inside6 for an IPv6 address.
func (n *NATNode) prefixes(as []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(as))
	for _, a := range as {
		bits := n.Inside.Bits()
		if a.Is6() {
			bits = n.Inside6.Bits()
		}
		out = append(out, netip.PrefixFrom(a, bits))
	}
	return out
}
