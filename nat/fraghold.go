package nat

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gonat/gonat/header"
)

// Later fragments that arrive before their first fragment cannot be
// translated yet (they carry no ports): RFC 4787 REQ-14 asks that
// out-of-order fragments work anyway, bounded against denial of service.
// So they wait here, in a fixed pool allocated once, until the first
// fragment of their datagram passes and says where they go. A flood of
// incomplete datagrams only evicts the oldest waiting fragments: memory
// never grows, and unfragmented traffic never waits.
//
// The pool (about 132 KB) is allocated when the NAT first holds a
// fragment, once in its life: a NAT that never sees a later fragment
// before its first keeps none.

const heldSlots = 64

// HeldMaxSize is the largest fragment the engine holds (larger ones are
// dropped): a buffer of this size takes whatever NextHeld returns.
const HeldMaxSize = 2048

type heldState uint8

const (
	slotFree heldState = iota
	slotWaiting
	slotReady
)

type heldFrag struct {
	state   heldState
	key     fragKey
	out     Port
	n       int
	expires time.Time
	seq     uint64 // age, for eviction
	buf     [HeldMaxSize]byte
}

// fragHold is guarded by Engine.lock.
type fragHold struct {
	slots *[heldSlots]heldFrag // nil until hold
	seq   uint64
	ready atomic.Int32 // slots in slotReady: lets pumps skip the lock
}

// hold copies a fragment that has no state yet. It reports false when the
// fragment is too large to hold.
func (h *fragHold) hold(k fragKey, b []byte, now time.Time) bool {
	if len(b) > HeldMaxSize {
		return false
	}
	if h.slots == nil {
		h.slots = new([heldSlots]heldFrag)
	}
	var victim *heldFrag
	for i := range h.slots {
		s := &h.slots[i]
		if s.state == slotWaiting && !now.Before(s.expires) {
			s.state = slotFree
		}
		if s.state == slotFree {
			victim = s
			break
		}
		if s.state == slotWaiting && (victim == nil || s.seq < victim.seq) {
			victim = s
		}
	}
	if victim == nil { // every slot is ready and waiting for a pump
		return false
	}
	h.seq++
	victim.state, victim.key, victim.n, victim.seq = slotWaiting, k, copy(victim.buf[:], b), h.seq
	victim.expires = now.Add(fragLifetime)
	return true
}

// release translates the fragments waiting for key k now that its first
// fragment went through: outbound ones get source address to and
// identification hp.id, inbound ones destination address to, and go to
// port out. Hairpinned ones (outbound, hp.dst valid) get destination
// hp.dst too and go to hp.out.
// It returns how many fragments it released, their payload bytes, and
// the datagram's payload length if the last fragment was among them.
func (h *fragHold) release(k fragKey, outbound bool, to netip.Addr, out Port, hp fragWay) (n, bytes, end int) {
	if h.slots == nil {
		return 0, 0, 0
	}
	for i := range h.slots {
		s := &h.slots[i]
		if s.state != slotWaiting || s.key != k {
			continue
		}
		b := s.buf[:s.n]
		var p header.Parsed
		p.Decode(b)
		if p.Status != header.OK {
			s.state = slotFree
			continue
		}
		pl, e := fragPayload(b, &p)
		bytes += pl
		end = max(end, e)
		if outbound {
			header.RewriteID(b, &p, hp.id)
			header.RewriteSrc(b, &p, netip.AddrPortFrom(to, 0))
			if hp.dst.IsValid() {
				header.RewriteDst(b, &p, netip.AddrPortFrom(hp.dst, 0))
				out = hp.out
			}
		} else {
			header.RewriteDst(b, &p, netip.AddrPortFrom(to, 0))
		}
		header.IPv4(b).DecTTL()
		s.state, s.out = slotReady, out
		n++
	}
	h.ready.Add(int32(n))
	return n, bytes, end
}

// HeldReady reports whether fragments released from the hold wait to be
// sent (a cheap check for the pumps).
func (e *Engine) HeldReady() bool { return e.held.ready.Load() > 0 }

// NextHeld copies one released fragment into dst and says which port it
// goes to; ok is false when none waits.
func (e *Engine) NextHeld(dst []byte) (n int, out Port, ok bool) {
	if e.held.ready.Load() == 0 {
		return 0, 0, false
	}
	e.shared.Lock()
	defer e.shared.Unlock()
	for i := range e.held.slots {
		s := &e.held.slots[i]
		if s.state == slotReady {
			n = copy(dst, s.buf[:s.n])
			s.state = slotFree
			e.held.ready.Add(-1)
			e.counters[Forward].Add(1)
			return n, s.out, true
		}
	}
	return 0, 0, false
}

// reset drops everything held (a behaviour change or a flush).
func (h *fragHold) reset() {
	if h.slots == nil {
		return
	}
	for i := range h.slots {
		h.slots[i].state = slotFree
	}
	h.ready.Store(0)
}
