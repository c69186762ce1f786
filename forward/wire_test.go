//go:build linux

package forward

import (
	"testing"
	"time"

	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/tun/tuntest"
)

// both is spec ("" for none) both ways.
func both(spec string) PortImpair {
	var sp impair.Spec
	if spec != "" {
		sp = impair.MustParse(spec)
	}
	return PortImpair{In: sp, Out: sp}
}

// newWire starts a Wire between two channel devices.
func newWire(t *testing.T, spec string, seed uint64) (w *Wire, host, far *tuntest.Channel) {
	t.Helper()
	host, far = tuntest.NewChannel("eth0"), tuntest.NewChannel("pub0")
	w = NewWire(host, far, both(spec), seed)
	w.Start()
	t.Cleanup(func() { w.Close() })
	return w, host, far
}

// An unimpaired Wire copies packets each way, unchanged.
func TestWirePasses(t *testing.T) {
	w, host, far := newWire(t, "", 1)
	host.In <- seqPkt(1)
	if got := seqOf(t, recv(t, far.Out, "far side")); got != 1 {
		t.Errorf("out: got %d, want 1", got)
	}
	far.In <- seqPkt(2)
	if got := seqOf(t, recv(t, host.Out, "host side")); got != 2 {
		t.Errorf("in: got %d, want 2", got)
	}
	if w.Passed() != 2 {
		t.Errorf("passed %d, want 2", w.Passed())
	}
}

// Delay holds each packet back by its setting, in order, from the
// queue the drain writes; off sends the next packets at once.
func TestWireDelay(t *testing.T) {
	w, host, far := newWire(t, "delay=40ms", 1)
	start := time.Now()
	for i := range 5 {
		host.In <- seqPkt(i)
	}
	for i := range 5 {
		if got := seqOf(t, recv(t, far.Out, "far side")); got != i {
			t.Errorf("packet %d arrived as %d", i, got)
		}
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Errorf("delayed packets came after %v, want >= 40ms", el)
	}
	far.In <- seqPkt(9)
	start = time.Now()
	recv(t, host.Out, "host side")
	if el := time.Since(start); el < 35*time.Millisecond {
		t.Errorf("the other way came after %v, want >= 40ms", el)
	}
	w.SetImpair(PortImpair{})
	start = time.Now()
	host.In <- seqPkt(10)
	recv(t, far.Out, "far side")
	if el := time.Since(start); el > time.Second {
		t.Errorf("with impairment off a packet took %v", el)
	}
}

// Each way takes its own spec: Out delays what the host sends, In (none
// here) leaves what it receives alone.
func TestWireOneWay(t *testing.T) {
	w, host, far := newWire(t, "", 1)
	w.SetImpair(PortImpair{Out: impair.MustParse("delay=200ms")})
	start := time.Now()
	host.In <- seqPkt(1)
	recv(t, far.Out, "far side")
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("out came after %v, want >= 200ms", el)
	}
	start = time.Now()
	far.In <- seqPkt(2)
	recv(t, host.Out, "host side")
	if el := time.Since(start); el > 150*time.Millisecond {
		t.Errorf("in came after %v, want it undelayed", el)
	}
	if got := w.Impair(); !got.In.IsZero() || got.Out.String() != "delay=200ms" {
		t.Errorf("Impair() = %+v", got)
	}
}

// wireLoss sends n packets out through a Wire losing 50% and returns the
// sequence numbers that arrived.
func wireLoss(t *testing.T, seed uint64, n int) (map[int]bool, *Wire) {
	w, host, far := newWire(t, "loss=50%", seed)
	got := map[int]bool{}
	for i := range n {
		host.In <- seqPkt(i)
	}
	deadline := time.After(5 * time.Second)
	for w.Passed()+w.ImpairDrops(impair.Loss) < uint64(n) || len(far.Out) > 0 {
		select {
		case p := <-far.Out:
			got[seqOf(t, p)] = true
		case <-deadline:
			t.Fatalf("%d passed, %d lost of %d", w.Passed(), w.ImpairDrops(impair.Loss), n)
		case <-time.After(time.Millisecond):
		}
	}
	return got, w
}

// Loss drops its share, counted as impair-loss, and the same seed loses
// the same packets.
func TestWireLossSeeded(t *testing.T) {
	const n = 400
	a, w := wireLoss(t, 7, n)
	if lost := n - len(a); lost < n*35/100 || lost > n*65/100 {
		t.Errorf("lost %d of %d, want about half", lost, n)
	}
	if got := w.ImpairDrops(impair.Loss); got != uint64(n-len(a)) {
		t.Errorf("impair-loss counts %d, %d lost", got, n-len(a))
	}
	reasons := map[string]uint64{}
	w.Drops(func(r string, k uint64) { reasons[r] = k })
	if reasons["impair-loss"] != uint64(n-len(a)) || reasons["queue-overflow"] != 0 {
		t.Errorf("Drops: %v", reasons)
	}
	b, _ := wireLoss(t, 7, n)
	for i := range n {
		if a[i] != b[i] {
			t.Fatalf("seed 7 run twice: packet %d arrived %t then %t", i, a[i], b[i])
		}
	}
}

// A full delay queue drops as queue-overflow.
func TestWireQueueOverflow(t *testing.T) {
	w := NewWire(tuntest.NewChannel("eth0"), tuntest.NewChannel("pub0"), both("delay=10s"), 1)
	defer w.Close()
	pkt := seqPkt(0)
	for range delaySlots + 3 {
		w.decide(WireOut, pkt, 0)
	}
	if got := w.ImpairDrops(impair.QueueOverflow); got != 3 {
		t.Errorf("queue-overflow %d, want 3", got)
	}
}

// Deciding, queueing and draining a packet allocate nothing.
func TestWireAllocs(t *testing.T) {
	w := NewWire(tuntest.NewChannel("eth0"), discard{}, both("delay=1ms loss=10% duplicate=5%"), 1)
	pkt := seqPkt(0)
	out := [][]byte{nil}
	now := int64(0)
	allocs := testing.AllocsPerRun(200, func() {
		now += int64(time.Millisecond)
		w.decide(WireOut, pkt, now)
		w.drain(now+int64(2*time.Millisecond), out)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet", allocs)
	}
}

// discard is a device that takes every packet and keeps none.
type discard struct{ *tuntest.Channel }

func (discard) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (discard) MTU() int                                     { return 1500 }
func (discard) Close() error                                 { return nil }
func (discard) Name() string                                 { return "discard" }
