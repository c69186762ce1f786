package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/stun"
	"github.com/gonat/gonat/table"
)

const demoHelp = `Usage: gonat demo

Builds a throwaway lab (a private host, gonat, a public RFC 5780 STUN
server, each in its own network namespace), then for each classic NAT
type: sends a STUN request through the NAT, shows the packet before and
after translation and the mapping it made, and lets the RFC 5780 probe
discover the NAT's behaviour. Finishes by itself in well under a minute
and removes everything it made (also on Ctrl-C).

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
		if err := n.Engine.SetTableConfig(c); err != nil {
			return err
		}
		fmt.Printf("\n== %d/%d  %s NAT  (preset %s: mapping %s, filtering %s, ports %s)\n",
			i+1, len(presets), p.title, p.name, c.Mapping, c.Filtering, c.PortAssignment)

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
		fmt.Printf("     mapping %s, filtering %s, hairpin %s; the NAT's filter dropped %d test packets\n",
			res.Mapping, res.Filtering, boolWord(res.Hairpin), n.Engine.Count(nat.DropFiltered)-filteredBefore)
		verdict := "as configured"
		if res.Classic != p.title {
			verdict = "NOT as configured"
		}
		fmt.Printf("   => the probe calls it: %s (%s)\n", res.Classic, verdict)
		if res.Classic != p.title {
			return fmt.Errorf("preset %s was observed as %q", p.name, res.Classic)
		}
	}
	fmt.Printf("\nDone; removing the lab. Next: `gonat run --help`, scripts/netns-setup.sh, README.md.\n")
	return nil
}
