package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gonat/gonat/stun"
)

const stunServerHelp = `Usage: gonat stun-server --primary IP --alternate IP [--port 3478] [--alt-port 3479]

An RFC 5780 STUN server for NAT behaviour discovery: it listens on both
addresses and both ports (four sockets), reports the address it saw
(XOR-MAPPED-ADDRESS and MAPPED-ADDRESS), where it answered from
(RESPONSE-ORIGIN), its other address (OTHER-ADDRESS), and honours
CHANGE-REQUEST; RFC 3489 clients get SOURCE-ADDRESS and CHANGED-ADDRESS.
Both addresses must be on this host (run it in a namespace with
'ip netns exec NS gonat stun-server ...').

IPv4, IPv6 or both: give --primary and --alternate once per family
(--primary 203.0.113.1 --primary 2001:db8::1 --alternate 203.0.113.2
--alternate 2001:db8::2, or comma-separated): each family gets its own
four sockets, and an answer's addresses are of the request's family.

Flags:
`

func stunServerCmd(args []string) error {
	fs := flag.NewFlagSet("stun-server", flag.ContinueOnError)
	var primary, alternate listFlag
	fs.Var(&primary, "primary", "primary `IP` (A1), IPv4 and/or IPv6 (one per family: repeatable or comma-separated)")
	fs.Var(&alternate, "alternate", "alternate `IP` (A2) of each family given to --primary")
	port := fs.Uint("port", stun.DefaultPort, "primary port (P1)")
	altPort := fs.Uint("alt-port", stun.DefaultAltPort, "alternate port (P2)")
	verbose := fs.Bool("v", false, "log every request")
	if err := parse(fs, args, stunServerHelp); err != nil {
		return err
	}
	pairs, err := serverPairs(primary.vals, alternate.vals)
	if err != nil {
		return err
	}
	if *port == 0 || *port > 65535 || *altPort == 0 || *altPort > 65535 || *port == *altPort {
		return usageErr("--port %d / --alt-port %d: want two different ports in 1-65535", *port, *altPort)
	}
	var logf func(string, ...any)
	if *verbose {
		logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	var (
		srvs  []*stun.Server
		where []string
	)
	closeAll := func() error {
		var first error
		for _, s := range srvs {
			if err := s.Close(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, p := range pairs {
		srv, err := stun.NewServer(stun.ServerConfig{Primary: p[0], Alternate: p[1], Port: uint16(*port), AltPort: uint16(*altPort), Logf: logf})
		if err != nil {
			closeAll()
			return err
		}
		srvs = append(srvs, srv)
		for _, a := range srv.Addrs() {
			where = append(where, a.String())
		}
	}
	err = serveUntilSignal("stun server on "+strings.Join(where, " "), func(ctx context.Context) error {
		errs := make(chan error, len(srvs))
		for _, s := range srvs {
			go func() {
				err := s.Serve(ctx)
				closeAll() // one family failing stops the server
				errs <- err
			}()
		}
		var first error
		for range srvs {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}, closeAll)
	var st stun.ServerStats
	for _, s := range srvs {
		x := s.Stats()
		st.Requests += x.Requests
		st.Responses += x.Responses
		st.Errors += x.Errors
		st.Malformed += x.Malformed
	}
	fmt.Fprintf(os.Stderr, "stun-server: requests=%d responses=%d errors=%d malformed=%d\n", st.Requests, st.Responses, st.Errors, st.Malformed)
	return err
}

// serverPairs pairs the --primary and --alternate addresses by family: one
// or two pairs (IPv4 first), each of two different addresses.
func serverPairs(primary, alternate []string) ([][2]netip.Addr, error) {
	parse := func(flag string, vals []string) (v4, v6 netip.Addr, err error) {
		for _, s := range splitList(vals) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return v4, v6, usageErr("--%s %q: want an IP address such as 203.0.113.1 or 2001:db8::1", flag, s)
			}
			a = a.Unmap()
			slot, fam := &v4, "IPv4"
			if a.Is6() {
				slot, fam = &v6, "IPv6"
			}
			if slot.IsValid() {
				return v4, v6, usageErr("--%s: two %s addresses (%v, %v); give one per family", flag, fam, *slot, a)
			}
			*slot = a
		}
		if !v4.IsValid() && !v6.IsValid() {
			return v4, v6, usageErr("--%s: required, e.g. --%s 203.0.113.1", flag, flag)
		}
		return v4, v6, nil
	}
	p4, p6, err := parse("primary", primary)
	if err != nil {
		return nil, err
	}
	a4, a6, err := parse("alternate", alternate)
	if err != nil {
		return nil, err
	}
	var pairs [][2]netip.Addr
	for _, f := range []struct {
		name string
		p, a netip.Addr
	}{{"IPv4", p4, a4}, {"IPv6", p6, a6}} {
		switch {
		case !f.p.IsValid() && !f.a.IsValid():
			continue
		case !f.a.IsValid():
			return nil, usageErr("--primary %v: give --alternate a second %s address of this host too (RFC 5780 needs two)", f.p, f.name)
		case !f.p.IsValid():
			return nil, usageErr("--alternate %v: give --primary an %s address too", f.a, f.name)
		case f.p == f.a:
			return nil, usageErr("--alternate %v: want a second IP address of this host, other than --primary", f.a)
		}
		pairs = append(pairs, [2]netip.Addr{f.p, f.a})
	}
	return pairs, nil
}

// splitList splits the comma-separated values of a repeatable flag.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// serveUntilSignal prints the ready line and runs serve until it returns
// or SIGINT/SIGTERM arrives, which closes the server and is no error.
func serveUntilSignal(what string, serve func(context.Context) error, closeFn func() error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); closeFn() }()
	fmt.Printf("ready: %s\n", what)
	err := serve(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

const probeHelp = `Usage: gonat probe [--server IP[:PORT]] [--json] [--lifetime [--max-lifetime DUR]]

Discovers the NAT in front of this host with an RFC 5780 STUN server
(RFC 5780 section 4): its mapping behaviour (endpoint-independent,
address-dependent, address-and-port-dependent), its filtering behaviour,
whether it hairpins, how it picks external ports (preserve, sequential,
random: from a series of fresh sockets), the classic RFC 3489 name, and
with --lifetime how long an idle UDP mapping lives (RFC 5780 section 4.6,
a search that costs 2-3 times the lifetime). Requests are retransmitted
(RFC 8489), so one lost packet does not change a verdict.

Over IPv6 when the server's address is IPv6 (--server 2001:db8::1, or
[2001:db8::1]:3478 with a port): RFC 5780 applies as it is, and the
verdict reads the same. Through a NAT that routes IPv6 untranslated
(ipv6 = routed) mapping is endpoint-independent, the mapped address is
the host's own, and the classic name says "open internet" or "udp
firewall" by the firewall's filtering.

Each test is announced on stderr as it starts. A test a filtering NAT
answers with silence waits out the whole retransmission schedule; unless
--rto is given, the RTO drops after the first answer to three times its
round trip (at least 100ms), so that wait is 2.3s on a fast path instead
of 11.5s.

--json prints one object with the keys mapping, filtering, hairpin
(true/false/null), hairpin_unseen (true where hairpin's false says
nothing: a NAT that maps per destination and filters drops the probe's
hairpinned request whether or not it hairpins), port_assignment,
lifetime_seconds, lifetime_bounded, classic, local, mapped (a stable
schema for scripts).

Flags:
`

func probeCmd(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	server := fs.String("server", "203.0.113.1:3478", "RFC 5780 server `IP[:PORT]`, IPv4 or IPv6 ([IP]:PORT)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	rto := fs.Duration("rto", 500*time.Millisecond, "initial retransmission timeout")
	retries := fs.Int("retries", 4, "requests per transaction before a test counts as silent")
	lifetime := fs.Bool("lifetime", false, "also measure the idle UDP mapping lifetime (RFC 5780 4.6)")
	maxLifetime := fs.Duration("max-lifetime", 5*time.Minute, "stop the lifetime search here (a lower bound then)")
	if err := parse(fs, args, probeHelp); err != nil {
		return err
	}
	srv, err := netip.ParseAddrPort(*server)
	if err != nil {
		a, err2 := netip.ParseAddr(*server)
		if err2 != nil {
			return usageErr("--server %q: want IP or IP:PORT, such as 203.0.113.1, 2001:db8::1 or [2001:db8::1]:3478", *server)
		}
		srv = netip.AddrPortFrom(a, stun.DefaultPort)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := stun.Probe(ctx, stun.ProbeConfig{Server: srv, RTO: *rto, Retries: *retries, Lifetime: *lifetime, MaxLifetime: *maxLifetime,
		AdaptRTO: !flagGiven(fs, "rto"),
		Progress: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "probe: "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	if *asJSON {
		out := map[string]any{
			"mapping": r.Mapping.String(), "filtering": r.Filtering.String(), "hairpin": r.Hairpin, "hairpin_unseen": r.HairpinUnseen(), "classic": r.Classic,
			"port_assignment": r.PortAssignment.String(), "lifetime_seconds": r.Lifetime.Seconds(), "lifetime_bounded": r.LifetimeBounded,
			"local": r.Local.String(), "mapped": []string{r.Mapped[0].String(), r.Mapped[1].String(), r.Mapped[2].String()},
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Printf("local      %s\nmapped     %s (A1:P1)  %s (A2:P1)  %s (A2:P2)\nmapping    %s\nfiltering  %s\nhairpin    %s\nports      %s\n",
		r.Local, r.Mapped[0], r.Mapped[1], r.Mapped[2], orUnknown(r.Mapping.String()), orUnknown(r.Filtering.String()), hairpinWord(r), orUnknown(r.PortAssignment.String()))
	if *lifetime {
		bound := ""
		if r.LifetimeBounded {
			bound = " or more (the search stopped at --max-lifetime)"
		}
		if r.Lifetime == 0 {
			fmt.Printf("lifetime   unknown (the server ignored RESPONSE-PORT)\n")
		} else {
			fmt.Printf("lifetime   %s%s\n", r.Lifetime.Round(100*time.Millisecond), bound)
		}
	}
	fmt.Printf("classic    %s\n", orUnknown(r.Classic))
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// hairpinWord is the probe's hairpin verdict for people.
func hairpinWord(r stun.Result) string {
	if r.HairpinUnseen() {
		return "unseen (a probe cannot see hairpinning through " + r.Mapping.String() + " mapping with a filter)"
	}
	return boolWord(r.Hairpin)
}

func boolWord(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "yes"
	}
	return "no"
}
