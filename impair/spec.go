// Package impair describes and applies seeded network impairment: delay, jitter, loss (random
// or Gilbert-Elliott bursts), a rate limit with a bounded queue, duplication, reordering and
// corruption. A Spec is parsed from one text syntax used everywhere; an Impairer makes the
// per-packet decisions for one direction of one link from a seed, so the same seed and the same
// packet sequence give the same decisions; a Queue holds delayed packets in time order.
package impair

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Syntax is the spec grammar, for help texts.
const Syntax = `KEY=VALUE pairs separated by spaces, e.g. "delay=50ms jitter=10ms loss=1% rate=10mbit queue=50ms":
  delay=DUR        fixed one-way delay (Go duration: 50ms, 1.5s)
  jitter=DUR       delay varies uniformly within +-DUR; order is kept unless reorder= is set
  loss=P%          random loss, each packet independently
  loss=gilbert:p=P%,r=R%
                   Gilbert-Elliott burst loss: p = chance to enter the lossy state per packet,
                   r = chance to leave it; mean burst length is 1/r, mean loss p/(p+r)
  rate=N(bit|kbit|mbit|gbit)
                   rate limit; packets wait in a tail-drop queue
  queue=DUR|Np     queue bound for rate=, as time (50ms) or packets (100p); default 50ms
  duplicate=P%     send P% of packets twice
  reorder=P%       send P% of packets at once, ahead of the delayed ones (needs delay=)
  corrupt=P%       flip one random bit in P% of packets
  family=ipv4|ipv6 impair only packets of that IP version; the other passes untouched
                   (a slow IPv6 path beside a good IPv4 one: "family=ipv6 delay=300ms")`

// DefaultQueue is the queue bound for rate= when queue= is not given.
const DefaultQueue = 50 * time.Millisecond

// Spec is a parsed impairment. Probabilities are fractions in [0, 1]. The zero Spec impairs
// nothing.
type Spec struct {
	Delay  time.Duration
	Jitter time.Duration
	// Loss is the random loss probability; unused when Gilbert is set.
	Loss float64
	// Gilbert is Gilbert-Elliott burst loss: the lossy state drops every packet.
	Gilbert *Gilbert
	// Rate is the rate limit in bits per second; 0 means none.
	Rate uint64
	// QueueTime and QueuePackets bound the rate queue; at most one is set.
	QueueTime    time.Duration
	QueuePackets int
	Duplicate    float64
	Reorder      float64
	Corrupt      float64
	// Family, if set, is the only IP version impaired (4 or 6); packets
	// of the other pass as if nothing were set. 0: both.
	Family uint8
}

// Matches reports whether s impairs packets of IP version v (4 or 6).
func (s Spec) Matches(v uint8) bool { return s.Family == 0 || s.Family == v }

// Gilbert holds the two transition probabilities of the Gilbert-Elliott model.
type Gilbert struct {
	P float64 // good -> bad, per packet
	R float64 // bad -> good, per packet
}

// IsZero reports whether s impairs nothing (family= alone impairs nothing).
func (s Spec) IsZero() bool {
	return s.Delay == 0 && s.Jitter == 0 && s.Loss == 0 && s.Gilbert == nil && s.Rate == 0 &&
		s.Duplicate == 0 && s.Reorder == 0 && s.Corrupt == 0
}

