package stun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	pstun "github.com/pion/stun/v3"
)

// DefaultMaxLifetime is the longest mapping lifetime the lifetime test
// measures when ProbeConfig.MaxLifetime is zero: RFC 4787 REQ-5's minimum
// UDP mapping timer, and the usual default.
const DefaultMaxLifetime = 5 * time.Minute

const (
	// minLifetimeTolerance is the floor of the default tolerance: below it
	// timer jitter and round trips blur the answer anyway.
	minLifetimeTolerance = 200 * time.Millisecond
	// lifetimeFirstStep is the first non-zero wait of the doubling round.
	lifetimeFirstStep = time.Second
	// lifetimeMaxPoints caps the waits (and so the sockets and mappings) of
	// a refining round.
	lifetimeMaxPoints = 32
	// lifetimeMaxRounds bounds the test when answers keep getting lost or a
	// caller-set tolerance is finer than a round can reach.
	lifetimeMaxRounds = 8
)

// lifeOutcome is what one step of the lifetime test saw.
type lifeOutcome uint8

const (
	lifeUnknown lifeOutcome = iota // no mapping learned, or the step was called off
	lifeAlive                      // the mapping outlived the wait
	lifeLapsed                     // the response to its mapped address did not arrive
)

// lifetimeTest measures how long a UDP mapping lives without outbound
// traffic (RFC 5780 §4.6).
//
// One step, for a wait T: a fresh socket X sends a Binding request to the
// primary address A1:P1 and learns its mapped address MX; after T with no
// traffic on X, another fresh socket Y sends A1:P1 a Binding request with
// RESPONSE-PORT = MX's port. The server answers from A1:P1 to Y's mapped IP
// (X's too on a NAT that pools addresses per host, RFC 4787 REQ-2) at MX's
// port. X already sent to A1:P1, so any filter admits that answer while the
// mapping lives; X getting it within a short window (2*RTO) means the
// mapping outlived T. Y's packets belong to Y's mapping and do not refresh
// X's, and X sends nothing after its first request, so every step needs its
// own X.
//
// The search is RFC 5780's exponential-then-bisect one, with the steps of a
// stage run side by side instead of one after another. A step costs its
// wait T, and a sequential search pays every T it tries: about 4L going up
// by doubling and L per bisection (≈ 9L for 5% precision). Here all the
// steps of a round start together, each waiting its own T, and the first
// lapse calls off the longer ones, so a round costs its shortest lapsing T
// (plus the 2*RTO window), whatever the number of steps:
//
//   - round 1 tries 0, 1 s, 2 s, 4 s, ... up to MaxLifetime at once: it ends
//     at the first lapse g, L <= g < 2L, bracketing L in [g/2, g]. The step
//     at 0 is the calibration: if even it fails (a server that ignores
//     RESPONSE-PORT, a NAT that gives Y another IP address), the lifetime
//     cannot be measured this way and the test reports nothing.
//   - round 2 tries evenly spaced waits inside the bracket, one tolerance
//     apart (at most lifetimeMaxPoints of them), ending at the first lapse,
//     about L: the bracket is then one tolerance wide.
//
// So the whole test takes about g + L, 2L to 3L, with up to 10-20 mappings
// alive at once (see lifetimeMaxPoints). A lost answer can only make a
// mapping look lapsed, never alive, so the lower end of the bracket is the
// longest wait seen alive; a lapse below it is ignored.
type lifetimeTest struct {
	fresh   func(string) (net.PacketConn, error)
	server  netip.AddrPort
	rto     time.Duration
	retries int
	max     time.Duration
	tol     time.Duration // zero: max(lo/20, minLifetimeTolerance)
	// rounds runs one round; nil means lt.round. Tests of the search
	// replace it with a model on a virtual clock.
	rounds func(ctx context.Context, points []time.Duration) ([]lifeOutcome, error)
}

// run returns the lifetime (the middle of the final bracket) and whether the
// mapping outlived lt.max; a zero lifetime without error means it could not
// be measured.
func (lt *lifetimeTest) run(ctx context.Context) (time.Duration, bool, error) {
	var (
		lo     time.Duration // the longest wait a mapping was seen to survive
		hi     = lt.max      // when lapsed, the shortest wait one lapsed after
		lapsed bool
	)
	points := []time.Duration{0}
	for t := lifetimeFirstStep; t < lt.max; t *= 2 {
		points = append(points, t)
	}
	points = append(points, lt.max)
	runRound := lt.rounds
	if runRound == nil {
		runRound = lt.round
	}
	for round := 0; round < lifetimeMaxRounds; round++ {
		out, err := runRound(ctx, points)
		if err != nil {
			return 0, false, err
		}
		if round == 0 && out[0] != lifeAlive {
			return 0, false, nil // the calibration step failed
		}
		progress := false
		for i, p := range points {
			if out[i] == lifeAlive && p > lo {
				lo, progress = p, true
			}
		}
		if lapsed && hi <= lo {
			hi, lapsed = lt.max, false // that lapse was a lost answer
		}
		for i, p := range points {
			if out[i] == lifeLapsed && p > lo && (!lapsed || p < hi) {
				hi, lapsed, progress = p, true, true
			}
		}
		switch {
		case !lapsed && lo >= lt.max:
			return lt.max, true, nil
		case lapsed && hi-lo <= lt.tolerance(lo):
			return lo + (hi-lo)/2, false, nil
		case !progress:
			return lt.estimate(lo, hi, lapsed), false, nil
		}
		points = lt.between(lo, hi, !lapsed)
	}
	return lt.estimate(lo, hi, lapsed), false, nil
}

