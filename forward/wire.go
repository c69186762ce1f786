package forward

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/tun"
)

// A Wire is an impaired link between two TUN devices, with no NAT on it:
// each packet read from one device is written to the other, after its
// direction's impair.Impairer decides its fate. A lab's public host gets
// one instead of a veth when its link is impaired (the kernels here have
// no netem). Packets are copied as they are, never translated; the
// devices read and write one plain packet per call (no virtio header).
//
// One goroutine reads each device; delayed packets wait in a
// time-ordered impair.Queue per direction, written when due by one more
// goroutine on one timer: none per packet.
type Wire struct {
	devs [2]tun.Device // [0] the host's side, [1] the far side
	seed uint64

	mu   sync.Mutex
	spec PortImpair          // In: WireIn's, Out: WireOut's
	imp  [2]*impair.Impairer // by direction read from; nil: not impaired
	// queues are by direction (the device read from); nil until a spec
	// delays. Once made they stay, so packets delayed under one spec
	// still leave under the next.
	queues [2]*impair.Queue

	kick    chan struct{}
	done    chan struct{}
	stop    sync.Once
	wg      sync.WaitGroup
	passed  atomic.Uint64
	dropped [impair.NumReasons]atomic.Uint64
}

// Wire directions, named by the device a packet is read from.
const (
	WireOut = 0 // read from the host's side, written to the far side
	WireIn  = 1 // read from the far side, written to the host's side
)

// wireBuf is the size of a Wire's read buffers: the largest IP packet.
const wireBuf = 65535

// NewWire joins host (the host's side) and far, impaired by spec: its In
// what the host receives (WireIn), its Out what it sends (WireOut);
// seeded by seed with one stream per direction. Start runs it.
func NewWire(host, far tun.Device, spec PortImpair, seed uint64) *Wire {
	w := &Wire{devs: [2]tun.Device{host, far}, seed: seed, kick: make(chan struct{}, 1), done: make(chan struct{})}
	w.SetImpair(spec)
	return w
}

// Start starts the Wire's goroutines: a reader per device and the drain
// of delayed packets. Close stops them.
func (w *Wire) Start() {
	w.wg.Add(3)
	go w.pump(WireOut)
	go w.pump(WireIn)
	go w.drainLoop()
}

// Close stops the Wire and closes both devices (their addresses and
// routes go with them); packets still delayed are dropped. Safe to call
// more than once.
func (w *Wire) Close() error {
	var err error
	w.stop.Do(func() {
		close(w.done)
		err = errors.Join(w.devs[0].Close(), w.devs[1].Close())
		w.wg.Wait()
	})
	return err
}

// SetImpair replaces the impairment, In what the host receives and Out
// what it sends (the zero PortImpair clears it). The impairers start
// again from the seed; packets already delayed leave when due.
func (w *Wire) SetImpair(spec PortImpair) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spec = spec
	w.imp = [2]*impair.Impairer{}
	queue := false
	for d, sp := range [2]impair.Spec{WireOut: spec.Out, WireIn: spec.In} {
		if sp.IsZero() {
			continue
		}
		w.imp[d] = impair.New(sp, w.seed, uint64(d))
		queue = queue || w.imp[d].Delays() || sp.Duplicate > 0
	}
	if queue && w.queues[0] == nil {
		for d := range w.queues {
			w.queues[d] = impair.NewQueue(delaySlots, w.devs[1-d].MTU())
		}
	}
}

// Impair is the impairment in force, as SetImpair takes it.
func (w *Wire) Impair() PortImpair {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.spec
}

// Seed is what seeds the Wire's impairers.
func (w *Wire) Seed() uint64 { return w.seed }

// Passed counts the packets written on, either way, delayed or not.
func (w *Wire) Passed() uint64 { return w.passed.Load() }

