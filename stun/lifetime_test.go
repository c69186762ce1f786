package stun

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gonat/gonat/table"
)

// The lifetime test finds the test NAT's mapping timeout, within the
// tolerance and in two to three times the timeout, on a cone NAT and on a
// symmetric one.
func TestProbeLifetime(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		mapping   table.Behavior
		timeout   time.Duration
		tolerance time.Duration // 0: the default, 200 ms at these lengths
	}{
		{table.EndpointIndependent, 1300 * time.Millisecond, 0},
		{table.AddressAndPortDependent, 700 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%s %v", tc.mapping, tc.timeout), func(t *testing.T) {
			nat := newFakeNAT(t, tc.mapping, table.AddressAndPortDependent)
			nat.timeout = tc.timeout
			start := time.Now()
			res, err := Probe(context.Background(), ProbeConfig{Server: s.Addrs()[0], ListenPacket: nat.listen,
				RTO: testRTO, Retries: testRetries, PortSamples: -1,
				Lifetime: true, MaxLifetime: 10 * time.Second, LifetimeTolerance: tc.tolerance})
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			tol := tc.tolerance
			if tol == 0 {
				tol = minLifetimeTolerance
			}
			if res.LifetimeBounded || res.Lifetime < tc.timeout-tol || res.Lifetime > tc.timeout+tol {
				t.Errorf("lifetime %v (bounded %v), want %v ± %v", res.Lifetime, res.LifetimeBounded, tc.timeout, tol)
			}
			if limit := 4 * tc.timeout; took > limit {
				t.Errorf("the probe took %v, more than %v", took, limit)
			}
			t.Logf("lifetime %v in %v", res.Lifetime, took)
			// The lifetime test ran beside the others without disturbing them.
			if !res.Mapping.Is(tc.mapping) || !res.Filtering.Is(table.AddressAndPortDependent) {
				t.Errorf("mapping %q filtering %q", res.Mapping, res.Filtering)
			}
		})
	}
}

// A mapping that outlives MaxLifetime is reported as bounded by it: on
// loopback (no NAT at all) and behind a NAT with a longer timeout.
func TestProbeLifetimeBounded(t *testing.T) {
	s := startServer(t)
	const maxLife = 400 * time.Millisecond
	nat := newFakeNAT(t, table.EndpointIndependent, table.AddressAndPortDependent)
	nat.timeout = 3 * time.Second
	for name, listen := range map[string]func(string, string) (net.PacketConn, error){
		"loopback": nil,
		"fake NAT": nat.listen,
	} {
		t.Run(name, func(t *testing.T) {
			res, err := Probe(context.Background(), ProbeConfig{Server: s.Addrs()[0], ListenPacket: listen,
				RTO: testRTO, Retries: testRetries, Lifetime: true, MaxLifetime: maxLife})
			if err != nil {
				t.Fatal(err)
			}
			if !res.LifetimeBounded || res.Lifetime != maxLife {
				t.Errorf("lifetime %v bounded %v, want %v bounded", res.Lifetime, res.LifetimeBounded, maxLife)
			}
			if name == "loopback" && !res.PortAssignment.Is(table.Preserve) {
				t.Errorf("PortAssignment %q on an untranslated path, want preserve", res.PortAssignment)
			}
		})
	}
}

// The search itself, on a model NAT and a virtual clock: how close it gets
// and what it costs, for lifetimes from a second to beyond MaxLifetime. A
// round costs its first lapsing wait plus the 2*RTO window, or its longest
// wait when nothing lapses.
func TestLifetimeSearch(t *testing.T) {
	const window = time.Second // 2*RTO at the default RTO
	for _, tc := range []struct {
		life, max time.Duration
	}{
		{300 * time.Millisecond, DefaultMaxLifetime},
		{1300 * time.Millisecond, DefaultMaxLifetime},
		{3 * time.Second, DefaultMaxLifetime},
		{6 * time.Second, DefaultMaxLifetime},
		{30 * time.Second, DefaultMaxLifetime},
		{100 * time.Second, DefaultMaxLifetime},
		{5 * time.Minute, DefaultMaxLifetime},
		{5 * time.Minute, 10 * time.Minute},
		{2 * time.Hour, DefaultMaxLifetime},
	} {
		var clock time.Duration
		rounds := 0
		lt := &lifetimeTest{max: tc.max, rounds: func(_ context.Context, points []time.Duration) ([]lifeOutcome, error) {
			rounds++
			out := make([]lifeOutcome, len(points))
			cost := time.Duration(0)
			for i, p := range points {
				if p >= tc.life {
					out[i] = lifeLapsed
					cost = p + window
					break // the longer waits are called off
				}
				out[i] = lifeAlive
				cost = p
			}
			clock += cost
			return out, nil
		}}
		got, bounded, err := lt.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("lifetime %v, max %v: measured %v bounded %v, %d rounds, %v (%.1fx)",
			tc.life, tc.max, got, bounded, rounds, clock, float64(clock)/float64(min(tc.life, tc.max)))
		if tc.life > tc.max {
			if !bounded || got != tc.max || clock != tc.max {
				t.Errorf("life %v > max %v: got %v bounded %v in %v", tc.life, tc.max, got, bounded, clock)
			}
			continue
		}
		if bounded || got-tc.life > lt.tolerance(got)/2 || tc.life-got > lt.tolerance(got)/2 {
			t.Errorf("life %v: got %v bounded %v, want within %v", tc.life, got, bounded, lt.tolerance(got)/2)
		}
		// Below the first step of the doubling round (1 s) the windows
		// dominate.
		if limit := 3*max(tc.life, lifetimeFirstStep) + 2*window; clock > limit {
			t.Errorf("life %v: the search took %v, more than %v", tc.life, clock, limit)
		}
	}
}

// A lapse seen below a survival is a lost answer: the search keeps the
// survival and looks above it.
func TestLifetimeSearchIgnoresLostAnswer(t *testing.T) {
	life := 5 * time.Second
	first := true
	lt := &lifetimeTest{max: time.Minute, rounds: func(_ context.Context, points []time.Duration) ([]lifeOutcome, error) {
		out := make([]lifeOutcome, len(points))
		for i, p := range points {
			switch {
			case first && p == 2*time.Second:
				out[i] = lifeLapsed // lost
			case p < life:
				out[i] = lifeAlive
			default:
				out[i] = lifeLapsed
			}
		}
		first = false
		return out, nil
	}}
	got, bounded, err := lt.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if bounded || got < life-minLifetimeTolerance || got > life+minLifetimeTolerance {
		t.Errorf("got %v bounded %v, want %v", got, bounded, life)
	}
}
