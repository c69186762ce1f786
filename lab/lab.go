package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/labdns"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
)

// How a topology becomes namespaces (a lab named L):
//
//   - L.public is the public network's core router: IP forwarding on, a
//     veth to every public host, and the outside port (TUN) of every NAT
//     whose upstream is the public network, with its external addresses
//     routed to it.
//   - Each host H is namespace L.H. Behind a NAT, it is one of that NAT's
//     inside ports: a TUN device carrying H's addresses and its default
//     route (as `gonat run --inside` does). On the public network, a veth
//     to L.public carries its addresses, default route via the core (or,
//     when its link is impaired, a wire of two TUN devices: wire.go).
//   - A nested NAT N (upstream U) has an uplink namespace L.N, a router
//     between U's inside port for N (no address, default route) and N's
//     outside port (N's external addresses routed to it).
//
// Every namespace starts with "L." and every device lives in one of
// them, so removing the namespaces removes everything, even after the
// process that built the lab was killed.

// coreLink is the address the public core answers on every host veth:
// hosts reach it on-link (169.254.0.0/16 never leaves the lab).
var coreLink = netip.MustParseAddr("169.254.0.1")

// coreLink6 is the core's IPv6 next hop on every veth to a dual-stack
// public host (link-local, so that no lab address is taken).
var coreLink6 = netip.MustParseAddr("fe80::1")

// NamespacePrefix is how every namespace of lab name starts.
func NamespacePrefix(name string) string { return name + "." }

// Options adjust Up.
type Options struct {
	// Name overrides the topology's name (two labs from one file).
	Name string
	// LogDir receives one log file per host command, HOST.log; the last
	// 64 KiB of each stay in memory in any case (Lab.HostOutput).
	LogDir string
	// HostOutput, if set, receives every line the host commands print,
	// as "HOST | line".
	HostOutput io.Writer
	// ReadyTimeout bounds the wait for the hosts' `ready` conditions
	// (default DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// Logf reports progress ("creating namespaces...").
	Logf func(format string, args ...any)
	// Observer receives every NAT's events (mapping created/expired; with
	// Trace, every packet). It runs on the packet path: keep it quick.
	Observer func(natName string, ev nat.Event)
	Trace    bool
	// GonatPath replaces a host command's "gonat"; "" takes gonat from
	// PATH. Up never runs its own executable for it: inside `go test`
	// that is the test binary.
	GonatPath string
	// Tap, if set, gives each NAT its NATSpec.Tap (pcap captures,
	// counters), by name; nil for none.
	Tap func(natName string) forward.Tap
	// Backend is the TUN backend of every NAT (offload, water, auto);
	// "" takes $GONAT_TUN_BACKEND, else auto.
	Backend string
	// ReadMode is every NAT's NATSpec.ReadMode (the zero value: per CPU
	// where that works). Up checks it before it creates anything.
	ReadMode forward.ReadMode
}

// Lab is a running topology.
type Lab struct {
	Name string
	Topo *Topology
	// Events carries every NAT's events to watchers (gonat table
	// --watch, the web view).
	Events *observe.Hub

	mu       sync.Mutex
	nodes    map[string]*Node
	nats     map[string]*NAT
	natOrder []string
	procs    []*hostProc
	made     []string // namespaces, in creation order
	dns      *labdns.Server
	names    *labdns.Handler // what dns answers: a host that moves gets its new address there
	resolv   []string        // /etc/netns directories given a resolv.conf
	closed   bool
	// The scheduled events' goroutines (schedule.go): Close stops them
	// and waits for them before anything goes.
	stopEvents context.CancelFunc
	events     sync.WaitGroup
	// moving makes moves one at a time (move.go); moved counts the
	// device names they handed out.
	moving sync.Mutex
	moved  int

	// wires are the public hosts' impaired links, by host (wire.go).
	wires map[string]*forward.Wire
}

