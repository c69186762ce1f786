package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gonat/gonat/happyeyeballs"
)

const heHelp = `Usage: gonat he [flags] HOST PORT

Races TCP connections to HOST's IPv6 and IPv4 addresses as Happy Eyeballs
(RFC 8305) does, and prints each step with its time since the start: the
AAAA and A answers, each attempt's start and outcome, and the winner.
AAAA and A are asked at once; an A answer waits up to --resolution-delay
for AAAA; addresses alternate by family, IPv6 first; a new attempt starts
every --attempt-delay while earlier ones are pending, and at once when
one fails; the first connection wins and the others are cancelled.

Run it inside a lab node (gonat lab exec alice -- gonat he server 80) to
see which family wins there and how long it takes when IPv6 works, is
blackholed, rejected or slow. Names are resolved with /etc/resolv.conf
(a lab host's points at the lab DNS server). HOST may be an IP address.

Exit status: 0 when a connection won, 1 when none did, 2 on bad usage.
--json prints one object: host, port, events (ms, event: answer, attempt,
failed, connected or cancelled; family; addrs for answers; attempt and
addr for attempts; error), and winner (attempt, addr, family, ms; null
when none won).

Flags:
`

func heCmd(args []string) error {
	fs := flag.NewFlagSet("he", flag.ContinueOnError)
	attemptDelay := fs.Duration("attempt-delay", happyeyeballs.DefaultAttemptDelay, "connection attempt delay (RFC 8305 section 5)")
	resolutionDelay := fs.Duration("resolution-delay", happyeyeballs.DefaultResolutionDelay, "how long an A answer waits for AAAA (RFC 8305 section 3)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on the whole race after this")
	asJSON := fs.Bool("json", false, "print the race as JSON")
	pos, err := parseWithArgs(fs, args, heHelp)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageErr("want HOST PORT (see gonat he --help)")
	}
	port, err := strconv.ParseUint(pos[1], 10, 16)
	if err != nil || port == 0 {
		return usageErr("port %q: want 1-65535", pos[1])
	}
	if *attemptDelay <= 0 || *resolutionDelay <= 0 || *timeout <= 0 {
		return usageErr("--attempt-delay, --resolution-delay and --timeout must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg := happyeyeballs.Config{AttemptDelay: *attemptDelay, ResolutionDelay: *resolutionDelay}
	if !*asJSON {
		cfg.OnEvent = func(e happyeyeballs.Event) { fmt.Println(eventLine(e)) }
	}
	r, raceErr := happyeyeballs.Dial(ctx, cfg, pos[0], uint16(port))
	if r.Conn != nil {
		r.Conn.Close()
	}
	if *asJSON {
		if err := heJSON(os.Stdout, pos[0], uint16(port), r); err != nil {
			return err
		}
	} else if raceErr == nil {
		fmt.Printf("winner: %s (%s, attempt %d) after %s\n", r.Winner, familyOf(r), r.Attempt, ms(r.Elapsed))
	}
	if raceErr != nil {
		if errors.Is(raceErr, context.DeadlineExceeded) {
			raceErr = fmt.Errorf("no connection within --timeout %s", *timeout)
		}
		return raceErr
	}
	return nil
}

// parseWithArgs is parse for a command with positional arguments, which
// may come before, between or after the flags.
func parseWithArgs(fs *flag.FlagSet, args []string, help string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(help)
			printFlags(os.Stdout, fs)
			return nil, errHelp
		}
		if err != nil {
			return nil, usageErr("%v (see gonat %s --help)", err, fs.Name())
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func familyOf(r happyeyeballs.Result) happyeyeballs.Family {
	if r.Winner.Addr().Is4() {
		return happyeyeballs.IPv4
	}
	return happyeyeballs.IPv6
}

// eventLine is one event for people: its time, then what happened.
func eventLine(e happyeyeballs.Event) string {
	at := fmt.Sprintf("%9s  ", ms(e.At))
	switch e.Kind {
	case happyeyeballs.Answer:
		what := fmt.Sprint(e.Addrs)
		switch {
		case e.Err != nil && len(e.Addrs) == 0:
			what = "none (" + e.Err.Error() + ")"
		case len(e.Addrs) == 0:
			what = "none"
		}
		return fmt.Sprintf("%s%-4s answer: %s", at, e.Family.RRType(), what)
	case happyeyeballs.Failed:
		return fmt.Sprintf("%sattempt %d %s %s: failed: %v", at, e.Attempt, e.Family, e.Addr, e.Err)
	}
	return fmt.Sprintf("%sattempt %d %s %s: %s", at, e.Attempt, e.Family, e.Addr, map[happyeyeballs.Kind]string{
		happyeyeballs.Attempt: "started", happyeyeballs.Connected: "connected", happyeyeballs.Cancelled: "cancelled"}[e.Kind])
}

// heJSON writes the race as one JSON object.
func heJSON(w io.Writer, host string, port uint16, r happyeyeballs.Result) error {
	type event struct {
		MS      float64  `json:"ms"`
		Event   string   `json:"event"`
		Family  string   `json:"family"`
		Addrs   []string `json:"addrs,omitempty"`
		Attempt int      `json:"attempt,omitempty"`
		Addr    string   `json:"addr,omitempty"`
		Error   string   `json:"error,omitempty"`
	}
	type winner struct {
		Attempt int     `json:"attempt"`
		Addr    string  `json:"addr"`
		Family  string  `json:"family"`
		MS      float64 `json:"ms"`
	}
	out := struct {
		Host   string  `json:"host"`
		Port   uint16  `json:"port"`
		Events []event `json:"events"`
		Winner *winner `json:"winner"`
	}{Host: host, Port: port, Events: []event{}}
	msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, e := range r.Events {
		ev := event{MS: msOf(e.At), Event: e.Kind.String(), Family: e.Family.String(), Attempt: e.Attempt}
		if e.Kind == happyeyeballs.Answer {
			ev.Addrs = []string{}
			for _, a := range e.Addrs {
				ev.Addrs = append(ev.Addrs, a.String())
			}
		} else {
			ev.Addr = e.Addr.String()
		}
		if e.Err != nil {
			ev.Error = e.Err.Error()
		}
		out.Events = append(out.Events, ev)
	}
	if r.Conn != nil {
		out.Winner = &winner{Attempt: r.Attempt, Addr: r.Winner.String(), Family: familyOf(r).String(), MS: msOf(r.Elapsed)}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
