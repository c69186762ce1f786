package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun"
)

var runHelp = `Usage: gonat run --inside NS=ADDR/PREFIX[,ADDR/PREFIX...] [--inside ...] --outside NS
                 --external ADDR [--external ADDR...] [--preset NAME] [behaviour flags]

Runs one NAT between network namespaces that already exist (see
scripts/netns-setup.sh for a ready-made set). For each --inside, gonat
creates a TUN device in NS, puts the addresses on it and a default route
through it; for --outside it creates a TUN device in NS and routes the
external addresses to it. Packets the inside hosts send are translated to
an external address and port; replies are translated back.

Dual stack: an --inside may list IPv6 prefixes beside its IPv4 ones
(lan=10.0.0.2/24,fd00:1::2/64), and --external IPv6 addresses beside the
IPv4 ones; the ports then carry IPv6 (addresses without duplicate address
detection, ::/0 through the inside ports, the external IPv6 addresses
routed to the outside port, no router advertisements). With --ipv6 nat64
an --inside may be IPv6-only (lan=fd00:64::2/64): its hosts reach IPv4
at addresses in the NAT64 prefix (64:ff9b::203.0.113.10).

gonat prints a line starting with "ready" once every port is up, and on
Ctrl-C (SIGINT) or SIGTERM removes every device and route it made.

Presets (any behaviour flag overrides the preset's value):
` + presetsHelp() + `
Example:
  sudo scripts/netns-setup.sh
  sudo gonat run --inside gonat-a=10.0.0.2/24 --inside gonat-b=10.0.0.3/24 \
                 --outside gonat-wan --external 198.51.100.1 --preset full-cone -v

Impairment (--impair, --impair-in, --impair-out) makes the outside link
lossy, slow or late, both ways or one (in: towards the inside hosts; out:
towards the outside), applied to packets as translated. SPEC is
` + impairSyntax() + `
Decisions are drawn from --seed: a rerun with the same --seed and the same
traffic loses the same packets. Drops are counted in the exit counters as
impair-loss and queue-overflow. Example, a slow lossy uplink:
  sudo gonat run ... --seed 42 --impair "delay=50ms jitter=5ms loss=1%" \
                 --impair-out "rate=10mbit queue=50ms"

Flags:
`

// impairSyntax is impair.Syntax indented for --help.
func impairSyntax() string {
	return strings.ReplaceAll(impair.Syntax, "\n", "\n  ") + "\n"
}

