// Package happyeyeballs races TCP connections to a name's IPv6 and IPv4
// addresses as RFC 8305 (Happy Eyeballs version 2) describes, and reports
// every step with its time: the DNS answers, each attempt's start and
// outcome, and the winner. It is a study tool (gonat he) as much as a
// dialer: what it reports shows whether a network's IPv6 path works, is
// blackholed, rejected or slow.
//
// Not done: RFC 6724 destination sorting within a family (addresses are
// tried in the order DNS gave them), NAT64 prefix discovery and
// synthesis on an IPv6-only host (§7; the lab's DNS64 answers instead),
// and other transports than TCP.
package happyeyeballs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// RFC 8305's recommended values.
const (
	// DefaultResolutionDelay is how long an A answer waits for the AAAA
	// answer before IPv4 attempts start without it (§3).
	DefaultResolutionDelay = 50 * time.Millisecond
	// DefaultAttemptDelay is how long an attempt runs before the next
	// starts beside it (§5).
	DefaultAttemptDelay = 250 * time.Millisecond
)

// Family is an address family.
type Family int

const (
	IPv6 Family = iota
	IPv4
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// RRType is the DNS record type that answers for the family.
func (f Family) RRType() string {
	if f == IPv6 {
		return "AAAA"
	}
	return "A"
}

func familyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// Kind is what an Event reports.
type Kind int

const (
	Answer    Kind = iota // a DNS answer for one family: Family, Addrs or Err
	Attempt               // a connection attempt started: Attempt, Addr
	Failed                // an attempt failed: Attempt, Addr, Err
	Connected             // an attempt connected: the winner
	Cancelled             // an attempt still running when another won
)

func (k Kind) String() string {
	return [...]string{"answer", "attempt", "failed", "connected", "cancelled"}[k]
}

// Event is one step of a race.
type Event struct {
	At      time.Duration // since the race started
	Kind    Kind
	Family  Family
	Addrs   []netip.Addr   // Answer
	Attempt int            // attempts are numbered from 1
	Addr    netip.AddrPort // attempts
	Err     error          // Answer (the lookup failed; nil for "no such name"), Failed
}

// Resolver looks up one family's addresses; *net.Resolver is one
// (network "ip6" asks for AAAA only, "ip4" for A only).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config adjusts Dial; the zero value is RFC 8305's defaults.
type Config struct {
	// Resolver nil takes Go's own resolver (/etc/hosts, /etc/resolv.conf).
	Resolver Resolver
	// ResolutionDelay and AttemptDelay; 0 takes the defaults.
	ResolutionDelay time.Duration
	AttemptDelay    time.Duration
	// Dialer makes each attempt; nil takes a zero net.Dialer.
	Dialer *net.Dialer
	// OnEvent, if set, sees each event as it happens, on Dial's goroutine.
	OnEvent func(Event)
}

// Result is a race's outcome.
type Result struct {
	Conn    net.Conn       // the winner's connection; nil if none
	Winner  netip.AddrPort // its address
	Attempt int            // its number
	Elapsed time.Duration  // from the start to the winner's connection
	Events  []Event        // everything, in order
}

// ErrNoAddress is the error of a race whose lookups found nothing.
var ErrNoAddress = errors.New("no address")

// Dial races TCP connections to host's addresses at port. host may be an
// IP address: then there is one attempt. It returns the winner's
// connection, or an error saying why none connected; the Result holds the
// events either way. ctx bounds the whole race.
func Dial(ctx context.Context, cfg Config, host string, port uint16) (Result, error) {
	r := &race{cfg: cfg, port: port, start: time.Now()}
	if r.cfg.ResolutionDelay <= 0 {
		r.cfg.ResolutionDelay = DefaultResolutionDelay
	}
	if r.cfg.AttemptDelay <= 0 {
		r.cfg.AttemptDelay = DefaultAttemptDelay
	}
	if r.cfg.Dialer == nil {
		r.cfg.Dialer = &net.Dialer{}
	}
	if r.cfg.Resolver == nil {
		r.cfg.Resolver = &net.Resolver{PreferGo: true}
	}
	err := r.run(ctx, strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return r.res, err
}

type answer struct {
	fam   Family
	addrs []netip.Addr
	err   error
}

type outcome struct {
	n    int
	conn net.Conn
	err  error
}

type attempt struct {
	addr   netip.AddrPort
	cancel context.CancelFunc
}

// race is one Dial's state; only run's goroutine touches it.
type race struct {
	ctx   context.Context // bounds every attempt
	cfg   Config
	port  uint16
	start time.Time
	res   Result

	queue    [2][]netip.Addr // addresses not tried yet, by Family
	answered [2]bool
	last     Family // family of the last attempt
	n        int    // attempts started
	inflight map[int]attempt
	errs     []error
	outcomes chan outcome
	done     chan struct{}
}

func (r *race) emit(e Event) {
	e.At = time.Since(r.start)
	r.res.Events = append(r.res.Events, e)
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(e)
	}
}

func (r *race) run(ctx context.Context, host string) error {
	r.ctx = ctx
	r.inflight = map[int]attempt{}
	r.outcomes = make(chan outcome)
	r.done = make(chan struct{})
	defer close(r.done) // attempts that finish later close their connections
	defer func() {
		for _, a := range r.inflight {
			a.cancel()
		}
	}()

	answers := make(chan answer, 2)
	started := false // connection attempts have begun
	var resolution <-chan time.Time
	if a, err := netip.ParseAddr(host); err == nil {
		fam := familyOf(a)
		r.queue[fam] = []netip.Addr{a.Unmap()}
		r.answered = [2]bool{true, true}
		started = true
		r.startNext()
	} else {
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// AAAA first, then A, at once (§3).
		for _, fam := range []Family{IPv6, IPv4} {
			network := "ip6"
			if fam == IPv4 {
				network = "ip4"
			}
			go func() {
				addrs, err := r.cfg.Resolver.LookupNetIP(lctx, network, host)
				answers <- answer{fam, addrs, err}
			}()
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := false // the attempt delay runs
	next := func() {
		if r.startNext() {
			timer.Reset(r.cfg.AttemptDelay)
			armed = true
		}
	}
	if started {
		timer.Reset(r.cfg.AttemptDelay)
		armed = true
	}
	for {
		if r.answered[IPv6] && r.answered[IPv4] && len(r.inflight) == 0 && len(r.queue[IPv6])+len(r.queue[IPv4]) == 0 {
			if len(r.errs) == 0 {
				return fmt.Errorf("%s: %w", host, ErrNoAddress)
			}
			return fmt.Errorf("no connection to %s port %d: %w", host, r.port, errors.Join(r.errs...))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case a := <-answers:
			r.answered[a.fam] = true
			var got []netip.Addr
			for _, ad := range a.addrs {
				if ad = ad.Unmap(); familyOf(ad) == a.fam {
					got = append(got, ad)
				}
			}
			if isNotFound(a.err) {
				a.err = nil // no such name or no records: an empty answer
			}
			r.emit(Event{Kind: Answer, Family: a.fam, Addrs: got, Err: a.err})
			if a.err != nil && len(got) == 0 {
				r.errs = append(r.errs, fmt.Errorf("%s lookup: %w", a.fam.RRType(), a.err))
			}
			r.queue[a.fam] = append(r.queue[a.fam], got...)
			switch {
			case started:
				// Late answers join the race (§3); with no attempt
				// delay running, the next attempt starts now.
				if !armed {
					next()
				}
			case a.fam == IPv6 && len(got) > 0, r.answered[IPv6] && r.answered[IPv4]:
				started = true
				next()
			case a.fam == IPv4 && len(got) > 0:
				// A came first: give AAAA the resolution delay (§3).
				resolution = time.After(r.cfg.ResolutionDelay)
			}
		case <-resolution:
			resolution = nil
			if !started {
				started = true
				next()
			}
		case <-timer.C:
			armed = false
			next()
		case o := <-r.outcomes:
			at := r.inflight[o.n]
			delete(r.inflight, o.n)
			if o.err != nil {
				r.emit(Event{Kind: Failed, Family: familyOf(at.addr.Addr()), Attempt: o.n, Addr: at.addr, Err: o.err})
				r.errs = append(r.errs, fmt.Errorf("%s: %w", at.addr, o.err))
				// The next address need not wait out the delay; with
				// none left yet and nothing pending, the next answer's
				// addresses start at once.
				next()
				if len(r.inflight) == 0 {
					timer.Stop()
					armed = false
				}
				continue
			}
			r.emit(Event{Kind: Connected, Family: familyOf(at.addr.Addr()), Attempt: o.n, Addr: at.addr})
			r.res.Conn, r.res.Winner, r.res.Attempt = o.conn, at.addr, o.n
			r.res.Elapsed = r.res.Events[len(r.res.Events)-1].At
			for n := 1; n <= r.n; n++ {
				if other, ok := r.inflight[n]; ok {
					other.cancel()
					delete(r.inflight, n)
					r.emit(Event{Kind: Cancelled, Family: familyOf(other.addr.Addr()), Attempt: n, Addr: other.addr})
				}
			}
			return nil
		}
	}
}

// startNext starts an attempt to the next address, if any: the other
// family than the last attempt's where it has one left, IPv6 first
// (§4: interleaving, a first address family count of 1).
func (r *race) startNext() bool {
	fam := IPv6
	if r.n > 0 {
		fam = 1 - r.last
	}
	if len(r.queue[fam]) == 0 {
		fam = 1 - fam
	}
	if len(r.queue[fam]) == 0 {
		return false
	}
	addr := netip.AddrPortFrom(r.queue[fam][0], r.port)
	r.queue[fam] = r.queue[fam][1:]
	r.n++
	r.last = fam
	actx, cancel := context.WithCancel(r.ctx)
	r.inflight[r.n] = attempt{addr, cancel}
	r.emit(Event{Kind: Attempt, Family: fam, Attempt: r.n, Addr: addr})
	go func(n int) {
		c, err := r.cfg.Dialer.DialContext(actx, "tcp", addr.String())
		select {
		case r.outcomes <- outcome{n, c, err}:
		case <-r.done:
			if c != nil {
				c.Close()
			}
		}
	}(r.n)
	return true
}

// isNotFound reports a lookup's "no such name / no records" answer (or
// "no address of this family", from /etc/hosts), which is an empty answer
// rather than a failure.
func isNotFound(err error) bool {
	var de *net.DNSError
	var ae *net.AddrError
	return errors.As(err, &de) && de.IsNotFound || errors.As(err, &ae)
}
