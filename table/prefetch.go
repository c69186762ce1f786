package table

import (
	"net/netip"
	"unsafe"
)

// LookupKey names one packet's coming lookup, for Hits.Prefetch.
type LookupKey struct {
	Proto Protocol
	// Outbound: Local is the internal endpoint and Remote the remote one
	// (as for Outbound). Inbound: Local is the external endpoint and Remote
	// is not used.
	Outbound      bool
	Local, Remote netip.AddrPort
}

// prefetchProbe is how many slots past the home slot prefetchBatch looks for a
// matching hash: runs are short at 3/4 load, and a miss costs only a
// wasted prefetch.
const prefetchProbe = 4

// prefetchBatch is Hits.Prefetch.
func (t *Table) prefetchBatch(keys []LookupKey) {
	if !t.prefetchHelps() {
		return
	}
	const maxBatch = 64
	var hs [maxBatch]uint32
	var xs [maxBatch]*index
	for len(keys) > 0 {
		n := min(len(keys), maxBatch)
		// Stage 1: hash every key and prefetch its home slot.
		for i := range keys[:n] {
			k := &keys[i]
			xs[i] = nil
			if !k.Local.Addr().Is4() {
				continue
			}
			if k.Outbound {
				if !k.Remote.Addr().Is4() {
					continue
				}
				hs[i], xs[i] = hashOut(t.outProbe(k.Proto, k.Local, k.Remote), t.seed), &t.out
			} else {
				hs[i], xs[i] = hashExt(endpointWord(k.Proto, k.Local.Addr().As4(), k.Local.Port()), t.seed), &t.in
			}
			if s := xs[i].home(hs[i]); s != nil {
				prefetch(unsafe.Pointer(s))
			}
		}
		// Stage 2: the slots are arriving; prefetch the Mapping of the
		// first slot whose hash matches.
		for i := range n {
			if xs[i] == nil {
				continue
			}
			if m := xs[i].peek(hs[i]); m != nil {
				prefetch(unsafe.Pointer(m)) // its first line: all a packet touches
			}
		}
		keys = keys[n:]
	}
}

// prefetchMin is the table size from which Prefetch works: below it the
// table lives in the caches and hashing every key twice costs more than it
// saves (measured: BenchmarkOutboundHitBatch/1K).
const prefetchMin = 16 << 10

// prefetchHelps is Hits.PrefetchHelps.
func (t *Table) prefetchHelps() bool { return t.in.n >= prefetchMin }

// peek returns the mapping in the first of h's slots (up to prefetchProbe
// from home) whose stored hash is h, without comparing keys.
func (x *index) peek(h uint32) *Mapping {
	s := x.shard(h)
	if len(s.slots) == 0 {
		return nil
	}
	mask := uint32(len(s.slots) - 1)
	i := h & mask
	for range prefetchProbe {
		e := &s.slots[i]
		if e.m == nil {
			return nil
		}
		if e.h == h {
			return e.m
		}
		i = (i + 1) & mask
	}
	return nil
}