// Parse parses a spec in the Syntax. The empty string is the zero Spec.
func Parse(text string) (Spec, error) {
	var s Spec
	seen := map[string]bool{}
	for _, f := range strings.Fields(text) {
		key, val, ok := strings.Cut(f, "=")
		if !ok || val == "" {
			return Spec{}, fmt.Errorf("impair: %q: expected KEY=VALUE", f)
		}
		if seen[key] {
			return Spec{}, fmt.Errorf("impair: %s given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "delay":
			s.Delay, err = parseDuration(key, val)
		case "jitter":
			s.Jitter, err = parseDuration(key, val)
		case "loss":
			if rest, ok := strings.CutPrefix(val, "gilbert:"); ok {
				s.Gilbert, err = parseGilbert(rest)
			} else {
				s.Loss, err = parsePercent(key, val)
			}
		case "rate":
			s.Rate, err = parseRate(val)
		case "queue":
			if n, ok := strings.CutSuffix(val, "p"); ok {
				s.QueuePackets, err = strconv.Atoi(n)
				if err != nil || s.QueuePackets < 1 {
					err = fmt.Errorf("impair: queue=%s: expected a packet count like 100p or a duration like 50ms", val)
				}
			} else {
				s.QueueTime, err = parseDuration(key, val)
				if err == nil && s.QueueTime == 0 {
					err = fmt.Errorf("impair: queue=%s: expected a duration above 0", val)
				}
			}
		case "duplicate":
			s.Duplicate, err = parsePercent(key, val)
		case "reorder":
			s.Reorder, err = parsePercent(key, val)
		case "corrupt":
			s.Corrupt, err = parsePercent(key, val)
		case "family":
			switch val {
			case "ipv4":
				s.Family = 4
			case "ipv6":
				s.Family = 6
			default:
				err = fmt.Errorf("impair: family=%s: expected ipv4 or ipv6", val)
			}
		default:
			return Spec{}, fmt.Errorf("impair: unknown key %q (expected delay, jitter, loss, rate, queue, duplicate, reorder, corrupt or family)", key)
		}
		if err != nil {
			return Spec{}, err
		}
	}
	if seen["queue"] && s.Rate == 0 {
		return Spec{}, fmt.Errorf("impair: queue= bounds the rate queue: it needs rate=")
	}
	if s.Rate > 0 && s.QueueTime == 0 && s.QueuePackets == 0 {
		s.QueueTime = DefaultQueue
	}
	if s.Reorder > 0 && s.Delay == 0 {
		return Spec{}, fmt.Errorf("impair: reorder= sends packets ahead of delayed ones: it needs delay=")
	}
	if s.Jitter > s.Delay && s.Jitter > 0 {
		// A negative delay would be clamped to 0 and skew the mean; say so rather than guess.
		return Spec{}, fmt.Errorf("impair: jitter=%v exceeds delay=%v: expected jitter <= delay", s.Jitter, s.Delay)
	}
	return s, nil
}

// Overlay is spec base with the keys spec over gives replaced or added:
// a one-way spec given with a both-ways one keeps its own settings.
func Overlay(base, over string) string {
	given := map[string]bool{}
	for _, f := range strings.Fields(over) {
		k, _, _ := strings.Cut(f, "=")
		given[k] = true
	}
	var fs []string
	for _, f := range strings.Fields(base) {
		if k, _, _ := strings.Cut(f, "="); !given[k] {
			fs = append(fs, f)
		}
	}
	return strings.Join(append(fs, strings.Fields(over)...), " ")
}

// MustParse is Parse for specs known to be valid, as in tests; it panics on an error.
func MustParse(text string) Spec {
	s, err := Parse(text)
	if err != nil {
		panic(err)
	}
	return s
}

// String formats s in the Syntax; Parse(s.String()) equals s.
func (s Spec) String() string {
	var b []string
	if s.Family != 0 {
		b = append(b, "family=ipv"+strconv.Itoa(int(s.Family)))
	}
	if s.Delay != 0 {
		b = append(b, "delay="+s.Delay.String())
	}
	if s.Jitter != 0 {
		b = append(b, "jitter="+s.Jitter.String())
	}
	if s.Gilbert != nil {
		b = append(b, "loss=gilbert:p="+percent(s.Gilbert.P)+",r="+percent(s.Gilbert.R))
	} else if s.Loss != 0 {
		b = append(b, "loss="+percent(s.Loss))
	}
	if s.Rate != 0 {
		b = append(b, "rate="+formatRate(s.Rate))
		if s.QueuePackets != 0 {
			b = append(b, "queue="+strconv.Itoa(s.QueuePackets)+"p")
		} else {
			b = append(b, "queue="+s.QueueTime.String())
		}
	}
	if s.Duplicate != 0 {
		b = append(b, "duplicate="+percent(s.Duplicate))
	}
	if s.Reorder != 0 {
		b = append(b, "reorder="+percent(s.Reorder))
	}
	if s.Corrupt != 0 {
		b = append(b, "corrupt="+percent(s.Corrupt))
	}
	return strings.Join(b, " ")
}

func parseDuration(key, val string) (time.Duration, error) {
	d, err := time.ParseDuration(val)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("impair: %s=%s: expected a duration like 50ms or 1.5s", key, val)
	}
	return d, nil
}

func parsePercent(key, val string) (float64, error) {
	n, ok := strings.CutSuffix(val, "%")
	f, err := strconv.ParseFloat(n, 64)
	if !ok || err != nil || math.IsNaN(f) || f < 0 || f > 100 {
		return 0, fmt.Errorf("impair: %s=%s: expected a percentage from 0%% to 100%%, like 1%% or 0.5%%", key, val)
	}
	return f / 100, nil
}

func parseGilbert(val string) (*Gilbert, error) {
	var g Gilbert
	var haveP, haveR bool
	for _, kv := range strings.Split(val, ",") {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "p":
			g.P, err = parsePercent("loss=gilbert:p", v)
			haveP = true
		case "r":
			g.R, err = parsePercent("loss=gilbert:r", v)
			haveR = true
		default:
			return nil, fmt.Errorf("impair: loss=gilbert:%s: expected p=P%%,r=R%% (enter and leave the lossy state)", val)
		}
		if err != nil {
			return nil, err
		}
	}
	if !haveP || !haveR {
		return nil, fmt.Errorf("impair: loss=gilbert:%s: expected both p=P%% and r=R%%", val)
	}
	if g.R == 0 {
		return nil, fmt.Errorf("impair: loss=gilbert:%s: r=0%% never leaves the lossy state: expected r above 0%%", val)
	}
	return &g, nil
}

var rateUnits = []struct {
	suffix string
	mult   uint64
}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}

func parseRate(val string) (uint64, error) {
	for _, u := range rateUnits {
		if n, ok := strings.CutSuffix(val, u.suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			if err == nil && f > 0 && f*float64(u.mult) >= 1 && f*float64(u.mult) < 1e15 {
				return uint64(f * float64(u.mult)), nil
			}
			break
		}
	}
	return 0, fmt.Errorf("impair: rate=%s: expected a rate above 0 like 10mbit, 512kbit or 1gbit (bits per second)", val)
}

func formatRate(r uint64) string {
	for _, u := range rateUnits {
		if r >= u.mult && r%u.mult == 0 {
			return strconv.FormatUint(r/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(r, 10) + "bit"
}

func percent(f float64) string {
	return strconv.FormatFloat(f*100, 'g', 12, 64) + "%"
}
