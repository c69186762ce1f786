package table

import (
	"net/netip"
	"sync"
	"time"
	"unsafe"
)

// The hit path: what a packet of an existing mapping does, run by
// several readers at once.
//
// Most packets belong to a mapping that exists and change only that
// mapping: its timers, its counters, and its sessions' timers and TCP
// windows.
// outboundHit and inboundHit (Hits.OutboundHit, Hits.InboundHit) do
// exactly that and nothing else, so they may run concurrently with each
// other, each under its Reader's lock, which keeps every other method out
// (an index or a pool that changes under a lookup is not safe; see
// Shared). Two hits on one mapping (a flow's packets out on one queue,
// its replies in on another) take that mapping's stripe lock: 256 locks,
// each on two cache lines of its own, chosen by a hash of the Mapping's
// address, so readers of different flows rarely share one.
//
// A packet that would change anything beyond its mapping (create or bury
// a mapping, add a session, move a TCP state or the expiry heap) is not a
// hit: the call reports so and changes nothing, and the caller runs
// Outbound or Inbound with the table to itself (Shared.Lock). The result
// is the same either way; TestHitMatchesFull drives both with the same
// packets.

const numStripes = 256

// stripe is one lock on 128 bytes: the CPU fetches cache lines in
// aligned pairs (the adjacent-line prefetcher), so locks on neighbouring
// 64-byte lines slow each other as if they shared one.
type stripe struct {
	sync.Mutex
	_ [128 - unsafe.Sizeof(sync.Mutex{})]byte
}

// stripeOf returns the lock of m's stripe. Mappings made one after the
// other sit 128 bytes apart; the multiply scatters them over the stripes.
func (t *Table) stripeOf(m *Mapping) *stripe {
	return &t.stripes[uint64(uintptr(unsafe.Pointer(m))>>7)*0x9e3779b97f4a7c15>>(64-8)]
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

// outboundHit is Hits.OutboundHit.
func (t *Table) outboundHit(proto Protocol, internal, remote netip.AddrPort, seg *Segment, bytes int, now time.Time) *Mapping {
	if !t.haveEpoch || proto.index() < 0 || !internal.Addr().Is4() || !remote.Addr().Is4() {
		return nil
	}
	k := t.outProbe(proto, internal, remote)
	rel := now.Sub(t.epoch)
	r := remKeyOf(proto, remote)
	var m *Mapping
	var l *stripe
	if t.cfg.PortOverloading && proto != ICMP && t.secondaries > 0 {
		// As Outbound: a mapping made for this remote alone, on a port
		// clash, comes first.
		k2 := k.forRemote(r)
		if m = t.out.findOut(hashOut(k2, t.seed), k2); m != nil {
			l = t.lockStripe(m)
			if !m.alive(rel) {
				l.Unlock()
				return nil // Outbound buries it
			}
		}
	}
	if m == nil {
		if m = t.out.findOut(hashOut(k, t.seed), k); m == nil {
			return nil
		}
		l = t.lockStripe(m)
		if !m.alive(rel) {
			l.Unlock()
			return nil
		}
	}
	defer l.Unlock()
	// A live session with remote: no new session, and no port clash to
	// look for (Outbound looks only for a remote without one).
	i := m.find(r)
	if i < 0 {
		return nil
	}
	s := m.sess(i)
	if !s.alive(rel) {
		return nil
	}
	// A TCP packet that moves the state is Outbound's (tcpTouch), as is
	// one after a RST (it may undo it); one that does not, like any
	// other, only moves the timers later, and the windows.
	if proto == TCP {
		if s.tcp&tcpRst != 0 || tcpAdvance(s.tcp, true, seg.Flags) != s.tcp {
			return nil
		}
		m.win(i).track(0, seg)
	}
	m.extend(i, rel+t.timeout(proto, s.tcp))
	m.countPacket(true)
	m.AddBytes(true, bytes)
	return m
}

// inboundHit is Hits.InboundHit.
func (t *Table) inboundHit(proto Protocol, external, remote netip.AddrPort, seg *Segment, bytes int, now time.Time) (m *Mapping, v Verdict, ok bool) {
	if !t.haveEpoch || proto.index() < 0 {
		return nil, 0, false
	}
	noMapping := DropNoMapping
	if proto == TCP && isConnRequest(seg.Flags) {
		noMapping = DropUnsolicitedSYN
	}
	if !external.Addr().Is4() || !remote.Addr().Is4() {
		return nil, noMapping, true
	}
	rel := now.Sub(t.epoch)
	r := remKeyOf(proto, remote)
	addr := external.Addr().As4()
	w := endpointWord(proto, addr, external.Port())
	h := hashExt(w, t.seed)
	if t.cfg.PortOverloading && t.shared[extKey{proto: proto, addr: addr, port: external.Port()}] > 0 {
		// Several mappings hold the endpoint: as match, the one with a
		// live session for remote takes it. Each is looked at under its
		// own stripe, one at a time (never two held: no lock order to
		// keep). Hits add no session and remove none, so the answer is
		// one the full path could give at some moment of the walk.
		var live *Mapping
		for c := range t.in.eachExt(h, w) {
			l := t.lockStripe(c)
			if !c.alive(rel) {
				l.Unlock()
				continue
			}
			if live == nil {
				live = c
			}
			if i := c.findLive(r, rel); i >= 0 {
				ok := t.acceptHit(c, i, proto, seg, bytes, rel)
				l.Unlock()
				if !ok {
					return nil, 0, false
				}
				return c, Accept, true
			}
			l.Unlock()
		}
		if live == nil {
			return nil, noMapping, true
		}
		return live, DropFiltered, true // APDF: none talks to remote
	}
	if m = t.in.findExt(h, w); m == nil {
		return nil, noMapping, true
	}
	l := t.lockStripe(m)
	defer l.Unlock()
	if !m.alive(rel) {
		return nil, noMapping, true
	}
	i, admitted := m.admits(t.filtering(proto), r, rel)
	if !admitted {
		return m, DropFiltered, true
	}
	if !t.acceptHit(m, i, proto, seg, bytes, rel) {
		return nil, 0, false
	}
	return m, Accept, true
}

// acceptHit is the rest of Inbound for a packet m admits (i: the
// position of the sender's live session, or -1), under m's stripe lock.
// It reports false, having changed nothing, where Inbound would change
// more than m's timers, counters and windows, or would judge a RST or
// FIN by the window.
func (t *Table) acceptHit(m *Mapping, i int, proto Protocol, seg *Segment, bytes int, rel time.Duration) bool {
	switch proto {
	case TCP:
		if i < 0 {
			if isConnRequest(seg.Flags) {
				return false // starts a session
			}
			break // admitted without one
		}
		s := m.sess(i)
		if s.tcp&tcpRst != 0 || seg.Flags&(FlagRST|FlagFIN) != 0 || tcpAdvance(s.tcp, false, seg.Flags) != s.tcp {
			return false
		}
		if w := m.win(i); w.ok(1, seg) {
			w.track(1, seg)
		}
		m.extend(i, rel+t.timeout(TCP, s.tcp))
	case UDP:
		if i >= 0 && m.sess(i).tcp&udpReplied == 0 {
			return false // the first reply changes the session's timer
		}
	}
	if proto != TCP && t.cfg.InboundRefresh {
		m.extend(i, rel+t.timeout(proto, udpReplied))
	}
	m.countPacket(false)
	m.AddBytes(false, bytes)
	return true
}