// estimate is the answer when the search gives up early.
func (lt *lifetimeTest) estimate(lo, hi time.Duration, lapsed bool) time.Duration {
	if !lapsed {
		return 0
	}
	return lo + (hi-lo)/2
}

func (lt *lifetimeTest) tolerance(lo time.Duration) time.Duration {
	if lt.tol > 0 {
		return max(lt.tol, time.Millisecond) // finer is noise, and would stall between
	}
	return max(lo/20, minLifetimeTolerance)
}

// between returns evenly spaced waits strictly inside (lo, hi), at most one
// tolerance apart when lifetimeMaxPoints allows, and hi itself when withHi.
func (lt *lifetimeTest) between(lo, hi time.Duration, withHi bool) []time.Duration {
	tol := lt.tolerance(lo)
	n := int((hi-lo+tol-1)/tol) - 1
	n = min(max(n, 1), lifetimeMaxPoints)
	step := (hi - lo) / time.Duration(n+1)
	points := make([]time.Duration, 0, n+1)
	for i := 1; i <= n; i++ {
		points = append(points, lo+time.Duration(i)*step)
	}
	if withHi {
		points = append(points, hi)
	}
	return points
}

// round runs one step per wait in points (ascending), side by side. A lapse
// calls off every step with a longer wait: the mapping would lapse there too
// (those come back lifeUnknown).
func (lt *lifetimeTest) round(ctx context.Context, points []time.Duration) ([]lifeOutcome, error) {
	ctxs := make([]context.Context, len(points))
	cancels := make([]context.CancelFunc, len(points))
	for i := range points {
		ctxs[i], cancels[i] = context.WithCancel(ctx)
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	out := make([]lifeOutcome, len(points))
	errs := make([]error, len(points))
	var wg sync.WaitGroup
	for i, p := range points {
		wg.Go(func() {
			out[i], errs[i] = lt.step(ctxs[i], p)
			if out[i] == lifeLapsed {
				for j, q := range points {
					if q > p {
						cancels[j]()
					}
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil && ctxs[i].Err() == nil {
			return nil, err
		}
	}
	return out, nil
}

// step runs the test for one wait (see lifetimeTest).
func (lt *lifetimeTest) step(ctx context.Context, wait time.Duration) (lifeOutcome, error) {
	x, err := lt.fresh(":0")
	if err != nil {
		return lifeUnknown, err
	}
	defer x.Close()
	r, err := Binding(ctx, x, lt.server, 0, lt.rto, lt.retries)
	if errors.Is(err, ErrTimeout) || (err == nil && !r.Mapped.IsValid()) {
		return lifeUnknown, nil
	}
	if err != nil {
		return lifeUnknown, err
	}
	// The wait counts from the response: the request that made the
	// mapping went out a round trip earlier, so the mapping has been idle
	// a little longer than wait when Y's answer reaches it.
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		return lifeUnknown, ctx.Err()
	}
	y, err := lt.fresh(":0")
	if err != nil {
		return lifeUnknown, err
	}
	defer y.Close()
	return lt.check(ctx, x, y, r.Mapped.Port())
}

// check sends from y a Binding request with RESPONSE-PORT port, up to three
// times (at 0, RTO/2 and RTO, for loss), and reports whether x receives the
// answer within 2*RTO of the first.
func (lt *lifetimeTest) check(ctx context.Context, x, y net.PacketConn, port uint16) (lifeOutcome, error) {
	t := newRequest(0, port)
	sends := min(lt.retries, 3)
	begin := time.Now()
	end := begin.Add(2 * lt.rto)
	stop := context.AfterFunc(ctx, func() { _ = x.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		_ = x.SetReadDeadline(time.Time{})
	}()
	var m pstun.Message
	buf := make([]byte, 2048)
	for sent := 0; ; {
		next := begin.Add(time.Duration(sent) * lt.rto / 2)
		if sent < sends && !time.Now().Before(next) {
			if err := writeTo(y, t.req, lt.server); err != nil {
				return lifeUnknown, fmt.Errorf("stun: lifetime test: send to %v: %w", lt.server, err)
			}
			sent++
			continue
		}
		deadline := end
		if sent < sends {
			deadline = next
		}
		if err := x.SetReadDeadline(deadline); err != nil {
			return lifeUnknown, err
		}
		if err := ctx.Err(); err != nil {
			return lifeUnknown, err // cancelled before the deadline above was set
		}
		n, from, err := readFrom(x, buf)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return lifeUnknown, cerr
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return lifeUnknown, fmt.Errorf("stun: lifetime test: read: %w", err)
			}
			if sent >= sends && !time.Now().Before(end) {
				return lifeLapsed, nil
			}
			continue
		}
		if t.match(&m, buf[:n], from) && t.err == nil {
			return lifeAlive, nil
		}
	}
}
