package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun"
)

// InsideSpec is one inside port: an existing namespace and the host
// addresses (with their network prefix) gonat puts on its TUN device there,
// IPv4 and IPv6; with an IPv6 one the port carries IPv6 too (::/0 through
// the device).
type InsideSpec struct {
	Namespace string
	Hosts     []netip.Prefix
	// Transit marks a port whose namespace is a router, not a host: the
	// uplink of a nested NAT. Its device gets no address (the host
	// address belongs to the nested NAT's outside port beyond it), only
	// the default route.
	Transit bool
	// MTU is the MTU of the link to the hosts (0: NATSpec.MTU): their
	// device gets it, and the NAT enforces it (nat.InsidePort.MTU).
	MTU int
	// Free marks a port no host holds yet, kept for hosts that move in
	// (move.go): its device waits in Namespace without addresses or
	// routes, and Network is where its gateway comes from.
	Free    bool
	Network netip.Prefix
	// Name, if set, names the port's device instead of NATSpec.DeviceName;
	// once the NAT runs, it is the device's name.
	Name string
}

// NATSpec is one NAT between existing namespaces.
type NATSpec struct {
	Inside   []InsideSpec
	Outside  string       // namespace of the outside port
	Behavior table.Config // with External set; External6 routed to the outside port
	// DeviceName is the TUN name in every namespace; may hold %d. Default
	// "gnat%d".
	DeviceName string
	// OutsideName, if set, names the outside port's device instead of
	// DeviceName: Up, which starts NATs in parallel, numbers the outside
	// ports it puts in one namespace itself, so that their names do not
	// depend on which NAT came first.
	OutsideName string
	MTU         int // of every device, unless OutsideMTU or InsideSpec.MTU says otherwise
	// OutsideMTU is the MTU of the link beyond the outside port (0:
	// MTU): the outside device gets it, and the NAT enforces it
	// (nat.Config.OutsideMTU).
	OutsideMTU int
	Backend    string // TUN backend: tun.BackendAuto ("" too), tun.BackendOffload, tun.BackendWater
	// ReadMode is how the NAT reads its devices, and so how many queues
	// they get (forward.ReadMode). The zero value reads per CPU where it can,
	// else per device.
	ReadMode forward.ReadMode
	Logf     func(format string, args ...any)
	// Tap, if set, sees every packet the NAT reads from its ports and
	// writes to them (a pcap capture, counters; observe.Sides makes
	// one): port 0 is the outside, 1.. the inside ports.
	Tap forward.Tap
	// Impair, by port (0 the outside, 1.. the inside ports; nil: none),
	// impairs the links beyond the ports, seeded by Behavior.Seed
	// (forward.PortImpair).
	Impair []forward.PortImpair

	// newDevice makes each TUN device; nil is tun.Create. Tests make
	// devices fail with it.
	newDevice func(tun.Config) (tun.Device, error)
}

// NAT is a running NAT: its devices exist and its router is pumping.
type NAT struct {
	Engine  *nat.Engine
	Router  *forward.Router
	spec    NATSpec
	mode    forward.ReadMode // as decided: never ReadersAuto
	devices []tun.Device
	gws     []netip.Addr

	cancel    context.CancelFunc
	done      chan struct{}
	err       error
	closeOnce sync.Once
}

