package table

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// Aliases6 gives IPv6 addresses exact 4-byte aliases, so that a Table,
// whose keys hold 4-byte addresses (index.go packs an endpoint in one
// word), can keep IPv6 mappings: the caller swaps each IPv6 address for
// its alias on the way into the table and back on the way out. An alias
// stands for one address and an address has one alias, both ways, for as
// long as the alias lives.
//
// Aliases lie in 0.0.0.0/8 ("this network", RFC 791 and RFC 1122 section
// 3.2.1.3), which no packet carries on the wire: one that leaked would be
// dropped as a martian, never taken for a real host.
//
// An alias is freed only once it has been unused (no Alias, Lookup or
// Touch) for longer than its idle time, which the caller sets to the
// longest time a mapping, session or held port can outlive its last
// packet: by then nothing in the table that lives still holds it.
// Freed aliases are reused oldest first.
//
// Locking is the Table's (see Shared): Lookup, Addr and Touch change
// nothing but a use time and may run side by side, from the hit path
// under a Reader lock; Alias, Sweep and Reset change the map and run
// alone (Shared.Lock). Lookup and Touch of an existing alias allocate
// nothing.
type Aliases6 struct {
	idle  time.Duration
	limit int
	epoch time.Time // times are kept as nanoseconds since

	byAddr map[[16]byte]uint32 // address -> slot
	slots  []aliasSlot         // slot i is alias i+1
	free   []uint32            // freed slots, oldest first from freeHead
	head   int

	dropped atomic.Uint64
}

// aliasSlot is one alias: the address it stands for and its last use.
type aliasSlot struct {
	addr [16]byte
	used int64 // ns since epoch; read and written atomically
	live bool
}

// maxAliases6 is the most aliases 0.0.0.0/8 holds (0.0.0.0 is none).
const maxAliases6 = 1<<24 - 1

// NewAliases6 returns an empty alias map that holds at most limit
// aliases (at most 2^24-1; 0 or more than that: 2^24-1) and frees an
// alias once it has been unused for longer than idle.
func NewAliases6(limit int, idle time.Duration) *Aliases6 {
	if limit <= 0 || limit > maxAliases6 {
		limit = maxAliases6
	}
	return &Aliases6{idle: idle, limit: limit, byAddr: make(map[[16]byte]uint32)}
}

// aliasOf is the 4-byte alias of slot i.
func aliasOf(i uint32) netip.Addr {
	n := i + 1
	return netip.AddrFrom4([4]byte{0, byte(n >> 16), byte(n >> 8), byte(n)})
}

// slotOf is the slot of alias a, or false when a is not in the alias
// range.
func (s *Aliases6) slotOf(a netip.Addr) (uint32, bool) {
	if !a.Is4() {
		return 0, false
	}
	b := a.As4()
	n := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if b[0] != 0 || n == 0 || int(n) > len(s.slots) {
		return 0, false
	}
	return n - 1, true
}

func (s *Aliases6) since(now time.Time) int64 { return int64(now.Sub(s.epoch)) }

// touchGrain is how stale a stored use time may be: a use less than
// this after the stored one is not stored, so that a remote many flows
// share is not a line every reader writes per packet. Sweep adds it to
// the idle time.
const touchGrain = time.Second

// touch marks slot i used at t.
func (s *Aliases6) touch(i uint32, t int64) {
	u := &s.slots[i].used
	if t-atomic.LoadInt64(u) > int64(touchGrain) {
		atomic.StoreInt64(u, t)
	}
}

// Alias returns a's alias, making one if a has none. It reports false
// when a is not an IPv6 address, and, counting a drop, when the map is
// full.
// It runs alone (Shared.Lock).
func (s *Aliases6) Alias(a netip.Addr, now time.Time) (netip.Addr, bool) {
	if !a.Is6() || a.Is4In6() {
		return netip.Addr{}, false
	}
	if len(s.byAddr) == 0 && len(s.slots) == 0 {
		s.epoch = now
	}
	k := a.As16()
	t := s.since(now)
	if i, ok := s.byAddr[k]; ok {
		s.touch(i, t)
		return aliasOf(i), true
	}
	var i uint32
	switch {
	case s.head < len(s.free):
		i = s.free[s.head]
		s.head++
		if s.head == len(s.free) {
			s.free, s.head = s.free[:0], 0
		}
	case len(s.slots) < s.limit:
		i = uint32(len(s.slots))
		s.slots = append(s.slots, aliasSlot{})
	default:
		s.dropped.Add(1)
		return netip.Addr{}, false
	}
	s.slots[i] = aliasSlot{addr: k, used: t, live: true}
	s.byAddr[k] = i
	return aliasOf(i), true
}

// Lookup returns a's alias, if it has one, and marks it used at now.
func (s *Aliases6) Lookup(a netip.Addr, now time.Time) (netip.Addr, bool) {
	i, ok := s.byAddr[a.As16()]
	if !ok {
		return netip.Addr{}, false
	}
	s.touch(i, s.since(now))
	return aliasOf(i), true
}

// Addr returns the IPv6 address alias a stands for.
func (s *Aliases6) Addr(a netip.Addr) (netip.Addr, bool) {
	i, ok := s.slotOf(a)
	if !ok || !s.slots[i].live {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(s.slots[i].addr), true
}

// Touch marks alias a used at now (an alias the table handed back, such
// as a mapping's internal address on an inbound packet).
func (s *Aliases6) Touch(a netip.Addr, now time.Time) {
	if i, ok := s.slotOf(a); ok && s.slots[i].live {
		s.touch(i, s.since(now))
	}
}

// Sweep frees the aliases unused for longer than the idle time at now,
// and returns how many. It runs alone (Shared.Lock).
func (s *Aliases6) Sweep(now time.Time) int {
	if len(s.byAddr) == 0 {
		return 0
	}
	t := s.since(now)
	n := 0
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.live && t-sl.used > int64(s.idle+touchGrain) {
			delete(s.byAddr, sl.addr)
			*sl = aliasSlot{}
			s.free = append(s.free, uint32(i))
			n++
		}
	}
	return n
}

// Reset frees every alias at once (the table it served was flushed).
// It runs alone (Shared.Lock).
func (s *Aliases6) Reset() {
	clear(s.byAddr)
	s.slots = s.slots[:0]
	s.free, s.head = s.free[:0], 0
}

// Len returns how many aliases are held.
func (s *Aliases6) Len() int { return len(s.byAddr) }

// Limit returns the most aliases the map holds.
func (s *Aliases6) Limit() int { return s.limit }

// Dropped counts the aliases Alias could not make because the map was
// full.
func (s *Aliases6) Dropped() uint64 { return s.dropped.Load() }