// ImpairDrops counts the packets the impairment dropped, by reason.
func (w *Wire) ImpairDrops(why impair.Reason) uint64 {
	if why >= impair.NumReasons {
		return 0
	}
	return w.dropped[why].Load()
}

// Drops calls fn with every reason the Wire drops packets for and the
// count so far, zeros included, always in the same order (the drop
// interface of the Router's links).
func (w *Wire) Drops(fn func(reason string, n uint64)) {
	for why := impair.Loss; why < impair.NumReasons; why++ {
		fn(why.String(), w.ImpairDrops(why))
	}
}

// pump reads packets from devs[d] and writes those that go at once to
// the other device, until the device is closed or fails.
func (w *Wire) pump(d int) {
	defer w.wg.Done()
	from, to := w.devs[d], w.devs[1-d]
	bufs, sizes := [][]byte{make([]byte, wireBuf)}, []int{0}
	out := [][]byte{nil}
	for {
		n, err := from.Read(bufs, sizes, 0)
		if err != nil {
			// Closed (by Close, or its namespace went): a device that
			// fails otherwise would fail again at once.
			return
		}
		if n == 0 {
			continue
		}
		pkt := bufs[0][:sizes[0]]
		if !w.decide(d, pkt, monoNow()) {
			continue
		}
		out[0] = pkt
		if k, _ := to.Write(out, 0); k > 0 {
			w.passed.Add(1)
		}
	}
}

// decide applies direction d's impairment to pkt, read at now, and
// reports whether to write it at once: false when it is dropped (and
// counted) or queued for later. A duplicate is queued, due with the
// packet. It does not allocate.
func (w *Wire) decide(d int, pkt []byte, now int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	im := w.imp[d]
	if im == nil || len(pkt) == 0 || !im.Matches(pkt[0]>>4) {
		return true
	}
	dec := im.Decide(now, len(pkt))
	if dec.Drop != impair.Pass {
		w.dropped[dec.Drop].Add(1)
		return false
	}
	if dec.Corrupt {
		impair.FlipBit(pkt, dec.CorruptBit)
	}
	if dec.Duplicate {
		w.push(d, dec.Due, pkt)
	}
	if dec.Due <= now {
		return true
	}
	w.push(d, dec.Due, pkt)
	return false
}

// push queues a copy of pkt, read from direction d, due at due; a full
// queue drops it as a queue overflow. The drain is woken when it becomes
// the earliest. w.mu is held.
func (w *Wire) push(d int, due int64, pkt []byte) {
	q := w.queues[d]
	first, ok := q.Next()
	if !q.Push(due, pkt) {
		w.dropped[impair.QueueOverflow].Add(1)
		return
	}
	if !ok || due < first {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// next is the earliest due time of a delayed packet; ok is false when
// none waits.
func (w *Wire) next() (due int64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, q := range w.queues {
		if q == nil {
			continue
		}
		if t, k := q.Next(); k && (!ok || t < due) {
			due, ok = t, true
		}
	}
	return due, ok
}

// drainLoop writes delayed packets when they fall due: one timer, reset
// to the earliest due time, woken early by a kick.
func (w *Wire) drainLoop() {
	defer w.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	out := [][]byte{nil}
	for {
		if due, ok := w.next(); ok {
			t.Reset(time.Duration(max(due-monoNow(), 0)))
		} else {
			t.Stop()
		}
		select {
		case <-w.done:
			return
		case <-w.kick:
		case <-t.C:
		}
		w.drain(monoNow(), out)
	}
}

// drain writes the delayed packets due by now, each direction's in due
// order; out is a one-packet batch to write with.
func (w *Wire) drain(now int64, out [][]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for d, q := range w.queues {
		if q == nil {
			continue
		}
		for {
			slot, pkt, ok := q.Pop(now)
			if !ok {
				break
			}
			out[0] = pkt
			if k, _ := w.devs[1-d].Write(out, 0); k > 0 {
				w.passed.Add(1)
			}
			q.Free(slot)
		}
	}
}
