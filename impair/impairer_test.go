package impair

import (
	"math"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// fraction runs n packets of size bytes, 1 ms apart, and returns the fraction for which pick
// is true.
func fraction(im *Impairer, n int, pick func(Decision) bool) float64 {
	c := 0
	for i := range n {
		if pick(im.Decide(int64(i)*ms, 100)) {
			c++
		}
	}
	return float64(c) / float64(n)
}

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.4f, want %.4f +- %.4f", what, got, want, tol)
	} else {
		t.Logf("%s = %.4f (want %.4f +- %.4f)", what, got, want, tol)
	}
}

func TestRandomLoss(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		im := New(MustParse("loss=10%"), seed, 0)
		within(t, "loss fraction", fraction(im, 100000, func(d Decision) bool { return d.Drop == Loss }), 0.10, 0.005)
	}
}

func TestGilbertBursts(t *testing.T) {
	for _, spec := range []string{"loss=gilbert:p=1%,r=25%", "loss=gilbert:p=2%,r=10%"} {
		s := MustParse(spec)
		im := New(s, 7, 0)
		var lost, bursts, run int
		const n = 200000
		for i := range n {
			if im.Decide(int64(i)*ms, 100).Drop == Loss {
				lost++
				run++
			} else if run > 0 {
				bursts++
				run = 0
			}
		}
		meanBurst := float64(lost) / float64(bursts)
		within(t, spec+" mean burst", meanBurst, 1/s.Gilbert.R, 0.1/s.Gilbert.R)
		within(t, spec+" loss", float64(lost)/n, s.Gilbert.P/(s.Gilbert.P+s.Gilbert.R), 0.1*s.Gilbert.P/(s.Gilbert.P+s.Gilbert.R))
	}
}

func TestDuplicateReorderCorrupt(t *testing.T) {
	im := New(MustParse("delay=10ms duplicate=5% reorder=3% corrupt=1%"), 3, 0)
	var dup, reo, cor int
	const n = 100000
	for i := range n {
		d := im.Decide(int64(i)*ms, 100)
		if d.Duplicate {
			dup++
		}
		if d.Reordered {
			reo++
			if d.Due != int64(i)*ms {
				t.Fatalf("reordered packet due %d, want now %d", d.Due, int64(i)*ms)
			}
		} else if d.Due != int64(i)*ms+10*ms {
			t.Fatalf("packet %d due %d, want now+10ms", i, d.Due)
		}
		if d.Corrupt {
			cor++
		}
	}
	within(t, "duplicate", float64(dup)/n, 0.05, 0.003)
	within(t, "reorder", float64(reo)/n, 0.03, 0.003)
	within(t, "corrupt", float64(cor)/n, 0.01, 0.002)
}

func TestFlipBit(t *testing.T) {
	p := []byte{0, 0, 0}
	FlipBit(p, 9)
	FlipBit(p, 24) // wraps to bit 0
	if p[0] != 1 || p[1] != 2 || p[2] != 0 {
		t.Errorf("got %v", p)
	}
}

func TestJitterKeepsOrder(t *testing.T) {
	im := New(MustParse("delay=50ms jitter=10ms"), 9, 0)
	var last int64
	var lo, hi int64 = math.MaxInt64, 0
	for i := range 100000 {
		now := int64(i) * 20 * ms // far enough apart that order never binds
		d := im.Decide(now, 100)
		if d.Due < last {
			t.Fatalf("packet %d due %d before the previous %d", i, d.Due, last)
		}
		last = d.Due
		lo, hi = min(lo, d.Due-now), max(hi, d.Due-now)
	}
	if lo < 40*ms || hi > 60*ms || lo > 41*ms || hi < 59*ms {
		t.Errorf("delays span [%v, %v], want [40ms, 60ms]", time.Duration(lo), time.Duration(hi))
	}
	// Back to back, jitter may not reorder: due times never decrease.
	last = 0
	for i := range 1000 {
		d := im.Decide(int64(i)*1000, 100)
		if d.Due < last {
			t.Fatalf("back to back: packet %d overtook", i)
		}
		last = d.Due
	}
}

