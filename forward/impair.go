package forward

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"golang.org/x/sys/unix"
)

// PortImpair is the impairment of the link beyond one port, each way.
// Both apply to the packet as translated: a packet the In link loses has
// still been through the engine (it counts as forwarded there and in the
// Router's ImpairDrops). Packets the NAT makes itself (ICMP errors, held
// fragments it releases) are not impaired.
type PortImpair struct {
	In  impair.Spec // packets read from the port: entering the NAT
	Out impair.Spec // packets written to the port: leaving the NAT
}

// delaySlots is how many delayed packets a port's queue holds, each in a
// slot of Headroom plus the largest MTU; more are dropped and counted as
// queue-overflow. 4096 holds 50 ms of 80k packets/s.
const delaySlots = 4096

// drainBatch is how many due packets are written to a device at once.
const drainBatch = 64

// impairState is a Router's impairers and delay queues: nil when
// nothing is impaired, which the packet path checks once per batch.
// SetImpair replaces it whole (Router.imp is an atomic pointer), so a
// batch sees one impairment throughout. One mutex for all, the Router's:
// impairment is an emulation feature, and the readers of one Router take
// it once per impaired packet and once per drain.
type impairState struct {
	mu      *sync.Mutex        // the Router's impLock: the queues outlive a state
	in, out []*impair.Impairer // by port; nil: that way is not impaired
	// queues are by port written to; nil while nothing has delayed.
	// Once made they stay for the Router's life, in every later state,
	// so packets delayed under one impairment still leave under the next
	// (or under none).
	queues []*impair.Queue
	// kick wakes the Router's drain goroutine (per-device and busy-poll
	// readers) when a packet becomes the earliest due; nil with per-CPU
	// readers, whose timerfd is armed before each wait.
	kick chan struct{}
}

// monoNow is the impairment clock: CLOCK_MONOTONIC in nanoseconds, the
// clock the per-CPU readers' timerfds count in.
func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// ImpairDrops counts packets dropped by the impairment of the ports, by
// reason (impair.Loss, impair.QueueOverflow): counted here beside the
// engine's verdicts, which they come after.
func (r *Router) ImpairDrops(why impair.Reason) uint64 {
	if why >= impair.NumReasons {
		return 0
	}
	return r.impairDrops[why].Load()
}

// setupImpair makes r.imp from r.Impair, seeded by r.ImpairSeed with a
// stream per port and way.
func (r *Router) setupImpair() {
	r.impMu.Lock()
	defer r.impMu.Unlock()
	if r.impNow == nil {
		r.impNow = make([]PortImpair, len(r.Ports))
		copy(r.impNow, r.Impair)
	}
	r.storeImpair()
}

// SetImpair replaces the impairment of the link beyond port (0 the first
// port) while the Router runs, or before: the zero PortImpair clears it.
// The port's impairers start again from the seed; packets already delayed
// leave when due.
func (r *Router) SetImpair(port int, pi PortImpair) error {
	if port < 0 || port >= len(r.Ports) {
		return fmt.Errorf("router: no port %d (it has %d)", port, len(r.Ports))
	}
	r.impMu.Lock()
	defer r.impMu.Unlock()
	if r.impNow == nil {
		r.impNow = make([]PortImpair, len(r.Ports))
		copy(r.impNow, r.Impair)
	}
	r.impNow[port] = pi
	r.storeImpair()
	return nil
}

// ImpairOf is the impairment of the link beyond port now.
func (r *Router) ImpairOf(port int) PortImpair {
	r.impMu.Lock()
	defer r.impMu.Unlock()
	if r.impNow == nil {
		if port < len(r.Impair) {
			return r.Impair[port]
		}
		return PortImpair{}
	}
	if port < 0 || port >= len(r.impNow) {
		return PortImpair{}
	}
	return r.impNow[port]
}

// storeImpair makes a state from r.impNow and puts it in force; r.impMu
// is held.
func (r *Router) storeImpair() {
	st := &impairState{mu: &r.impLock, in: make([]*impair.Impairer, len(r.Ports)), out: make([]*impair.Impairer, len(r.Ports)), kick: r.impKick}
	some, delays := false, false
	for i, pi := range r.impNow {
		for k, s := range []impair.Spec{pi.In, pi.Out} {
			if s.IsZero() {
				continue
			}
			im := impair.New(s, r.ImpairSeed, uint64(2*i+k))
			if k == 0 {
				st.in[i] = im
			} else {
				st.out[i] = im
			}
			some = true
			delays = delays || im.Delays() || s.Duplicate > 0
		}
	}
	if delays && r.impQueues == nil {
		size := Headroom + r.maxMTU()
		q := make([]*impair.Queue, len(r.Ports))
		for i := range q {
			q[i] = impair.NewQueue(delaySlots, size)
		}
		r.impQueues = q
	}
	st.queues = r.impQueues
	if !some && st.queues == nil {
		r.imp.Store(nil)
		return
	}
	r.imp.Store(st)
}

