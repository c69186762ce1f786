package table

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The hit path: what a packet of an existing mapping does, run by
// several readers at once.
//
// Most packets belong to a mapping that exists and change only that
// mapping: its timers, its counters, and its sessions' timers. OutboundHit
// and InboundHit do exactly that and nothing else, so they may run
// concurrently with each other (the caller keeps every other method out
// while they run: an index or a pool that changes under a lookup is not
// safe). Two hits on one mapping (a flow's packets out on one queue, its
// replies in on another) take that mapping's stripe lock: 256 locks, each
// on a cache line of its own, chosen by the Mapping's address, so readers
// of different flows share no lock.
//
// A packet that would change anything beyond its mapping (create or bury
// a mapping, add a session, move a TCP state or the expiry heap, port
// overloading's shared endpoints) is not a hit: the call reports so and
// changes nothing, and the caller runs Outbound or Inbound with the
// table to itself. The result is the same either way; TestHitMatchesFull
// drives both with the same packets.

const numStripes = 256

type stripe struct {
	sync.Mutex
	_ [64 - unsafe.Sizeof(sync.Mutex{})]byte // a cache line each
}

// stripeOf returns the lock of m's stripe. Mappings are at least 128
// bytes apart (their size class), so the bits above 7 spread them.
func (t *Table) stripeOf(m *Mapping) *stripe {
	return &t.stripes[uintptr(unsafe.Pointer(m))>>7%numStripes]
}

// lockStripe takes m's stripe lock and returns it, counting a wait.
func (t *Table) lockStripe(m *Mapping) *stripe {
	l := t.stripeOf(m)
	if !l.TryLock() {
		t.stripeWaits.Add(1)
		l.Lock()
	}
	return l
}

// CountStripeWaits makes the hit path count in c the hits that found
// their mapping's stripe lock held (another reader on the same flow, or
// on one sharing the stripe) and waited. Call it before any hit.
func (t *Table) CountStripeWaits(c *atomic.Uint64) { t.stripeWaits = c }

// OutboundHit is Outbound for a packet from internal to remote whose
// mapping exists and holds a live session with remote, when nothing but
// that mapping changes: the timers move later and the packet and its
// bytes are counted. It returns nil, having changed nothing, for any
// other packet; Outbound handles those.
func (t *Table) OutboundHit(proto Protocol, internal, remote netip.AddrPort, tcpFlags uint8, bytes int, now time.Time) *Mapping {
	if !t.hitsOK(proto) || !internal.Addr().Is4() || !remote.Addr().Is4() {
		return nil
	}
	k := t.outProbe(proto, internal, remote)
	m := t.out.findOut(hashOut(k, t.seed), k)
	if m == nil {
		return nil
	}
	rel := now.Sub(t.epoch)
	r := remKeyOf(proto, remote)
	defer t.lockStripe(m).Unlock()
	if !m.alive(rel) {
		return nil // Outbound buries it
	}
	i := m.find(r)
	if i < 0 {
		return nil // a new session
	}
	s := m.sess(i)
	if !s.alive(rel) {
		return nil
	}
	e := rel + t.timeout(proto, s.tcp)
	if proto == TCP {
		// Only a packet that leaves the state as it is (data, ACKs), and
		// a timer that only moves later: a shorter one can move the
		// mapping up the expiry heap.
		if tcpAdvance(s.tcp, true, tcpFlags) != s.tcp || e < s.expires {
			return nil
		}
		m.setSessionExpiry(i, e)
		m.expires = max(m.expires, e)
	} else {
		if e > m.expires {
			m.expires = e
		}
		if e > s.expires {
			m.setSessionExpiry(i, e)
		}
	}
	m.countPacket(true)
	m.AddBytes(true, bytes)
	return m
}

// InboundHit is Inbound for a packet from remote to external when the
// verdict changes nothing beyond the mapping: it returns the mapping and
// verdict Inbound would (counting an accepted packet and its bytes), and
// ok. It returns ok false, having changed nothing, for a packet that
// needs Inbound: a TCP segment that moves a session's state or starts
// one, a UDP session's first reply, a timer that would move earlier.
func (t *Table) InboundHit(proto Protocol, external, remote netip.AddrPort, tcpFlags uint8, bytes int, now time.Time) (m *Mapping, v Verdict, ok bool) {
	if !t.hitsOK(proto) {
		return nil, 0, false
	}
	noMapping := DropNoMapping
	if proto == TCP && isConnRequest(tcpFlags) {
		noMapping = DropUnsolicitedSYN
	}
	if !external.Addr().Is4() || !remote.Addr().Is4() {
		return nil, noMapping, true
	}
	w := endpointWord(proto, external.Addr().As4(), external.Port())
	m = t.in.findExt(hashExt(w, t.seed), w)
	if m == nil {
		return nil, noMapping, true
	}
	rel := now.Sub(t.epoch)
	defer t.lockStripe(m).Unlock()
	if !m.alive(rel) {
		return nil, noMapping, true
	}
	i, admitted := m.admits(t.filtering(proto), remKeyOf(proto, remote), rel)
	if !admitted {
		return m, DropFiltered, true
	}
	switch proto {
	case TCP:
		if i < 0 {
			if isConnRequest(tcpFlags) {
				return nil, 0, false // starts a session
			}
			break // admitted without one
		}
		s := m.sess(i)
		e := rel + t.timeout(TCP, s.tcp)
		if tcpAdvance(s.tcp, false, tcpFlags) != s.tcp || e < s.expires {
			return nil, 0, false
		}
		m.setSessionExpiry(i, e)
		m.expires = max(m.expires, e)
	case UDP:
		if i >= 0 && m.sess(i).tcp&udpReplied == 0 {
			return nil, 0, false // the first reply changes the session's timer
		}
	}
	if proto != TCP && t.cfg.InboundRefresh {
		e := rel + t.timeout(proto, udpReplied)
		if e > m.expires {
			m.expires = e
		}
		if i >= 0 && e > m.sess(i).expires {
			m.setSessionExpiry(i, e)
		}
	}
	m.countPacket(false)
	m.AddBytes(false, bytes)
	return m, Accept, true
}

// hitsOK reports whether packets of proto can be hits at all: not before
// the table has a time base (its first mapping), nor with port
// overloading, whose endpoints several mappings share.
func (t *Table) hitsOK(proto Protocol) bool {
	return t.haveEpoch && proto.index() >= 0 && !(t.cfg.PortOverloading && proto != ICMP)
}
