// Package table holds a NAT's state as pure data: behaviours and config,
// presets, mappings and their filter permissions, port allocation, pooling
// over several external addresses, TCP session state, and expiry.
//
// The table does no I/O, starts no goroutines and never reads the clock: every
// call that depends on time takes now. Expiry is lazy and exact: a mapping or
// permission whose Expires is <= now is gone for every lookup, whenever Expire
// last ran. A Table is not safe for concurrent use; a Shared table is:
// its readers run the hit path (Hits: OutboundHit, InboundHit, Prefetch)
// side by side, and every other method runs alone (Shared.Lock). IPv4
// only.
package table

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"
)

// ErrPortsExhausted is returned by Outbound when no external port is free for
// a new mapping. Live mappings are never evicted to make room (RFC 5508 REQ-8,
// RFC 6888 REQ-4); the engine should answer with ICMP 3/13.
var ErrPortsExhausted = errors.New("no free external port")

// ErrNotIPv4 is returned by Outbound for an endpoint that is not IPv4.
var ErrNotIPv4 = errors.New("table: endpoint is not IPv4")

// ErrProtocol is returned by Outbound for a protocol other than ICMP, TCP, UDP.
var ErrProtocol = errors.New("table: protocol not supported")

// pair is the state of one internal address that holds mappings.
type pair struct {
	ext int32 // index of its external address (paired pooling)
	n   int32 // its mappings, all protocols (LimitMappingsPerHost)
}

// Table is the NAT's state. Create it with New.
type Table struct {
	cfg     Config
	ext     [][4]byte    // external addresses, as keys
	extAddr []netip.Addr // the same, for building endpoints

	out  index  // by internal side (mapping behaviour's key)
	in   index  // by external endpoint
	seed uint64 // of the index hashes

	pools [3][]*portPool   // [protocol index][external address index], made on first use
	pairs map[[4]byte]pair // by internal address
	rr    int              // next external address for a new internal address (paired)
	rng   *rand.Rand

	// Port overloading: how many holders of an external endpoint there
	// are beyond the first, and how many mappings are for one remote
	// only (made on a clash; Outbound looks for them first).
	shared      map[extKey]int32
	secondaries int

	sessions int // over all mappings (LimitSessions)

	held  map[extKey]heldPort // freed ports on hold (hold.go)
	holds []heldPort          // the same, in the order they were freed, from holdHead
	// (and holds taken back, dropped as they come to the front)
	holdHead int

	heap      []*Mapping // min-heap on Mapping.due
	epoch     time.Time  // the first now seen; Mapping.due counts from it
	haveEpoch bool
	graveyard []*Mapping // removed outside Expire, reported by the next Expire

	stripes     *[numStripes]stripe // the hit path's locks (hit.go), an allocation of their own, made by create
	stripeWaits *atomic.Uint64      // where they count waits
}

// streamOf picks the random port stream from the external addresses, so
// that two NATs given one seed still hand out different port sequences,
// while one NAT given its seed again repeats its own.
func streamOf(external []netip.Addr) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, a := range external {
		for _, b := range a.AsSlice() {
			h = (h ^ uint64(b)) * 0x100000001b3
		}
	}
	return h
}

// New returns an empty table for c. Zero timeouts and zero port range ends
// take the defaults; the result must pass Validate.
func New(c Config) (*Table, error) {
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	t := &Table{
		cfg:    c,
		pairs:  make(map[[4]byte]pair),
		shared: make(map[extKey]int32),
		held:   make(map[extKey]heldPort),
		rng:    rand.New(rand.NewPCG(uint64(c.Seed), streamOf(c.External))),
		seed:   rand.Uint64(),

		stripeWaits: new(atomic.Uint64),
	}
	for _, a := range c.External {
		t.ext = append(t.ext, a.As4())
		t.extAddr = append(t.extAddr, a)
	}
	for i := range t.pools {
		t.pools[i] = make([]*portPool, len(c.External))
	}
	return t, nil
}

// Config returns the configuration in force, defaults filled in.
func (t *Table) Config() Config {
	c := t.cfg
	c.External = append([]netip.Addr(nil), c.External...)
	return c
}

// Len returns the number of mappings held, including lapsed ones that Expire
// (or a later Outbound) has not removed yet.
func (t *Table) Len() int { return t.in.n }

// All calls fn for each mapping held until fn returns false, in no
// particular order. Lapsed mappings not yet removed are included: compare
// Expires with the current time to skip them. fn must not change the table.
func (t *Table) All(fn func(*Mapping) bool) {
	t.in.all(fn)
}

// Flush drops every mapping at once, as a NAT reboot would (for NAT
// rebinding tests). Dropped mappings are not reported by Expire. Sequential
// cursors and the random source carry on.
func (t *Table) Flush() {
	t.out.reset()
	t.in.reset()
	t.pairs = make(map[[4]byte]pair)
	clear(t.shared)
	t.secondaries = 0
	t.sessions = 0
	clear(t.held)
	clear(t.holds)
	t.holds = t.holds[:0]
	t.holdHead = 0
	for _, pools := range t.pools {
		for _, p := range pools {
			if p != nil {
				p.used = [len(p.used)]uint64{}
				p.n = 0
			}
		}
	}
	for _, m := range t.heap {
		m.hidx = -1
	}
	clear(t.heap)
	t.heap = t.heap[:0]
	clear(t.graveyard)
	t.graveyard = t.graveyard[:0]
}

// PoolUsage returns how many external ports of proto are held (lapsed
// mappings included until removed; a port several mappings share counts
// once) and how many there are, over all external addresses. UDP and TCP
// count 1-1023 (1-511 and 600-1023 with LinuxLowPorts) plus PortLo-PortHi
// (with Parity on, a given internal port can use only half of them); ICMP
// identifiers 1-65535.
func (t *Table) PoolUsage(proto Protocol) (used, size int) {
	pi := proto.index()
	if pi < 0 {
		return 0, 0
	}
	for _, p := range t.pools[pi] {
		if p != nil {
			used += p.n
		}
	}
	per := 65535
	if proto != ICMP {
		low := 1023
		if t.cfg.LinuxLowPorts {
			low = 511 + (1023 - 600 + 1)
		}
		per = low + int(t.cfg.PortHi) - int(t.cfg.PortLo) + 1
	}
	return used, per * len(t.ext)
}

// since turns now into the table's time: a duration since its epoch (the
// first now it saw). The monotonic clock is used when now and the epoch
// both carry it, so a wall clock step moves no expiry.
func (t *Table) since(now time.Time) time.Duration {
	if !t.haveEpoch {
		t.epoch, t.haveEpoch = now, true
	}
	return now.Sub(t.epoch)
}