// applies reports whether a packet of IP version v from port in to port
// to is impaired: a link impaired for the other family (family=) leaves
// it alone, a super-packet whole.
func (st *impairState) applies(in, to nat.Port, v uint8) bool {
	a, b := st.in[in], st.out[to]
	return (a != nil && a.Matches(v)) || (b != nil && b.Matches(v))
}

// decide is the fate of a packet of IP version v from port in to port
// to: the In link's decision, then the Out link's for the packet as it
// leaves the first; a link whose impairment is for the other family
// (family=) leaves it alone. st.mu is held.
func (st *impairState) decide(in, to nat.Port, now int64, v uint8, size int) impair.Decision {
	a, b := st.in[in], st.out[to]
	if a != nil && !a.Matches(v) {
		a = nil
	}
	if b != nil && !b.Matches(v) {
		b = nil
	}
	switch {
	case a == nil && b == nil:
		return impair.Decision{Due: now}
	case b == nil:
		return a.Decide(now, size)
	case a == nil:
		return b.Decide(now, size)
	}
	d := a.Decide(now, size)
	if d.Drop != impair.Pass {
		return d
	}
	e := b.Decide(max(now, d.Due), size)
	e.Duplicate = e.Duplicate || d.Duplicate
	e.Reordered = e.Reordered || d.Reordered
	if !e.Corrupt {
		e.Corrupt, e.CorruptBit = d.Corrupt, d.CorruptBit
	}
	return e
}

// impair decides buffer b's packet (at Headroom), from port in to port
// to, and reports whether to send it at once: false when it is dropped
// (and counted) or queued for later. A duplicate is queued, due with the
// packet: the batch's drain sends it after the batch.
func (p *pumper) impair(st *impairState, in, to nat.Port, b []byte, now int64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	d := st.decide(in, to, now, b[Headroom]>>4, len(b)-Headroom)
	if d.Drop != impair.Pass {
		p.r.impairDrops[d.Drop].Add(1)
		return false
	}
	if d.Corrupt {
		impair.FlipBit(b[Headroom:], d.CorruptBit)
	}
	if d.Duplicate {
		st.push(p.r, to, d.Due, b)
	}
	if d.Due <= now {
		return true
	}
	st.push(p.r, to, d.Due, b)
	return false
}

// push queues a copy of b for port to, due at due; a full queue drops it
// as a queue overflow. st.mu is held.
func (st *impairState) push(r *Router, to nat.Port, due int64, b []byte) {
	q := st.queues[to]
	first, ok := q.Next()
	if !q.Push(due, b) {
		r.impairDrops[impair.QueueOverflow].Add(1)
		return
	}
	if st.kick != nil && (!ok || due < first) {
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
}

// next is the earliest due time of a delayed packet; ok is false when
// none waits.
func (st *impairState) next() (due int64, ok bool) {
	if st == nil || st.queues == nil {
		return 0, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, q := range st.queues {
		if d, k := q.Next(); k && (!ok || d < due) {
			due, ok = d, true
		}
	}
	return due, ok
}

// drain writes the delayed packets due by now to their ports, in due
// order, past the Tap; not coalesced (a slot has no room to grow).
func (p *pumper) drain(st *impairState, now int64) {
	if st == nil || st.queues == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for to, q := range st.queues {
		for {
			slot, b, ok := q.Pop(now)
			if ok {
				p.due = append(p.due, b)
				p.dueSlots = append(p.dueSlots, slot)
			}
			if len(p.due) > 0 && (!ok || len(p.due) == drainBatch) {
				if p.r.Tap != nil {
					for _, b := range p.due {
						p.tap(nat.Port(to), ToDevice, b)
					}
				}
				if !p.r.linkDropped(nat.Port(to), len(p.due)) {
					p.r.write(p.ports[to], p.due)
				}
				for _, s := range p.dueSlots {
					q.Free(s)
				}
				p.due, p.dueSlots = p.due[:0], p.dueSlots[:0]
			}
			if !ok {
				break
			}
		}
	}
}

// drainLoop sends delayed packets when they fall due, for the readers
// that cannot wait for a deadline themselves (per device: blocked in
// Read; busy-poll: in poll(2)): one goroutine and one timer per Router,
// not per packet, woken early by a kick when a packet becomes the
// earliest due. It writes to ports, the queues of the first reader.
func (r *Router) drainLoop(ctx context.Context, ports []tun.Device) error {
	p := r.newPumper(1, ports, nil)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		if due, ok := r.imp.Load().next(); ok {
			t.Reset(time.Duration(max(due-monoNow(), 0)))
		} else {
			t.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.impKick:
		case <-t.C:
		}
		p.drain(r.imp.Load(), monoNow())
	}
}

// impairSegments impairs the segments q of a super-packet cut in
// software, in place, and returns those to send at once. For a device
// with offloads, each gets a plain virtio-net header.
func (p *pumper) impairSegments(st *impairState, in, to nat.Port, q [][]byte, now int64) [][]byte {
	const hdrAt = Headroom - offload.VirtioHdrLen
	k := 0
	for _, b := range q {
		if p.vhdr[to] {
			clear(b[hdrAt:Headroom])
		}
		if p.impair(st, in, to, b, now) {
			q[k] = b
			k++
		}
	}
	return q[:k]
}
