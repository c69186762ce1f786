package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/stun"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/traverse"
)

const demoHelp = `Usage: gonat demo [--happy-eyeballs]

Builds a throwaway lab (a private host, gonat, a public RFC 5780 STUN
server, each in its own network namespace), then for each classic NAT
type: sends a STUN request through the NAT, shows the packet before and
after translation and the mapping it made, and lets the RFC 5780 probe
discover the NAT's behaviour. Finishes by itself in well under a minute
and removes everything it made (also on Ctrl-C).

--happy-eyeballs shows instead, in examples/happy-eyeballs.toml, which
family wins a Happy Eyeballs race (gonat he) and when, for a client whose
IPv6 works, is blackholed, is refused or is slow.

Flags:
`

var (
	demoHost     = netip.MustParseAddr("10.0.0.2")
	demoExternal = netip.MustParseAddr("198.51.100.1")
	demoServer1  = netip.MustParseAddr("203.0.113.1")
	demoServer2  = netip.MustParseAddr("203.0.113.2")
)

func demoCmd(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	he := fs.Bool("happy-eyeballs", false, "show the Happy Eyeballs race in each IPv6 situation instead")
	if err := parse(fs, args, demoHelp); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (it creates network namespaces and TUN devices); try: sudo gonat demo")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A name prefix of our own: two demos (or a demo and a test run) never
	// collide, and everything we made is findable.
	prefix := fmt.Sprintf("gd%d-", os.Getpid())
	if *he {
		return demoHappyEyeballs(ctx, prefix)
	}
	lan, wan := prefix+"lan", prefix+"wan"
	var made []string
	defer func() {
		for _, n := range made {
			if err := ns.Delete(n); err != nil {
				fmt.Fprintf(os.Stderr, "gonat demo: cleanup: %v\n", err)
			}
		}
	}()
	for _, n := range []string{lan, wan} {
		if err := ns.Create(n); err != nil {
			return err
		}
		made = append(made, n)
	}
	if err := ns.AddLocalAddrs(wan, netip.PrefixFrom(demoServer1, 32), netip.PrefixFrom(demoServer2, 32)); err != nil {
		return err
	}
	srv, err := stun.NewServer(stun.ServerConfig{Primary: demoServer1, Alternate: demoServer2, ListenPacket: ns.ListenPacket(wan)})
	if err != nil {
		return err
	}
	defer srv.Close()
	go srv.Serve(ctx)

	behavior, err := lab.Behavior("full-cone", nil, []netip.Addr{demoExternal})
	if err != nil {
		return err
	}
	n, err := lab.StartNAT(ctx, lab.NATSpec{
		Inside:   []lab.InsideSpec{{Namespace: lan, Hosts: []netip.Prefix{netip.PrefixFrom(demoHost, 24)}}},
		Outside:  wan,
		Behavior: behavior,
	})
	if err != nil {
		return err
	}
	defer n.Close()

	fmt.Printf(`gonat demo: a throwaway lab in namespaces %s and %s

   host A %s  --[ gonat NAT, external %s ]--  public: STUN server %s and %s

A STUN server tells a client the address and port it saw: behind a NAT,
that is the mapping the NAT made. The RFC 5780 probe then sends requests
to the server's other address and port, and asks it to answer from them,
to tell how the NAT maps and filters.
`, lan, wan, demoHost, demoExternal, demoServer1, demoServer2)

	var traceMu sync.Mutex
	var trace []string
	n.Engine.SetObserver(func(ev nat.Event) {
		if ev.Kind == nat.EventTranslated {
			traceMu.Lock()
			trace = append(trace, ev.String())
			traceMu.Unlock()
		}
	})
	listen := ns.ListenPacket(lan)
	presets := []struct{ name, title string }{
		{"full-cone", "full cone"},
		{"restricted-cone", "restricted cone"},
		{"port-restricted-cone", "port restricted cone"},
		{"symmetric", "symmetric"},
	}
	for i, p := range presets {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c, err := lab.Behavior(p.name, nil, []netip.Addr{demoExternal})
		if err != nil {
			return err
		}
		c.Seed = n.Engine.Config().Table.Seed // drawn at start
		if err := n.Engine.SetTableConfig(c); err != nil {
			return err
		}
		ports := c.PortAssignment.String()
		if c.PortAssignment == table.Random {
			ports += fmt.Sprintf(" from seed %d", c.Seed)
		}
		fmt.Printf("\n== %d/%d  %s NAT  (preset %s: mapping %s, filtering %s, ports %s)\n",
			i+1, len(presets), p.title, p.name, c.Mapping, c.Filtering, ports)

		conn, err := listen("udp4", fmt.Sprintf("%s:%d", demoHost, 40000+i))
		if err != nil {
			return err
		}
		traceMu.Lock()
		trace = trace[:0]
		traceMu.Unlock()
		n.Engine.SetTracing(true)
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := stun.Binding(bctx, conn, netip.AddrPortFrom(demoServer1, stun.DefaultPort), 0, 200*time.Millisecond, 5)
		cancel()
		n.Engine.SetTracing(false)
		conn.Close()
		if err != nil {
			return fmt.Errorf("binding request through the NAT: %w", err)
		}
		fmt.Printf("   A sends a STUN Binding request from %s; the packet before => after the NAT:\n", conn.LocalAddr())
		traceMu.Lock()
		for _, l := range trace {
			fmt.Println("     " + l)
		}
		traceMu.Unlock()
		fmt.Printf("   the server saw %s: the mapping the NAT made\n", r.Mapped)
		n.Engine.Mappings(time.Now(), func(m nat.MappingInfo) {
			if m.Internal.Addr() == demoHost && m.Proto == table.UDP && m.Internal.Port() == uint16(40000+i) {
				fmt.Printf("   mapping table: %s %s <-> %s, expires in %s\n", m.Proto, m.Internal, m.External, time.Until(m.Expires).Round(time.Second))
			}
		})

		filteredBefore := n.Engine.Count(nat.DropFiltered)
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		res, err := stun.Probe(pctx, stun.ProbeConfig{Server: netip.AddrPortFrom(demoServer1, stun.DefaultPort),
			ListenPacket: listen, RTO: 100 * time.Millisecond, Retries: 3})
		cancel()
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		fmt.Printf("   RFC 5780 probe: M1 %s  M2 %s  M3 %s\n", res.Mapped[0], res.Mapped[1], res.Mapped[2])
		hairpin := hairpinWord(res)
		if hairpin != boolWord(res.Hairpin) {
			hairpin += fmt.Sprintf("; configured %s", onOff(c.Hairpin))
		}
		fmt.Printf("     mapping %s, filtering %s, hairpin %s; the NAT's filter dropped %d test packets\n",
			res.Mapping, res.Filtering, hairpin, n.Engine.Count(nat.DropFiltered)-filteredBefore)
		verdict := "as configured"
		if res.Classic != p.title {
			verdict = "NOT as configured"
		}
		fmt.Printf("   => the probe calls it: %s (%s)\n", res.Classic, verdict)
		if res.Classic != p.title {
			return fmt.Errorf("preset %s was observed as %q", p.name, res.Classic)
		}
	}
	if err := demoHolePunch(ctx, prefix); err != nil {
		return err
	}
	fmt.Printf("\nDone; removing the labs. Next: `gonat run --help`, `gonat lab up examples/two-homes.toml`, `gonat matrix`, README.md.\n")
	return nil
}