// Node is a host, a NAT's uplink, or the public core, by its name.
type Node struct {
	Name      string
	Namespace string
	Kind      string // "host", "nat", "public"
	Network   string // hosts: Public or a NAT's name
	Addresses []netip.Addr

	gonat string // what "gonat" runs here: the lab's, as in host commands
}

// Command returns a command that runs in the node's namespace (through
// `ip netns exec`, so it is a normal child process). "gonat" runs the
// lab's gonat, the one its hosts' commands run.
func (n *Node) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", n.netnsExec(name, args)...)
}

// CommandContext is Command bound to ctx.
func (n *Node) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", n.netnsExec(name, args)...)
}

func (n *Node) netnsExec(name string, args []string) []string {
	if name == "gonat" && n.gonat != "" {
		name = n.gonat
	}
	return append([]string{"netns", "exec", n.Namespace, name}, args...)
}

// Run calls fn on a locked OS thread inside the node's namespace: sockets
// it opens (net.Dial, net.ListenPacket) belong to the node for life.
func (n *Node) Run(fn func() error) error { return ns.Do(n.Namespace, fn) }

// Up builds topo: namespaces, links, addresses, routes, NAT engines
// (outermost first), then starts the hosts' commands and waits until
// they are ready. Namespaces, and the NATs at one depth, are made on a
// few goroutines at once; an error is that of the first failure in
// topology order. A host command that exits non-zero (or exits before its
// `ready` condition holds) during start-up fails Up with a *StartError.
// On any failure Up removes what it made. ctx bounds the NATs' lifetime
// as well as Up.
func Up(ctx context.Context, topo *Topology, opt Options) (l *Lab, err error) {
	name := topo.Name
	if opt.Name != "" {
		name = opt.Name
	}
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("lab name: %w", err)
	}
	if existing, _ := NamespacesOf(name); len(existing) > 0 {
		return nil, fmt.Errorf("lab %q already exists (namespaces %s); `gonat lab down --lab %s` removes it", name, strings.Join(existing, ", "), name)
	}
	gonat, err := resolveGonat(topo, opt)
	if err != nil {
		return nil, err
	}
	backend := opt.Backend
	if backend == "" {
		backend = os.Getenv("GONAT_TUN_BACKEND")
	}
	if err := opt.ReadMode.Validate(backend); err != nil {
		return nil, err
	}
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	l = &Lab{Name: name, Topo: topo, Events: observe.NewHub(), nodes: map[string]*Node{}, nats: map[string]*NAT{}}
	l.Events.ForceTracing(opt.Trace)
	// The error returns below say `return nil, err`, which sets l to nil
	// before this runs: close what was built through its own variable.
	built := l
	defer func() {
		if err != nil {
			built.Close()
			l = nil
		}
	}()
	pfx := NamespacePrefix(name)
	core := pfx + Public
	logf("creating namespaces for %d NATs and %d hosts", len(topo.NATs), len(topo.Hosts))
	if err := ns.Create(core); err != nil {
		return nil, err
	}
	l.made = append(l.made, core)
	if err := ns.Sysctl(core, "net/ipv4/ip_forward", "1"); err != nil {
		return nil, err
	}
	if topo.HasIPv6() {
		// The core routes IPv6 between public hosts and NATs, and its
		// new links (veths to public hosts, NATs' outside ports) run
		// no duplicate address detection.
		for _, kv := range [][2]string{{"net/ipv6/conf/all/forwarding", "1"}, {"net/ipv6/conf/default/accept_dad", "0"}} {
			if err := ns.Sysctl(core, kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
	}
	l.nodes[Public] = &Node{Name: Public, Namespace: core, Kind: "public"}
	for _, n := range topo.NATs {
		node := &Node{Name: n.Name, Namespace: core, Kind: "nat", Network: n.Upstream,
			Addresses: append(slices.Clone(n.External), n.External6...)}
		if n.Upstream != Public {
			node.Namespace = pfx + n.Name
		}
		l.nodes[n.Name] = node
	}
	for _, h := range topo.Hosts {
		l.nodes[h.Name] = &Node{Name: h.Name, Namespace: pfx + h.Name, Kind: "host", Network: h.Network, Addresses: h.Addresses}
	}
	// The other namespaces in parallel, then the NATs, outermost first:
	// an inner NAT's uplink must exist before its upstream makes an
	// inside port there.
	if err := l.makeNamespaces(topo, core); err != nil {
		return nil, err
	}
	if err := l.startNATs(ctx, topo, opt, backend, logf); err != nil {
		return nil, err
	}
	logf("starting the lab DNS server at %s (zone %s)", DNSAddr, ZoneOf(name))
	if err := l.startDNS(topo, core, logf); err != nil {
		return nil, err
	}

	for _, node := range l.nodes {
		node.gonat = gonat
	}
	if err := l.startHosts(topo, gonat, opt.LogDir, opt.HostOutput, logf); err != nil {
		return nil, err
	}
	if err := l.awaitHosts(ctx, opt.ReadyTimeout, logf); err != nil {
		return nil, err
	}
	return l, nil
}

// Single presents one NAT started with StartNAT as a lab of one NAT
// (what `gonat run` builds), so status, table, set, flush and watch work
// the same on it. Closing it closes the NAT and removes no namespace:
// they belong to the user.
func Single(name, natName string, n *NAT, spec NATSpec, also func(nat.Event)) *Lab {
	l := &Lab{Name: name, Events: observe.NewHub(), nodes: map[string]*Node{}, nats: map[string]*NAT{natName: n},
		natOrder: []string{natName}}
	l.nodes[Public] = &Node{Name: Public, Namespace: spec.Outside, Kind: "public"}
	l.nodes[natName] = &Node{Name: natName, Namespace: spec.Outside, Kind: "nat", Network: Public,
		Addresses: append(slices.Clone(spec.Behavior.External), spec.Behavior.External6...)}
	for _, in := range spec.Inside {
		node := &Node{Name: in.Namespace, Namespace: in.Namespace, Kind: "host", Network: natName}
		for _, h := range in.Hosts {
			node.Addresses = append(node.Addresses, h.Addr())
		}
		l.nodes[node.Name] = node
	}
	l.Events.Attach(natName, n.Engine, also)
	return l
}

// Node returns the named node (a host, a NAT's uplink, or "public"), or
// nil.
func (l *Lab) Node(name string) *Node { return l.nodes[name] }

// Nodes returns every node in an order that does not change while the
// lab runs: hosts, then NATs, then the public network; each kind in the
// topology file's order, then by name.
func (l *Lab) Nodes() []*Node {
	var out []*Node
	for _, n := range l.nodes {
		out = append(out, n)
	}
	kind := map[string]int{"host": 0, "nat": 1, "public": 2}
	place := map[string]int{}
	if l.Topo != nil {
		for i, n := range l.Topo.NATs {
			place[n.Name] = i
		}
		for i, h := range l.Topo.Hosts {
			place[h.Name] = i
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if kind[a.Kind] != kind[b.Kind] {
			return kind[a.Kind] < kind[b.Kind]
		}
		if place[a.Name] != place[b.Name] {
			return place[a.Name] < place[b.Name]
		}
		return a.Name < b.Name
	})
	return out
}

// NAT returns the running NAT of that name, or nil.
func (l *Lab) NAT(name string) *NAT { return l.nats[name] }

// NATNames lists the running NATs, outermost first.
func (l *Lab) NATNames() []string { return append([]string(nil), l.natOrder...) }

// Set changes a running NAT's behaviour: a preset ("" keeps the current
// behaviour as the base) and settings over it. Its mappings are dropped.
// The seed stays unless a non-zero one is given.
func (n *NAT) Set(preset string, settings map[string]string) error {
	cur := n.Engine.Config().Table
	base := cur
	if preset != "" {
		p, err := table.Preset(preset)
		if err != nil {
			return err
		}
		base = cur.WithPreset(p)
	}
	if err := table.ApplySettings(&base, settings); err != nil {
		return err
	}
	base.External, base.External6 = cur.External, cur.External6
	if base.Seed == 0 {
		base.Seed = cur.Seed
	}
	if (cur.IPv6 == table.IPv6NAT64 || base.IPv6 == table.IPv6NAT64) &&
		(base.IPv6 != cur.IPv6 || base.NAT64PrefixOrDefault() != cur.NAT64PrefixOrDefault()) {
		// Its hosts' addresses and routes, its devices and the lab's
		// DNS64 were made for the mode and prefix it started with.
		return fmt.Errorf("ipv6 nat64 and nat64-prefix stay as the NAT started with them (%s, %s): its hosts, devices and DNS64 follow them",
			cur.IPv6, cur.NAT64PrefixOrDefault())
	}
	if err := base.Validate(); err != nil {
		return err
	}
	return n.Engine.SetTableConfig(base)
}

// Flush drops all of the NAT's mappings (a NAT reboot: rebinding tests).
func (n *NAT) Flush() { n.Engine.Flush() }

// Close stops host commands, NATs (innermost first, those at one depth
// in parallel) and removes every namespace. Safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	stopEvents := l.stopEvents
	l.mu.Unlock()
	if stopEvents != nil {
		stopEvents()
		l.events.Wait()
	}
	l.stopHosts()
	dnsErr := l.stopDNS()
	l.closeNATs()
	l.closeWires()
	// Every namespace, in parallel; all are tried whatever fails.
	errs := make([]error, len(l.made))
	parallel(len(l.made), workers(), func(i int) error {
		errs[i] = ns.Delete(l.made[len(l.made)-1-i])
		return nil
	})
	return errors.Join(append(errs, dnsErr)...)
}

