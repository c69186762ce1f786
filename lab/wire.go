package lab

// A public host's link to the core is a kernel veth, which no gonat code
// sees and these kernels cannot impair (no netem). A public host given
// impair gets a forward.Wire instead: a plain TUN device as its eth0, one
// in the core routing its addresses, and the lab process copying packets
// between them through the impairment. A wire is built only where asked:
// a water TUN pair is slower than a veth. Its devices live in the lab's
// namespaces, so they go with them even after a crash.

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/tun"
)

// LinkStatus is a public host's impaired link (its wire) in LabStatus.
type LinkStatus struct {
	Impair string `json:"impair"` // the spec in force ("in SPEC, out SPEC" when the ways differ), "" for none
	Seed   int64  `json:"seed"`   // seeds the impairment: set seed on the [[host]] to repeat a run
	// Packets counts what it carried, both ways ("forward"), and what
	// it dropped by reason (impair-loss, queue-overflow).
	Packets map[string]uint64 `json:"packets"`
}

// makeWire joins public host h (namespace name) to the core by a wire:
// eth0 in its namespace with its addresses and default routes, coreDev
// in the core routing its addresses, the wire started between them.
func (l *Lab) makeWire(h *HostNode, name, core, coreDev string) error {
	_, v6 := families(h.Addresses)
	hc := tun.Config{Namespace: name, Name: "eth0", Backend: tun.BackendWater,

		Routes: []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0)}}
	cc := tun.Config{Namespace: core, Name: coreDev, Backend: tun.BackendWater}
	if v6 {
		hc.Routes = append(hc.Routes, netip.PrefixFrom(netip.IPv6Unspecified(), 0))
	}
	for _, a := range h.Addresses {
		hc.Addresses = append(hc.Addresses, netip.PrefixFrom(a, a.BitLen()))
		cc.Routes = append(cc.Routes, netip.PrefixFrom(a, a.BitLen()))
	}
	hd, err := tun.Create(hc)
	if err != nil {
		return fmt.Errorf("host %s: link: %w", h.Name, err)
	}
	cd, err := tun.Create(cc)
	if err != nil {
		hd.Close()
		return fmt.Errorf("host %s: link in the core: %w", h.Name, err)
	}
	seed := h.Seed
	if seed == 0 {
		seed = RandomSeed()
	}
	w := forward.NewWire(hd, cd, h.Impair, uint64(seed))
	w.Start()
	l.mu.Lock()
	if l.wires == nil {
		l.wires = map[string]*forward.Wire{}
	}
	l.wires[h.Name] = w
	l.mu.Unlock()
	return nil
}

// closeWires stops every wire and closes its devices.
func (l *Lab) closeWires() {
	l.mu.Lock()
	ws := l.wires
	l.wires = nil
	l.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
}

// wireOf is the wire of node when it is a public host: ok is false for
// any other node; err says how to get one when it has none.
func (l *Lab) wireOf(node string) (w *forward.Wire, ok bool, err error) {
	nd := l.nodes[node]
	if nd == nil || nd.Kind != "host" || nd.Network != Public {
		return nil, false, nil
	}
	l.mu.Lock()
	w = l.wires[node]
	l.mu.Unlock()
	if w == nil {
		return nil, true, fmt.Errorf("host %s is on the %s network by a plain link gonat cannot impair: give its [[host]] impair in the topology (impair = \"off\" to start unimpaired) for one it can", node, Public)
	}
	return w, true, nil
}

// linkStatus is the status of node's wire, nil when it has none; l.mu
// is held.
func (l *Lab) linkStatus(node string) *LinkStatus {
	w := l.wires[node]
	if w == nil {
		return nil
	}
	st := &LinkStatus{Impair: impairWays(w.Impair()), Seed: int64(w.Seed()), Packets: map[string]uint64{"forward": w.Passed()}}
	w.Drops(func(reason string, n uint64) {
		if n > 0 {
			st.Packets[reason] = n
		}
	})
	return st
}

// MetricsLinks are the wires as /metrics shows them, by host, in name
// order: the wires are made by Up and stay until Close.
func (l *Lab) MetricsLinks() []observe.MetricsLink {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []observe.MetricsLink
	for name, w := range l.wires {
		out = append(out, observe.MetricsLink{Name: name, Counter: w})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// wireDropLines makes a DropLines for each wire, under its host's name,
// its counts taken.
func (l *Lab) wireDropLines() []*observe.DropLines {
	l.mu.Lock()
	names := make([]string, 0, len(l.wires))
	for name := range l.wires {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*observe.DropLines
	for _, name := range names {
		d := &observe.DropLines{NAT: name, Counter: l.wires[name]}
		out = append(out, d)
	}
	l.mu.Unlock()
	now := time.Now()
	for _, d := range out {
		d.Poll(now)
	}
	return out
}
