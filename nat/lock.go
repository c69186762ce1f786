package nat

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gonat/gonat/table"
)

// slot is one Queue's lock, on a pair of cache lines of its own (128
// bytes, pointer-free: the allocator's 128-byte size class), so readers
// on different slots never write the same line, nor one the CPU fetches
// with it (see table.stripe).
type slot struct {
	sync.Mutex
	// forwarded counts the packets the queue forwarded by the hit path:
	// a count shared by all queues (Engine.counters) would be a line
	// every reader writes per packet.
	forwarded atomic.Uint64
	_         [128 - unsafe.Sizeof(sync.Mutex{}) - 8]byte
}

// Queue is one reader's way into the engine: the router makes one per
// reading goroutine (NewQueue). Its packets of existing mappings take
// its own lock and their mapping's stripe lock, nothing another queue
// takes unless it translates a flow of the same stripe. A Queue is safe
// for concurrent use, but it is meant for one goroutine: two on one
// Queue wait for each other.
type Queue struct {
	e    *Engine
	slot *slot
	// Guarded by slot (held alone, or with all the others):
	prefetchKeys []table.LookupKey // Prefetch's scratch
	idNext       uint16            // the next of this queue's block of IP identifications
	idLeft       uint16            // how many of the block are left
	idTaken      uint32            // the engine's counter when the block was taken
	// 128 bytes in all, so that two readers' queues, written per batch
	// or per packet, never share a line pair (see slot).
	_ [128 - 8 - 8 - 24 - 8]byte
}

// NewQueue returns a Queue with a lock of its own. It lasts as long as
// the engine, and every packet that needs the whole engine takes its
// lock: make one per reading goroutine, once.
func (e *Engine) NewQueue() *Queue {
	s := new(slot)
	s.Lock() // so that unlock releases it with the others
	e.lock()
	ss := append(e.locked[:len(e.locked):len(e.locked)], s)
	e.slots.Store(&ss)
	e.locked = ss
	e.unlock()
	return &Queue{e: e, slot: s}
}

// lock takes every slot, in order, so the caller has the engine to
// itself: no packet is being translated while it holds them. A call
// that found any slot held counts once in LockWaits.
func (e *Engine) lock() {
	waited := false
	for {
		p := e.slots.Load()
		for _, s := range *p {
			if !s.TryLock() {
				if !waited {
					waited = true
					e.lockWaits.Add(1) // now: a watcher sees the wait while it lasts
				}
				s.Lock()
			}
		}
		// The list changes only with all of it held: if it is still p,
		// it stays p until unlock.
		if e.slots.Load() == p {
			e.locked = *p
			return
		}
		for _, s := range *p {
			s.Unlock()
		}
	}
}

func (e *Engine) unlock() {
	for _, s := range e.locked {
		s.Unlock()
	}
}

// rlock takes q's slot: enough for the hit path. TryLock first is the
// compare-and-swap Lock starts with, so an uncontended packet pays
// nothing more for the count.
func (q *Queue) rlock() {
	if !q.slot.TryLock() {
		q.wait()
	}
}

// wait is rlock's slow path, apart so that rlock inlines.
func (q *Queue) wait() {
	q.e.lockWaits.Add(1)
	q.slot.Lock()
}

// LockWaits counts the times a packet (or a table query) found a lock
// it needed held and waited. A packet of an existing mapping needs its
// queue's lock (held by a packet or query that needs the whole engine)
// and its mapping's stripe lock (held by another queue on the same flow,
// or on one whose mapping shares the stripe); any other packet needs
// every queue's lock. One packet may count more than once.
func (e *Engine) LockWaits() uint64 { return e.lockWaits.Load() }