// presetsHelp lists the presets for --help, a name and its description
// a line.
func presetsHelp() string {
	var b strings.Builder
	for _, name := range table.PresetNames() {
		lines := strings.Split(table.PresetHelp(name), "\n")
		fmt.Fprintf(&b, "  %-20s  %s\n", name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "  %-20s  %s\n", "", l)
		}
	}
	return b.String()
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var inside, external listFlag
	fs.Var(&inside, "inside", "inside port: `NS=ADDR/PREFIX[,ADDR/PREFIX...]`, IPv4 and IPv6 prefixes (repeatable)")
	outside := fs.String("outside", "", "namespace of the outside port")
	fs.Var(&external, "external", "external `ADDR` of the NAT, IPv4 or IPv6 (repeatable, or comma-separated: a pool)")
	preset := fs.String("preset", "", "behaviour preset: "+strings.Join(table.PresetNames(), ", "))
	settings := settingFlags(fs)
	verbose := fs.Bool("v", false, "log every mapping created and expired")
	trace := fs.Bool("trace", false, "print one line per packet: the packet before and after translation, or why it was dropped")
	mtu := fs.Int("mtu", 1500, "MTU of the TUN devices")
	outsideMTU := fs.Int("outside-mtu", 0, "MTU of the link beyond the outside port (`bytes`, 68-65535; 1280 up with an IPv6 --external): bigger packets are fragmented (IPv4, DF clear) or refused with ICMP fragmentation needed / Packet Too Big (0: --mtu)")
	name := fs.String("name", fmt.Sprintf("run-%d", os.Getpid()), "name of this NAT: in gonat table, lab status/set/flush (state in /run/gonat/NAME), events, the web view and the metrics' nat label (\"nat\" when not given)")
	obs := observerFlags(fs)
	backend := fs.String("tun-backend", envOr("GONAT_TUN_BACKEND", tun.BackendAuto), "TUN `backend`: offload (TSO/checksum offload, fast) | water (one packet per syscall) | auto (offload where the kernel has it); default $GONAT_TUN_BACKEND or auto")
	impairBoth := fs.String("impair", "", "impair the outside link both ways: `SPEC` such as \"delay=50ms loss=1%\" (see above)")
	impairIn := fs.String("impair-in", "", "impair the outside link towards the inside hosts: `SPEC`, on top of --impair")
	impairOut := fs.String("impair-out", "", "impair the outside link towards the outside: `SPEC`, on top of --impair")
	busyPoll := fs.Duration("busy-poll", 0, "read every port from one goroutine that spins while traffic flows and sleeps after this much quiet (`duration`, e.g. 200ms): lower latency for a CPU core; needs the offload backend (0: off)")
	queues := tunQueuesFlag(fs)
	perCPU := perCPUFlag(fs)
	if err := parse(fs, args, runHelp); err != nil {
		return err
	}
	mode, err := readMode(perCPU, *busyPoll, *queues, *backend, "--tun-backend offload (or auto on a kernel with TUN offload)")
	if err != nil {
		return err
	}
	if err := lab.ValidName(*name); err != nil {
		return usageErr("--name: %v", err)
	}
	if err := checkExposure(*obs.web, *obs.metrics, *obs.expose, *obs.webStreams); err != nil {
		return err
	}
	lab.RemoveStaleRuns()
	if st, err := lab.ReadState(*name); err == nil && st.Alive() {
		return usageErr("--name %s: already in use by process %d", *name, st.PID)
	}

	busyPollProcs(*busyPoll)
	spec := lab.NATSpec{Outside: *outside, MTU: *mtu, Backend: *backend, ReadMode: mode}
	if spec.Impair, err = outsideImpair(*impairBoth, *impairIn, *impairOut); err != nil {
		return err
	}
	if !slices.Contains(tun.Backends(), *backend) {
		return usageErr("--tun-backend %q: want offload, water or auto", *backend)
	}
	if len(inside.vals) == 0 {
		return usageErr("--inside: at least one is required, e.g. --inside lan=10.0.0.2/24")
	}
	for _, v := range inside.vals {
		in, err := parseInside(v)
		if err != nil {
			return usageErr("--inside %q: %v", v, err)
		}
		spec.Inside = append(spec.Inside, in)
	}
	if *outside == "" {
		return usageErr("--outside: required, the namespace of the public side")
	}
	ext, ext6, err := parseExternal(external.vals)
	if err != nil {
		return err
	}
	given, err := givenBehavior(*preset, settings)
	if err != nil {
		return err
	}
	behavior, err := lab.Behavior(*preset, given, ext)
	if err != nil {
		return usageErr("%v", err)
	}
	behavior.External6 = ext6
	spec.Behavior = behavior
	for i, in := range spec.Inside {
		// Behind NAT64 a port's hosts may be IPv6-only: the engine
		// translates their packets to IPv4 (nat/nat64.go).
		if !slices.ContainsFunc(in.Hosts, func(h netip.Prefix) bool { return h.Addr().Is4() }) && behavior.IPv6 != table.IPv6NAT64 {
			return usageErr("--inside %q: no IPv4 ADDR/PREFIX: each port needs one (e.g. 10.0.0.2/24) beside its IPv6 ones, as the engine translates IPv4 (or --ipv6 nat64 for IPv6-only hosts)", inside.vals[i])
		}
	}
	if err := checkOutsideMTU(*outsideMTU, len(ext6) > 0); err != nil {
		return err
	}
	spec.OutsideMTU = *outsideMTU
	if err := ns.Check(*outside); err != nil {
		return usageErr("--outside: %v", err)
	}
	for _, in := range spec.Inside {
		if err := ns.Check(in.Namespace); err != nil {
			return usageErr("--inside: %v", err)
		}
	}
	// --name names the NAT too, so several gonat runs can be told apart
	// in one Prometheus; without it, the NAT keeps a name that does not
	// change with the process ID.
	natName := "nat"
	if flagGiven(fs, "name") {
		natName = *name
		for _, in := range spec.Inside {
			if in.Namespace == natName {
				return usageErr("--name %s: also the name of an --inside namespace; the NAT needs a name of its own", natName)
			}
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) to create TUN devices in namespaces")
	}

	// One NAT per namespace: a second would replace the first's default
	// routes and remove them on exit.
	nss := []string{*outside}
	for _, in := range spec.Inside {
		nss = append(nss, in.Namespace)
	}
	release, err := lab.ClaimNamespaces(nss)
	if err != nil {
		return err
	}
	defer release()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "gonat: "+format+"\n", a...) }
	spec.Logf = logf
	tap, err := obs.tap()
	if err != nil {
		return err
	}
	defer obs.close()
	spec.Tap = tap
	n, err := lab.StartNAT(ctx, spec)
	if err != nil {
		return err
	}
	var also func(nat.Event)
	if *verbose || *trace {
		p := newPrinter(os.Stdout, 200)
		also = func(ev nat.Event) {
			if *trace || ev.Kind == nat.EventCreated || ev.Kind == nat.EventExpired {
				p.offer(ev.String())
			}
		}
		go p.run(ctx)
	}
	// The NAT as a lab of one: gonat table, lab status/set/flush and the
	// control socket work on it as on any lab.
	l := lab.Single(*name, natName, n, spec, also)
	l.Events.ForceTracing(*trace)
	if err := lab.WriteState(l, ""); err != nil {
		n.Close()
		return err
	}
	defer os.RemoveAll(lab.StateDir(*name))
	go l.ServeControl(ctx, stop)
	if err := startObservers(ctx, l, obs); err != nil {
		n.Close()
		return err
	}
	fmt.Printf("ready: %s; name %s (gonat table --lab %s)\n", n.Describe(), *name, *name)
	select {
	case <-ctx.Done():
	case <-n.Done():
	}
	err = n.Close()
	printCounters(n.Engine, n.Router)
	return err
}