// The second act: two peers behind two NATs learn their public endpoints,
// meet at a rendezvous server, and punch; once between a full cone and a
// symmetric NAT (it works), once between a port-restricted cone and a
// symmetric NAT (both filters drop the punches).
const demoPunchTopo = `
[[nat]]
name = "home-a"
preset = "full-cone"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"

[[nat]]
name = "home-b"
preset = "symmetric"
external = ["198.51.100.2"]
inside = "10.0.2.0/24"

[[host]]
name = "alice"
network = "home-a"

[[host]]
name = "bob"
network = "home-b"

[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "203.0.113.11"]
`

func demoHolePunch(ctx context.Context, prefix string) error {
	topo, err := lab.Parse([]byte("name = \"demo\"\n"+demoPunchTopo), "demo.toml")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var lines []string
	l, err := lab.Up(ctx, topo, lab.Options{Name: strings.TrimSuffix(prefix, "-") + "p", Observer: func(natName string, ev nat.Event) {
		if ev.Kind == nat.EventCreated || (ev.Kind == nat.EventDrop && ev.Verdict == nat.DropFiltered) {
			mu.Lock()
			lines = append(lines, fmt.Sprintf("%-7s %s", natName+":", ev.String()))
			mu.Unlock()
		}
	}})
	if err != nil {
		return err
	}
	defer l.Close()
	l.Events.ForceTracing(true) // DROP events for the story
	server := l.Node("server").Namespace
	st, err := stun.NewServer(stun.ServerConfig{Primary: netip.MustParseAddr("203.0.113.10"), Alternate: netip.MustParseAddr("203.0.113.11"), ListenPacket: ns.ListenPacket(server)})
	if err != nil {
		return err
	}
	defer st.Close()
	go st.Serve(ctx)
	in := func(n string) traverse.Net {
		return traverse.NetIn(func(fn func() error) error { return ns.Do(n, fn) }, nil)
	}
	rvAddr := netip.MustParseAddrPort("203.0.113.10:7000")
	rv, err := traverse.NewServer(traverse.ServerConfig{Listen: rvAddr, Net: in(server)})
	if err != nil {
		return err
	}
	defer rv.Close()
	go rv.Serve(ctx)

	fmt.Printf(`
== Hole punching: alice (10.0.1.2, behind home-a, seed %d) and bob (10.0.2.2, behind home-b, seed %d)
   Each peer registers with a rendezvous server at %s, which tells it the
   public endpoint it saw (what the NAT made) and the other peer's; then both
   send to each other's public endpoint at once, so each NAT sees an outbound
   packet before the other side's arrives.
`, l.NAT("home-a").Engine.Config().Table.Seed, l.NAT("home-b").Engine.Config().Table.Seed, rvAddr)
	acts := []struct{ presetA, title string }{
		{"full-cone", "full cone (alice) with symmetric (bob)"},
		{"port-restricted-cone", "port-restricted cone (alice) with symmetric (bob)"},
	}
	for i, act := range acts {
		if err := l.NAT("home-a").Set(act.presetA, nil); err != nil {
			return err
		}
		l.NAT("home-b").Flush()
		mu.Lock()
		lines = lines[:0]
		mu.Unlock()
		var wg sync.WaitGroup
		reps := make([]traverse.Report, 2)
		for j, who := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reps[j], _ = traverse.RunPeer(ctx, traverse.PeerConfig{Rendezvous: rvAddr, Name: who[0] + strconv.Itoa(i), Connect: who[1] + strconv.Itoa(i),
					Timeout: 3 * time.Second, Net: in(l.Node(who[0]).Namespace)})
			}()
		}
		wg.Wait()
		fmt.Printf("\n   %d/2  %s\n", i+1, act.title)
		mu.Lock()
		shown := 0
		for _, line := range lines {
			if shown == 8 {
				fmt.Printf("     ... %d more\n", len(lines)-shown)
				break
			}
			fmt.Println("     " + line)
			shown++
		}
		mu.Unlock()
		a := reps[0]
		if a.Connected && a.MessageExchanged {
			fmt.Printf("   => connected in %s (%s <-> %s), a message went both ways.\n", a.Elapsed.Round(time.Millisecond), a.Local, a.Remote)
			fmt.Println("      Bob's symmetric NAT sends his punch from a new port, but alice's full-cone NAT admits anyone to her mapping;")
			fmt.Println("      she answers to that port, which bob's NAT admits because he sent to her.")
		} else {
			fmt.Printf("   => no connection (%s).\n", a.Reason)
			fmt.Println("      Bob's punch comes from a new port alice's filter never sent to; alice's punch reaches the mapping bob's")
			fmt.Println("      NAT made for the rendezvous server only: both filters drop them (reason=filtered above).")
		}
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