// NamespacesOf lists the namespaces of lab name that exist.
func NamespacesOf(name string) ([]string, error) {
	all, err := ns.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range all {
		if strings.HasPrefix(n, NamespacePrefix(name)) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Remove tears down whatever lab name left behind, with or without the
// process that built it: it kills every process inside the lab's
// namespaces, then deletes them, and removes the resolv.conf files the lab
// wrote in /etc/netns. It returns the namespaces it removed.
func Remove(name string) ([]string, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	names, err := NamespacesOf(name)
	if err != nil {
		return nil, err
	}
	killInNamespaces(names)
	errs := make([]error, len(names))
	parallel(len(names), workers(), func(i int) error {
		errs[i] = ns.Delete(names[i])
		return nil
	})
	return names, errors.Join(append(errs, removeStaleResolvConfs(name))...)
}

// killInNamespaces SIGKILLs every process whose network namespace is one
// of names (found by comparing /proc/PID/ns/net with the namespaces'
// inodes, in one pass over /proc).
func killInNamespaces(names []string) {
	targets := map[uint64]bool{}
	for _, n := range names {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(ns.Dir, n), &st) == nil {
			targets[st.Ino] = true
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	self := os.Getpid()
	for _, p := range procs {
		var ps syscall.Stat_t
		if syscall.Stat(p, &ps) != nil || !targets[ps.Ino] {
			continue
		}
		var pid int
		fmt.Sscanf(strings.TrimPrefix(p, "/proc/"), "%d", &pid)
		if pid > 0 && pid != self {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ProcessesIn lists the PIDs running inside namespace n.
func ProcessesIn(n string) []int {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ns.Dir, n), &st); err != nil {
		return nil
	}
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, p := range procs {
		var ps syscall.Stat_t
		if syscall.Stat(p, &ps) != nil || ps.Ino != st.Ino || ps.Dev != st.Dev {
			continue
		}
		var pid int
		fmt.Sscanf(strings.TrimPrefix(p, "/proc/"), "%d", &pid)
		pids = append(pids, pid)
	}
	return pids
}