// outsideImpair reads --impair, --impair-in and --impair-out into the
// outside port's impairment (nil: none). A way given both keeps the
// one-way flag's keys over --impair's.
func outsideImpair(both, in, out string) ([]forward.PortImpair, error) {
	if both == "" && in == "" && out == "" {
		return nil, nil
	}
	var pi forward.PortImpair
	for _, w := range []struct {
		flag, val string
		to        []*impair.Spec
	}{{"impair", both, []*impair.Spec{&pi.In, &pi.Out}}, {"impair-in", in, []*impair.Spec{&pi.In}}, {"impair-out", out, []*impair.Spec{&pi.Out}}} {
		if w.val == "" {
			continue
		}
		for _, s := range w.to {
			text := w.val
			if w.flag != "impair" {
				text = impair.Overlay(both, w.val)
			}
			sp, err := impair.Parse(text)
			if err != nil {
				return nil, usageErr("--%s %q: %v", w.flag, w.val, err)
			}
			*s = sp
		}
	}
	return []forward.PortImpair{pi}, nil
}

func printCounters(e *nat.Engine, r *forward.Router) {
	var parts []string
	for _, v := range nat.Verdicts() {
		if c := e.Count(v); c > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", v, c))
		}
	}
	// The links' drops (impairment, a down link) come after the engine
	// forwarded the packet: its forward count includes them.
	r.Drops(func(reason string, c uint64) {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", reason, c))
		}
	})
	if len(parts) > 0 {
		fmt.Fprintf(os.Stderr, "gonat: packets: %s\n", strings.Join(parts, " "))
		// How often a reader waited for a lock another held: the cost
		// the readers of different queues still put on each other.
		fmt.Fprintf(os.Stderr, "gonat: engine lock waits: %d\n", e.LockWaits())
	}
	// Their packets are in the counts above, under the reason they were
	// dropped for.
	if n := e.ICMPErrorsLimited(); n > 0 {
		fmt.Fprintf(os.Stderr, "gonat: ICMP errors rate-limited: %d\n", n)
	}
}

