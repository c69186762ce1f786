package table

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Shared is a Table that several goroutines use at once, with the locks
// that make that safe. The protocol is in the types:
//
//   - Each reading goroutine has a Reader of its own (NewReader).
//     Reader.Lock takes that reader's lock alone and returns a Hits, the
//     only way to the hit path (OutboundHit, InboundHit, Prefetch). Hits
//     of different readers run side by side; two on one mapping meet on
//     its stripe lock, one of 256 (hit.go).
//   - Shared.Lock takes every reader's lock and returns the *Table with
//     all its methods, the caller's alone until Unlock: no hit runs
//     meanwhile, and no other Lock.
//
// Only Reader.Lock makes a Hits, so a hit without its reader's lock
// does not compile (the zero Hits has no table and panics), and a
// *Table has no hit methods:
//
//	tab, _ := table.New(cfg)
//	tab.OutboundHit(...) // tab.OutboundHit undefined (type *table.Table has no field or method OutboundHit)
//
// A Hits is good until its reader's Unlock, and a *Table from Lock until
// Unlock: neither may be kept past it. A Mapping either returns may be
// kept: its Proto, Internal and External never change and need no lock;
// its counters, timers and sessions are read under Lock.
type Shared struct {
	// mu orders the goroutines that want the table to themselves (Lock,
	// LockReplace, NewReader) before they take the readers' locks.
	mu      sync.Mutex
	readers []*Reader // guarded by mu
	t       *Table    // written with every lock held
	// waits counts the locks found held (Waits), the stripes' included.
	waits atomic.Uint64
}

// Reader is one goroutine's lock on a Shared table. Its mutex is on a
// pair of cache lines of its own (128 bytes: the allocator's 128-byte
// size class), so readers never write the same line, nor one the CPU
// fetches with it (see stripe).
type Reader struct {
	mu sync.Mutex
	s  *Shared
	_  [128 - unsafe.Sizeof(sync.Mutex{}) - 8]byte
}

// Hits is the hit path of a Shared table whose Reader lock the holder
// took: see Shared. Reader.Lock makes one; it is good until that
// reader's Unlock.
type Hits struct{ t *Table }

// NewShared returns t shared by readers. t is the Shared's from then on:
// reach it only through Lock.
func NewShared(t *Table) *Shared {
	s := &Shared{t: t}
	t.stripeWaits = &s.waits
	return s
}

// NewReader returns a lock for one more reading goroutine. It lasts as
// long as s, and every Lock takes it: make one per goroutine, once.
func (s *Shared) NewReader() *Reader {
	r := &Reader{s: s}
	s.mu.Lock()
	s.readers = append(s.readers, r)
	s.mu.Unlock()
	return r
}

// Lock waits until no hit runs and no other goroutine holds the table,
// and returns it: every method is the caller's until Unlock. A call that
// found any lock held counts once in Waits.
func (s *Shared) Lock() *Table {
	waited := false
	if !s.mu.TryLock() {
		waited = true
		s.waits.Add(1)
		s.mu.Lock()
	}
	for _, r := range s.readers {
		if !r.mu.TryLock() {
			if !waited {
				waited = true
				s.waits.Add(1) // at once: a watcher sees the wait while it lasts
			}
			r.mu.Lock()
		}
	}
	return s.t
}

// LockReplace is Lock for a caller that puts t in place of the table
// (a new configuration): the hits after Unlock use t. It returns the
// table it replaced.
func (s *Shared) LockReplace(t *Table) (old *Table) {
	old = s.Lock()
	t.stripeWaits = &s.waits
	s.t = t
	return old
}

// Unlock lets hits, and the next Lock, run again.
func (s *Shared) Unlock() {
	for _, r := range s.readers {
		r.mu.Unlock()
	}
	s.mu.Unlock()
}

// Waits counts the times a reader or Lock found a lock it needed held
// and waited: a Reader's lock (held by Lock), the table (held by another
// Lock), or a mapping's stripe (held by a hit of another reader on the
// same flow, or on one whose mapping shares the stripe). One packet may
// count more than once.
func (s *Shared) Waits() uint64 { return s.waits.Load() }

// Lock takes r's lock, waiting while a Shared.Lock holds it, and returns
// the hit path, good until Unlock. TryLock first is the compare-and-swap
// Lock starts with, so an uncontended reader pays nothing more for the
// count.
func (r *Reader) Lock() Hits {
	if !r.mu.TryLock() {
		r.wait()
	}
	return Hits{r.s.t}
}

// wait is Lock's slow path, apart to keep Lock short.
func (r *Reader) wait() {
	r.s.waits.Add(1)
	r.mu.Lock()
}

// Unlock releases r's lock: the Hits that Lock returned is spent.
func (r *Reader) Unlock() { r.mu.Unlock() }

// OutboundHit is Outbound for a packet from internal to remote whose
// mapping exists and holds a live session with remote, when nothing but
// that mapping changes: the timers move later and the packet and its
// bytes are counted. It returns nil, having changed nothing, for any
// other packet; Outbound (under Shared.Lock) handles those.
func (h Hits) OutboundHit(proto Protocol, internal, remote netip.AddrPort, tcpFlags uint8, bytes int, now time.Time) *Mapping {
	seg := FlagsOnly(tcpFlags)
	return h.t.outboundHit(proto, internal, remote, &seg, bytes, now)
}

// OutboundHitSeg is OutboundHit for a TCP segment whose windows are
// tracked (seg, the zero Segment for UDP and ICMP), as OutboundSeg.
func (h Hits) OutboundHitSeg(proto Protocol, internal, remote netip.AddrPort, seg *Segment, bytes int, now time.Time) *Mapping {
	return h.t.outboundHit(proto, internal, remote, seg, bytes, now)
}

// InboundHit is Inbound for a packet from remote to external when the
// verdict changes nothing beyond the mapping: it returns the mapping and
// verdict Inbound would (counting an accepted packet and its bytes), and
// ok. It returns ok false, having changed nothing, for a packet that
// needs Inbound: a TCP segment that moves a session's state or starts
// one, a RST or FIN of a session, or a UDP session's first reply.
func (h Hits) InboundHit(proto Protocol, external, remote netip.AddrPort, tcpFlags uint8, bytes int, now time.Time) (m *Mapping, v Verdict, ok bool) {
	seg := FlagsOnly(tcpFlags)
	return h.t.inboundHit(proto, external, remote, &seg, bytes, now)
}

// InboundHitSeg is InboundHit for a TCP segment whose windows are
// tracked and checked (seg, the zero Segment for UDP and ICMP), as
// InboundSeg.
func (h Hits) InboundHitSeg(proto Protocol, external, remote netip.AddrPort, seg *Segment, bytes int, now time.Time) (m *Mapping, v Verdict, ok bool) {
	return h.t.inboundHit(proto, external, remote, seg, bytes, now)
}

// Prefetch starts the memory loads that the lookups of a batch of packets
// will need, without waiting for them, so the batch pays its cache misses
// all at once instead of one after another. With a million mappings a
// lookup is two misses to DRAM (index slot, then the Mapping's first
// line), ~300 ns on a server; in a batch they overlap. It changes
// nothing: a wrong or missing key costs a wasted prefetch, never a wrong
// lookup. Keys that are not IPv4 are skipped.
func (h Hits) Prefetch(keys []LookupKey) { h.t.prefetchBatch(keys) }

// PrefetchHelps reports whether the table is big enough for Prefetch to
// do anything, so a caller can skip building the keys.
func (h Hits) PrefetchHelps() bool { return h.t.prefetchHelps() }
