package nat

import (
	"sync/atomic"

	"github.com/gonat/gonat/table"
)

// Queue is one reader's way into the engine: the router makes one per
// reading goroutine (NewQueue). A packet of an existing mapping takes
// only the queue's table.Reader lock (and, inside the table, its
// mapping's stripe lock), nothing another queue takes unless it
// translates a flow of the same stripe. A Queue is safe for concurrent
// use, but it is meant for one goroutine: two on one Queue wait for each
// other.
type Queue struct {
	e  *Engine
	r  *table.Reader
	r6 *table.Reader // of the nat66 table (nat66.go)
	// forwarded counts the packets the queue forwarded by the hit path:
	// a count shared by all queues (Engine.counters) would be a line
	// every reader writes per packet.
	forwarded atomic.Uint64
	// Guarded by r's lock (held alone, or with all the others by
	// table.Shared.Lock):
	prefetchKeys []table.LookupKey // Prefetch's scratch
	idNext       uint16            // the next of this queue's block of IP identifications
	idLeft       uint16            // how many of the block are left
	idTaken      uint32            // the engine's counter when the block was taken
	// 128 bytes in all, so that two readers' queues, written per batch
	// or per packet, never share a line pair (see table.Reader).
	_ [128 - 8 - 8 - 8 - 8 - 24 - 8]byte
}

// NewQueue returns a Queue with a lock of its own. It lasts as long as
// the engine, and every packet that needs the whole engine takes its
// lock: make one per reading goroutine, once.
func (e *Engine) NewQueue() *Queue {
	q := &Queue{e: e, r: e.shared.NewReader(), r6: e.shared6.NewReader()}
	e.shared.Lock()
	var qs []*Queue
	if p := e.queues.Load(); p != nil {
		qs = *p
	}
	qs = append(qs[:len(qs):len(qs)], q) // a new array: Count reads the old one unlocked
	e.queues.Store(&qs)
	e.shared.Unlock()
	return q
}

// LockWaits counts the times a packet (or a table query) found a lock
// it needed held and waited. A packet of an existing mapping needs its
// queue's lock (held by a packet or query that needs the whole engine)
// and its mapping's stripe lock (held by another queue on the same flow,
// or on one whose mapping shares the stripe); any other packet needs
// every queue's lock. One packet may count more than once.
func (e *Engine) LockWaits() uint64 { return e.shared.Waits() + e.shared6.Waits() }