// parseExternal reads the --external values (each may be a
// comma-separated list) into the IPv4 pool and the IPv6 addresses. At
// least one IPv4 address is needed: the engine translates IPv4.
func parseExternal(vals []string) (ext, ext6 []netip.Addr, err error) {
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			switch {
			case err != nil || a.Zone() != "":
				return nil, nil, usageErr("--external %q: want an IPv4 address such as 198.51.100.1 or an IPv6 one such as 2001:db8::1", s)
			case a.Is4In6():
				return nil, nil, usageErr("--external %q: an IPv4-mapped address; give it as IPv4 (%s)", s, a.Unmap())
			case a.Is6() && (a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLoopback()):
				return nil, nil, usageErr("--external %q: want a global unicast IPv6 address such as 2001:db8::1", s)
			case a.Is6():
				if slices.Contains(ext6, a) {
					return nil, nil, usageErr("--external %s: given twice", a)
				}
				ext6 = append(ext6, a)
			default:
				ext = append(ext, a)
			}
		}
	}
	if len(ext) == 0 {
		return nil, nil, usageErr("--external: at least one external IPv4 address is required (beside any IPv6 ones), e.g. --external 198.51.100.1")
	}
	return ext, ext6, nil
}

// parseInside reads NS=ADDR/PREFIX[,ADDR/PREFIX...]: IPv4 prefixes and
// IPv6 ones beside them (10.0.0.2/24,fd00:1::2/64), or IPv6 ones only,
// which the caller allows with --ipv6 nat64.
func parseInside(v string) (lab.InsideSpec, error) {
	name, addrs, ok := strings.Cut(v, "=")
	if !ok || name == "" || addrs == "" {
		return lab.InsideSpec{}, fmt.Errorf("want NS=ADDR/PREFIX[,ADDR/PREFIX...], e.g. lan=10.0.0.2/24,fd00:1::2/64")
	}
	in := lab.InsideSpec{Namespace: name}
	for _, s := range strings.Split(addrs, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return lab.InsideSpec{}, fmt.Errorf("%q is not an ADDR/PREFIX such as 10.0.0.2/24 or fd00:1::2/64", s)
		}
		if p.Addr().Is4() {
			if p.Addr() == p.Masked().Addr() && p.Bits() < 31 {
				return lab.InsideSpec{}, fmt.Errorf("%s is a network address; give the host's address, e.g. %s", p, p.Masked().Addr().Next())
			}
		} else if err := checkInside6(p); err != nil {
			return lab.InsideSpec{}, err
		}
		if slices.ContainsFunc(in.Hosts, func(h netip.Prefix) bool { return h.Addr() == p.Addr() }) {
			return lab.InsideSpec{}, fmt.Errorf("%s given twice", p.Addr())
		}
		in.Hosts = append(in.Hosts, p)
	}
	return in, nil
}

// checkInside6 checks an IPv6 host prefix of --inside: a unicast address
// that is not the prefix's subnet-router anycast address (RFC 4291
// 2.6.1, all zeros in the interface identifier).
func checkInside6(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case a.Is4In6():
		return fmt.Errorf("%s: an IPv4-mapped address; give IPv4 as IPv4", p)
	case a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLoopback():
		return fmt.Errorf("%s: want a unicast IPv6 host address such as fd00:1::2/64", p)
	case p.Bits() < 128 && a == p.Masked().Addr():
		return fmt.Errorf("%s is the prefix's anycast address; give the host's address, e.g. %s", p, a.Next().Next())
	}
	return nil
}

// envOr is the environment variable k, or def when it is unset or empty.
func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// busyPollProcs runs gonat on one P when busy-polling (unless GOMAXPROCS
// is set): the spinning readers stay on their thread. With a second P, an
// idle P's thread is woken to steal a loop at each yield, and the
// migrations cost tail latency (measured: ping p99 +20 µs over the kernel
// NAT with one P, +100 µs with two).
func busyPollProcs(d time.Duration) {
	if d > 0 && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// checkOutsideMTU checks --outside-mtu: 0, or an MTU IPv4 can use (at
// least 68 bytes, RFC 791), and IPv6 too (1280, RFC 8200) when v6.
func checkOutsideMTU(mtu int, v6 bool) error {
	switch {
	case mtu == 0:
	case mtu < 68 || mtu > 65535:
		return usageErr("--outside-mtu %d: want 68-65535 bytes (IPv4 needs at least 68), or 0 for --mtu", mtu)
	case v6 && mtu < 1280:
		return usageErr("--outside-mtu %d: the outside link carries IPv6 (an IPv6 --external), which needs at least 1280 bytes", mtu)
	}
	return nil
}