// StartNAT creates the NAT's TUN devices (outside first), routes the
// external addresses to the outside one and a default route in each inside
// namespace to its inside one, and starts translating. Any failure undoes
// what was done. The devices, and with them every address and route,
// vanish when the NAT is closed or the process dies.
//
// A zero Behavior.Seed is replaced by one drawn at random (RandomSeed), so
// that NATs and runs differ; Describe and Lab.Status show it, and passing
// it again repeats the run's port choices.
func StartNAT(ctx context.Context, spec NATSpec) (*NAT, error) {
	if spec.Behavior.Seed == 0 {
		spec.Behavior.Seed = RandomSeed()
	}
	if spec.Outside == "" {
		return nil, errors.New("no outside namespace")
	}
	if spec.Behavior.IPv6 == table.IPv6NAT64 {
		// NAT64 changes each packet's header size, which the offload
		// backend's super-packets and partial checksums do not allow
		// for (nat/nat64.go): plain devices.
		switch spec.Backend {
		case "", tun.BackendAuto:
			spec.Backend = tun.BackendWater
		case tun.BackendOffload:
			return nil, errors.New("ipv6 nat64 needs the water TUN backend: NAT64 translates single packets, not offload super-packets")
		}
	}
	if err := ns.Check(spec.Outside); err != nil {
		return nil, fmt.Errorf("outside: %w", err)
	}
	seen := map[string]bool{spec.Outside: true}
	for _, in := range spec.Inside {
		if seen[in.Namespace] && !in.Free { // free ports wait together
			return nil, fmt.Errorf("namespace %q used for two ports", in.Namespace)
		}
		seen[in.Namespace] = true
		if err := ns.Check(in.Namespace); err != nil {
			return nil, fmt.Errorf("inside: %w", err)
		}
	}
	if err := spec.ReadMode.Validate(spec.Backend); err != nil {
		return nil, err
	}
	mode := spec.ReadMode.Resolve(spec.Backend)
	n, err := startNAT(ctx, spec, mode)
	if err != nil && spec.ReadMode.Readers == forward.ReadersAuto && mode.Readers == forward.ReadersPerCPU {
		// Not asked for: read per device rather than not at all, and
		// say why.
		mode.Readers = forward.ReadersPerDevice
		var err2 error
		if n, err2 = startNAT(ctx, spec, mode); err2 != nil {
			return nil, err2
		}
		if spec.Logf != nil {
			spec.Logf("per-CPU readers unavailable (%v); reading per device", err)
		}
		return n, nil
	}
	return n, err
}

// RandomSeed returns a positive seed from crypto/rand: unpredictable, so
// that port prediction is not made easy by every NAT starting alike.
func RandomSeed() int64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if s := int64(binary.LittleEndian.Uint64(b[:]) >> 1); s != 0 {
			return s
		}
	}
}

