package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gonat/gonat/experiment"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/traverse"
)

const rendezvousHelp = `Usage: gonat rendezvous --listen IP:PORT

The referral server of hole punching: peers register under a name (UDP and
TCP on the same address and port) and learn each other's candidates: the
local endpoints they report, and the server-reflexive endpoint the server
observes (what their NAT made).

Flags:
`

func rendezvousCmd(args []string) error {
	fs := flag.NewFlagSet("rendezvous", flag.ContinueOnError)
	listen := fs.String("listen", "", "`IP:PORT` to listen on (UDP and TCP)")
	verbose := fs.Bool("v", false, "log every registration and lookup")
	if err := parse(fs, args, rendezvousHelp); err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil {
		return usageErr("--listen %q: want IP:PORT such as 203.0.113.20:7000", *listen)
	}
	cfg := traverse.ServerConfig{Listen: ap}
	if *verbose {
		cfg.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	srv, err := traverse.NewServer(cfg)
	if err != nil {
		return err
	}
	return serveUntilSignal(fmt.Sprintf("rendezvous server on %s (udp and tcp)", srv.Addr()), srv.Serve, srv.Close)
}

const peerHelp = `Usage: gonat peer --rendezvous IP:PORT --name A --connect B [--tcp] [--json] [--predict N] [--permissive]

One hole-punching peer: registers as A with the rendezvous server, learns
its candidates (host, and server-reflexive from the rendezvous server or
--stun), learns B's, punches (UDP: sends to every candidate of B at once and
again; TCP: simultaneous open from the same port), reports which pair
connected and how long it took, or that it failed and why, then exchanges a
message both ways. Exit 0 when connected, 1 when not.

Over UDP it judges as an RFC 8445 (ICE) agent does: a pair is connected
when a response to our own check (punch) comes back from the address the
check went to, and the source of a check that was no candidate is checked
back (peer-reflexive). --permissive takes any packet from B, from any
address, as the connection, which succeeds where an ICE agent fails (both
NATs address-and-port-dependent mapping, one of them not filtering on
ports).

Flags:
`

func peerCmd(args []string) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	rv := fs.String("rendezvous", "", "rendezvous server `IP:PORT`")
	name := fs.String("name", "", "this peer's name")
	connect := fs.String("connect", "", "the peer to connect to")
	tcp := fs.Bool("tcp", false, "TCP simultaneous open instead of UDP")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	predict := fs.Int("predict", 0, "also try the peer's server-reflexive port +1..+N (sequential symmetric NATs)")
	stunSrv := fs.String("stun", "", "STUN server `IP:PORT` for the server-reflexive candidate (UDP)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	verbose := fs.Bool("v", false, "log each step")
	permissive := fs.Bool("permissive", false, "UDP: any packet from the peer, from any address, is the connection (not what an RFC 8445 agent accepts)")
	if err := parse(fs, args, peerHelp); err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(*rv)
	if err != nil {
		return usageErr("--rendezvous %q: want IP:PORT such as 203.0.113.20:7000", *rv)
	}
	if *name == "" || *connect == "" || *name == *connect {
		return usageErr("--name and --connect: want two different peer names")
	}
	if *tcp && *permissive {
		return usageErr(permissiveTCP)
	}
	cfg := traverse.PeerConfig{Rendezvous: ap, Name: *name, Connect: *connect, TCP: *tcp, PredictPorts: *predict, Timeout: *timeout, Permissive: *permissive}
	if *stunSrv != "" {
		s, err := netip.ParseAddrPort(*stunSrv)
		if err != nil {
			return usageErr("--stun %q: want IP:PORT", *stunSrv)
		}
		cfg.STUN = s
	}
	if *verbose {
		cfg.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := traverse.RunPeer(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(rep)
	} else {
		fmt.Printf("%s -> %s (%s):\n", rep.Name, rep.Peer, rep.Proto)
		for _, c := range rep.LocalCandidates {
			fmt.Printf("  local candidate   %s\n", c)
		}
		for _, c := range rep.RemoteCandidates {
			fmt.Printf("  remote candidate  %s\n", c)
		}
		if rep.Connected {
			fmt.Printf("  connected in %s: %s <-> %s; message exchanged: %t\n", rep.Elapsed.Round(time.Millisecond), rep.Local, rep.Remote, rep.MessageExchanged)
		} else {
			fmt.Printf("  not connected after %s: %s\n", rep.Elapsed.Round(time.Millisecond), rep.Reason)
		}
		if rep.Detail != "" {
			fmt.Printf("  %s\n", rep.Detail)
		}
	}
	if !rep.Connected {
		return &exitError{code: 1, err: fmt.Errorf("%s could not reach %s: %s", rep.Name, rep.Peer, rep.Reason)}
	}
	return nil
}

// permissiveTCP refuses --permissive with --tcp, where it would change
// nothing: a TCP connection is its handshake.
const permissiveTCP = "--permissive is for UDP: a TCP connection is judged by its handshake"

const matrixHelp = `Usage: gonat matrix [--tcp] [--json] [--all] [--permissive] [--ipv6 MODE]

Builds a lab with two peers behind every pair of NAT types (the four classic
presets; --all: the nine mapping x filtering combinations), runs the
rendezvous server and the peers, and prints the table of outcomes next to
the expected one. Exit 1 on any disagreement.

The peers judge a UDP connection as RFC 8445 (ICE) agents do (see gonat
peer --help); --permissive as peers that take any packet from the partner.

--ipv6 MODE runs the matrix over IPv6, every NAT in that IPv6 mode (the
run flag's words): routed (no translation: each type's filtering, applied
by the stateful firewall, is all that is left, and the expected table is
all yes), nptv6 (stateless prefix translation, nothing filtered) or nat66
(addresses and ports translated with each type's behaviours: the IPv4
table). none, blackhole and reject let no IPv6 through and are refused.

Flags:
`

func matrixCmd(args []string) error {
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	tcp := fs.Bool("tcp", false, "TCP simultaneous open instead of UDP")
	asJSON := fs.Bool("json", false, "print the outcomes as JSON")
	all := fs.Bool("all", false, "all nine mapping x filtering combinations")
	parallel := fs.Int("parallel", 4, "labs at once")
	timeout := fs.Duration("timeout", 5*time.Second, "per peer")
	permissive := fs.Bool("permissive", false, "UDP: peers take any packet from the partner as the connection, not only RFC 8445 responses")
	ipv6 := fs.String("ipv6", "", "run over IPv6 with every NAT in this IPv6 `mode`: routed, nptv6 or nat66")
	if err := parse(fs, args, matrixHelp); err != nil {
		return err
	}
	if *tcp && *permissive {
		return usageErr(permissiveTCP)
	}
	var mode6 table.IPv6Mode
	if flagGiven(fs, "ipv6") {
		m, err := table.ParseIPv6Mode(*ipv6)
		if err != nil {
			return usageErr("--ipv6 %q: %v", *ipv6, err)
		}
		if err := experiment.CheckIPv6Mode(m); err != nil {
			return usageErr("--ipv6 %s: %v", m, err)
		}
		mode6 = m
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (it builds labs of network namespaces)")
	}
	types := experiment.ClassicTypes()
	if *all {
		types = experiment.AllCombinations()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	self, _ := os.Executable()
	start := time.Now()
	outs, err := experiment.RunMatrix(ctx, experiment.MatrixConfig{
		Types: types, TCP: *tcp, Permissive: *permissive, Parallel: *parallel, Timeout: *timeout, GonatPath: self, IPv6: mode6,
		Progress: func(done, total int, o experiment.Outcome) {
			res := "no"
			if o.Connected {
				res = "yes"
			}
			if o.Err != "" {
				res = "error: " + o.Err
			}
			fmt.Fprintf(os.Stderr, "[%d/%d] %s x %s: %s (%s)\n", done, total, o.A, o.B, res, o.Elapsed.Round(time.Millisecond))
		},
	})
	if err != nil {
		return err
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(outs)
	} else {
		proto := "UDP"
		if *tcp {
			proto = "TCP"
		}
		judge := "as RFC 8445 agents judge it"
		switch {
		case *tcp:
			judge = "simultaneous open"
		case *permissive:
			judge = "permissive: any packet from the partner connects"
		}
		over := ""
		if mode6 != table.IPv6None {
			over = fmt.Sprintf(" over IPv6, every NAT's ipv6 mode %s", mode6)
		}
		fmt.Printf("%s hole punching%s (%s), two peers behind NATs of these types (no port prediction); took %s\n\n", proto, over, judge, time.Since(start).Round(time.Second))
		experiment.RenderMatrix(os.Stdout, types, outs)
	}
	if bad := experiment.Disagreements(outs); len(bad) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d outcomes differ from the expected table", len(bad))}
	}
	return nil
}