// TestRate offers twice the rate for 10 s and counts the bytes released per second: the rate,
// the queue bound on time and the tail drops.
func TestRate(t *testing.T) {
	im := New(MustParse("rate=10mbit queue=50ms"), 1, 0)
	const size = 1250 // 10 kbit per packet: 1000 packets/s at the rate
	released := map[int64]int{}
	var drops, sent int
	for i := range 20000 { // 2000 packets/s for 10 s
		now := int64(i) * int64(time.Second) / 2000
		d := im.Decide(now, size)
		if d.Drop == QueueOverflow {
			drops++
			continue
		}
		sent++
		if d.Due-now > 51*ms { // the queue bound plus one packet time (1 ms)
			t.Fatalf("packet %d waits %v, above the 50ms queue", i, time.Duration(d.Due-now))
		}
		released[d.Due/int64(time.Second)] += size
	}
	for s := int64(1); s < 10; s++ {
		within(t, "Mbit/s in second", float64(released[s])*8/1e6, 10, 0.1)
	}
	within(t, "drop fraction", float64(drops)/20000, 0.5, 0.01)
}

func TestRateQueuePackets(t *testing.T) {
	im := New(MustParse("rate=1mbit queue=10p"), 1, 0)
	// A burst of 30 packets at once: 10 are queued, the rest overflow.
	var ok int
	for range 30 {
		if im.Decide(0, 1000).Drop == Pass {
			ok++
		}
	}
	if ok != 10 {
		t.Errorf("burst admitted %d, want 10", ok)
	}
	// After the queue has drained (10 x 8 ms), 10 more fit.
	ok = 0
	for range 30 {
		if im.Decide(100*ms, 1000).Drop == Pass {
			ok++
		}
	}
	if ok != 10 {
		t.Errorf("second burst admitted %d, want 10", ok)
	}
}

// TestDeterminism: the same seed and sequence give the same decisions; another seed or another
// stream (direction) give others; and loss decisions do not depend on the other parameters.
func TestDeterminism(t *testing.T) {
	run := func(spec string, seed, stream uint64) []Decision {
		im := New(MustParse(spec), seed, stream)
		out := make([]Decision, 5000)
		for i := range out {
			out[i] = im.Decide(int64(i)*ms, 100+i%1000)
		}
		return out
	}
	full := "delay=20ms jitter=5ms loss=10% rate=10mbit duplicate=5% reorder=2% corrupt=1%"
	a, b := run(full, 42, 1), run(full, 42, 1)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("decision %d differs between runs: %+v vs %+v", i, a[i], b[i])
		}
	}
	lossOnly := run("loss=10%", 42, 1)
	for i := range a {
		if (a[i].Drop == Loss) != (lossOnly[i].Drop == Loss) {
			t.Fatalf("packet %d: loss differs when other parameters are added", i)
		}
	}
	for _, other := range [][]Decision{run("loss=10%", 43, 1), run("loss=10%", 42, 2)} {
		same := true
		for i := range other {
			if (other[i].Drop == Loss) != (lossOnly[i].Drop == Loss) {
				same = false
			}
		}
		if same {
			t.Error("another seed or stream lost the same packets")
		}
	}
}

func TestDecideAllocs(t *testing.T) {
	im := New(MustParse("delay=20ms jitter=5ms loss=gilbert:p=1%,r=20% rate=10mbit queue=100p duplicate=5% corrupt=1%"), 1, 0)
	var now int64
	if n := testing.AllocsPerRun(1000, func() { now += ms; sinkDecision = im.Decide(now, 1000) }); n != 0 {
		t.Errorf("Decide allocates %v per packet", n)
	}
}

var sinkDecision Decision