// startNAT is StartNAT once the namespaces are checked and the mode
// validated and resolved (not forward.ReadersAuto).
func startNAT(ctx context.Context, spec NATSpec, mode forward.ReadMode) (*NAT, error) {
	cfg := nat.Config{Table: spec.Behavior, OutsideMTU: spec.OutsideMTU}
	hostSet := map[netip.Addr]bool{}
	for _, in := range spec.Inside {
		for _, h := range in.Hosts {
			hostSet[h.Addr()] = true
		}
	}
	gws := make([]netip.Addr, len(spec.Inside))
	for i, in := range spec.Inside {
		if in.Free {
			gws[i] = chooseGateway([]netip.Prefix{in.Network}, hostSet)
		} else {
			gws[i] = chooseGateway(in.Hosts, hostSet)
		}
		cfg.Inside = append(cfg.Inside, nat.InsidePort{Hosts: in.Hosts, Gateway: gws[i], Free: in.Free, MTU: in.MTU})
	}
	spec.Inside = slices.Clone(spec.Inside) // its names are filled in below
	eng, err := nat.New(cfg)
	if err != nil {
		return nil, err
	}
	name := spec.DeviceName
	if name == "" {
		name = "gnat%d"
	}
	var devs []tun.Device
	undo := func() {
		for _, d := range devs {
			d.Close()
		}
	}
	var routes []netip.Prefix
	for _, e := range eng.Config().Table.External {
		routes = append(routes, netip.PrefixFrom(e, 32))
	}
	for _, e := range spec.Behavior.External6 {
		routes = append(routes, netip.PrefixFrom(e, 128))
	}
	if spec.Behavior.IPv6 == table.IPv6NPTv6 && len(spec.Behavior.External6) > 0 {
		// NPTv6 (nat/nptv6.go) answers for the external prefix as long
		// as the inside one, around External6[0]: all of it leads to
		// the NAT.
		for _, in := range spec.Inside {
			for _, h := range in.Hosts {
				if pf := netip.PrefixFrom(spec.Behavior.External6[0], h.Bits()).Masked(); h.Addr().Is6() && !slices.Contains(routes, pf) {
					routes = append(routes, pf)
				}
			}
		}
	}
	if spec.Behavior.IPv6 == table.IPv6Routed || spec.Behavior.IPv6 == table.IPv6NAT64 {
		// Routed IPv6 keeps the inside addresses: the outside reaches
		// them through the NAT (beside NAT64, native IPv6 is routed).
		for _, in := range spec.Inside {
			for _, h := range in.Hosts {
				if h.Addr().Is6() && !slices.Contains(routes, h.Masked()) {
					routes = append(routes, h.Masked())
				}
			}
		}
	}
	devConfig := func() tun.Config {
		return tun.Config{Name: name, MTU: spec.MTU, Backend: spec.Backend, Queues: mode.DeviceQueues(),
			SteerByCPU: mode.Readers == forward.ReadersPerCPU,
			// The polling readers never wait in Read: their devices stay
			// out of the netpoller.
			Polled: mode.Polled()}
	}
	create := spec.newDevice
	if create == nil {
		create = tun.Create
	}
	oc := devConfig()
	oc.Namespace, oc.Routes = spec.Outside, routes
	if spec.OutsideMTU > 0 {
		oc.MTU = spec.OutsideMTU
	}
	if spec.OutsideName != "" {
		oc.Name = spec.OutsideName
	}
	out, err := create(oc)
	if err != nil {
		return nil, fmt.Errorf("outside port in %q: %w", spec.Outside, err)
	}
	devs = append(devs, out)
	if mode.Readers == forward.ReadersPerCPU && !tun.CanPoll(out) {
		// BackendAuto fell back to water (and said so).
		out.Close()
		return nil, errors.New("per-CPU readers need the offload TUN backend; the water backend has one queue per device")
	}
	for i, in := range spec.Inside {
		tc := devConfig()
		tc.Namespace, tc.Addresses = in.Namespace, in.Hosts
		if in.MTU > 0 {
			tc.MTU = in.MTU
		}
		if in.Name != "" {
			tc.Name = in.Name
		}
		tc.Routes = nil
		if !hasIPv6(in.Hosts) || hasIPv4(in.Hosts) {
			// An IPv6-only host (behind NAT64) has no IPv4 route.
			tc.Routes = append(tc.Routes, netip.PrefixFrom(netip.IPv4Unspecified(), 0))
		}
		if hasIPv6(in.Hosts) {
			// No router advertisements on a TUN port: the default
			// route is set, as the IPv4 one is.
			tc.Routes = append(tc.Routes, netip.PrefixFrom(netip.IPv6Unspecified(), 0))
		}
		if in.Transit {
			tc.Addresses = nil
		}
		if in.Free {
			tc.Addresses, tc.Routes = nil, nil
		}
		d, err := create(tc)
		if err != nil {
			undo()
			return nil, fmt.Errorf("inside port in %q: %w", in.Namespace, err)
		}
		devs = append(devs, d)
		spec.Inside[i].Name = d.Name()
	}
	router := &forward.Router{Engine: eng, Ports: devs, Logf: spec.Logf, Mode: mode, Tap: spec.Tap,
		Impair: spec.Impair, ImpairSeed: uint64(spec.Behavior.Seed)}
	if err := router.Validate(); err != nil {
		// Run would stop at once, in the background: say so now.
		undo()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	n := &NAT{
		Engine: eng, spec: spec, mode: mode, devices: devs, gws: gws, cancel: cancel, done: make(chan struct{}),
		Router: router,
	}
	n.Router.ExpireEvery = sweepInterval(eng.Config().Table)
	go func() {
		n.err = n.Router.Run(rctx)
		close(n.done)
	}()
	return n, nil
}

// sweepInterval reports expiries promptly when tests use short timeouts.
func sweepInterval(c table.Config) time.Duration {
	d := time.Second
	for _, t := range []time.Duration{c.UDPTimeout, c.UDPUnrepliedTimeout, c.TCPTransitoryTimeout, c.ICMPTimeout} {
		if t > 0 && t/20 < d {
			d = t / 20
		}
	}
	return max(d, 50*time.Millisecond)
}

// hasIPv6 reports whether any prefix is IPv6.
func hasIPv6(ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Addr().Is6() {
			return true
		}
	}
	return false
}

// hasIPv4 reports whether any prefix is IPv4.
func hasIPv4(ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Addr().Is4() {
			return true
		}
	}
	return false
}

// chooseGateway picks the NAT's own address on an inside network: the
// first address of the first prefix that no host uses.
func chooseGateway(hosts []netip.Prefix, used map[netip.Addr]bool) netip.Addr {
	for _, h := range hosts {
		p := h.Masked()
		if !p.Addr().Is4() || p.Bits() >= 31 {
			continue
		}
		for a := p.Addr().Next(); p.Contains(a); a = a.Next() {
			if !used[a] && p.Contains(a.Next()) { // not the broadcast address
				return a
			}
		}
	}
	return netip.Addr{}
}

// Gateways returns the NAT's own address on each inside port.
func (n *NAT) Gateways() []netip.Addr { return n.gws }

// Describe says what was built, for the `ready` line.
func (n *NAT) Describe() string {
	var b strings.Builder
	c := n.Engine.Config().Table
	ext := make([]string, len(c.External))
	for i, e := range c.External {
		ext[i] = e.String()
	}
	for _, e := range n.spec.Behavior.External6 {
		ext = append(ext, e.String())
	}
	fmt.Fprintf(&b, "outside %s/%s external %s", n.spec.Outside, n.devices[0].Name(), strings.Join(ext, ","))
	for i, in := range n.spec.Inside {
		hs := make([]string, len(in.Hosts))
		for j, h := range in.Hosts {
			hs[j] = h.String()
		}
		fmt.Fprintf(&b, "; inside %s/%s %s", in.Namespace, in.Name, strings.Join(hs, ","))
		if n.gws[i].IsValid() {
			fmt.Fprintf(&b, " gateway %s", n.gws[i])
		}
	}
	fmt.Fprintf(&b, "; mapping %s filtering %s port-assignment %s hairpin %t seed %d",
		c.Mapping, c.Filtering, c.PortAssignment, c.Hairpin, c.Seed)
	fmt.Fprintf(&b, "; readers %s", n.ReadersDesc())
	return b.String()
}

// ReadMode reports how the NAT reads its devices, as decided at start
// (never forward.ReadersAuto).
func (n *NAT) ReadMode() forward.ReadMode { return n.mode }

// ReadersDesc says how the NAT reads its devices: "per-cpu (2 queues)",
// "per-device", "busy-poll 200ms".
func (n *NAT) ReadersDesc() string {
	queues := len(tun.QueuesOf(n.devices[0]))
	switch {
	case n.mode.Readers == forward.ReadersBusyPoll:
		return "busy-poll " + n.mode.Quiet.String()
	case n.mode.Readers == forward.ReadersPerCPU:
		return fmt.Sprintf("per-cpu (%d queues)", queues)
	case queues > 1:
		return fmt.Sprintf("per-device (%d queues)", queues)
	}
	return "per-device"
}

// Done is closed when the NAT has stopped.
func (n *NAT) Done() <-chan struct{} { return n.done }

// Close stops the NAT and removes its devices (and so its addresses and
// routes). It is safe to call more than once.
func (n *NAT) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		<-n.done
	})
	return n.err
}
