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

// pair is the paired-pooling state of one internal address.
type pair struct {
	ext int32 // index of its external address
	n   int32 // its mappings, all protocols
}

// Table is the NAT's state. Create it with New.
type Table struct {
	cfg     Config
	ext     [][4]byte    // external addresses, as keys
	extAddr []netip.Addr // the same, for building endpoints

	out  index  // by internal side (mapping behaviour's key)
	in   index  // by external endpoint
	seed uint64 // of the index hashes

	pools [3][]*portPool // [protocol index][external address index], made on first use
	pairs map[[4]byte]pair
	rr    int // next external address for a new internal address (paired)
	rng   *rand.Rand

	// Port overloading: how many holders of an external endpoint there
	// are beyond the first, and how many mappings are for one remote
	// only (made on a clash; Outbound looks for them first).
	shared      map[extKey]int32
	secondaries int

	heap      []*Mapping // min-heap on Mapping.due
	epoch     time.Time  // the first now seen; Mapping.due counts from it
	haveEpoch bool
	graveyard []*Mapping // removed outside Expire, reported by the next Expire

	stripes     *[numStripes]stripe // the hit path's locks (hit.go), an allocation of their own
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
		rng:    rand.New(rand.NewPCG(uint64(c.Seed), streamOf(c.External))),
		seed:   rand.Uint64(),

		// Pointer-free and 32 KB, a size class of its own: 128-byte
		// aligned, so each stripe has its line pair (TestStripesAligned).
		stripes:     new([numStripes]stripe),
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

// outProbe builds the lookup key of the mapping behaviour: the remote fields it
// ignores are zero (RFC 4787 §4.1; ICMP queries are always endpoint
// independent, RFC 5508 REQ-1).
func (t *Table) outProbe(proto Protocol, internal, remote netip.AddrPort) outProbe {
	var rem [4]byte
	var remPort uint16
	b := t.cfg.Mapping
	if proto == ICMP {
		b = EndpointIndependent
	}
	switch b {
	case AddressAndPortDependent:
		remPort = remote.Port()
		rem = remote.Addr().As4()
	case AddressDependent:
		rem = remote.Addr().As4()
	}
	return probeOf(proto, internal.Addr().As4(), internal.Port(), rem, remPort)
}

// remKeyOf is the session key of a remote endpoint. ICMP sessions key on the
// address only: replies are filtered address-dependently (RFC 5508 REQ-1).
func remKeyOf(proto Protocol, remote netip.AddrPort) remKey {
	r := remKey{addr: remote.Addr().As4(), port: remote.Port()}
	if proto == ICMP {
		r.port = 0
	}
	return r
}

func (t *Table) filtering(proto Protocol) Behavior {
	if proto == ICMP {
		return AddressDependent
	}
	return t.cfg.Filtering
}

// unreplied is the UDP timer before a reply: UDPUnrepliedTimeout, at most
// UDPTimeout (so "--preset linux --udp-timeout 10s" means 10 s for all).
func (t *Table) unreplied() time.Duration { return min(t.cfg.UDPUnrepliedTimeout, t.cfg.UDPTimeout) }

// timeout is the idle timeout for a session of proto with state bits b
// (TCP: tcpSynOut...; UDP: udpReplied).
func (t *Table) timeout(proto Protocol, b uint8) time.Duration {
	switch proto {
	case UDP:
		if u := t.unreplied(); b&udpReplied == 0 && u > 0 {
			return u
		}
		return t.cfg.UDPTimeout
	case ICMP:
		return t.cfg.ICMPTimeout
	}
	// RFC 5382 REQ-5: established sessions get the long timer, all other
	// states (opening, closing) the transitory one; RFC 7857 §2.2: a reset
	// session stays for the transitory time too.
	if tcpStateOf(b) == stateEstablished {
		return t.cfg.TCPEstablishedTimeout
	}
	return t.cfg.TCPTransitoryTimeout
}

// Outbound handles a packet from internal to remote. It finds or creates the
// mapping (created reports a new one), records or refreshes the session for
// remote (which is also the filter permission), refreshes the timer (RFC 4787
// REQ-6: outbound always refreshes), advances the TCP state with tcpFlags (0
// for UDP and ICMP) and counts the packet. For ICMP, internal is (address,
// echo identifier). It returns ErrPortsExhausted when no external port is
// free; live mappings are never evicted.
func (t *Table) Outbound(proto Protocol, internal, remote netip.AddrPort, tcpFlags uint8, now time.Time) (m *Mapping, created bool, err error) {
	if proto.index() < 0 {
		return nil, false, ErrProtocol
	}
	if !internal.Addr().Is4() || !remote.Addr().Is4() {
		return nil, false, ErrNotIPv4
	}
	k := t.outProbe(proto, internal, remote)
	rel := t.since(now)
	r := remKeyOf(proto, remote)
	over := t.cfg.PortOverloading && proto != ICMP
	if over && t.secondaries > 0 {
		// A mapping of its own for this remote, made on a clash, wins.
		k2 := k.forRemote(r)
		if m2 := t.out.findOut(hashOut(k2, t.seed), k2); m2 != nil {
			if m2.alive(rel) {
				m = m2
			} else {
				t.bury(m2)
			}
		}
	}
	if m == nil {
		h := hashOut(k, t.seed)
		m = t.out.findOut(h, k)
		if m != nil && !m.alive(rel) {
			t.bury(m)
			m = nil
		}
		if m == nil {
			if m, err = t.create(proto, k.key(), h, r, rel); err != nil {
				return nil, false, err
			}
			created = true
		}
	}

	i := m.find(r)
	if (i < 0 || !m.sess(i).alive(rel)) && over && t.clashes(m, r, rel) {
		// Another holder of m's external port talks to r (m's own session
		// with r, if any, has lapsed): the reply tuple would not be
		// unique, so r gets a mapping of its own (Linux: get_unique_tuple
		// falls back to another port).
		i = -1
		k2 := k.forRemote(r)
		if m, err = t.create(proto, k2.key(), hashOut(k2, t.seed), r, rel); err != nil {
			return nil, false, err
		}
		created = true
	}
	if i < 0 {
		i = m.addSession(r, rel)
	} else if !m.sess(i).alive(rel) {
		m.sess(i).tcp = 0 // a lapsed session starts afresh
	}
	if proto == TCP {
		t.tcpTouch(m, i, true, tcpFlags, rel)
	} else {
		m.extend(i, rel+t.timeout(proto, m.sess(i).tcp))
	}
	if created {
		m.due = m.expires
		t.heapPush(m)
	}
	m.countPacket(true)
	return m, created, nil
}

// Inbound handles a packet from remote to external. It finds the mapping that
// holds external and applies the filtering behaviour (RFC 4787 §5): EIF admits
// any remote, ADF a remote whose address has a live session, APDF a remote
// with a live session of its own; ICMP replies are always filtered
// address-dependently. For TCP, packets of a known session advance its state
// and reset its timer; a SYN admitted from a remote with no session creates
// one (hole punching, simultaneous open); other admitted packets from such a
// remote pass without one. For UDP and ICMP, an accepted packet refreshes the
// mapping and the sender's permission when InboundRefresh is set. An accepted
// packet is counted.
//
// The mapping is returned with Accept and DropFiltered, nil otherwise. A SYN
// (without ACK) that finds no mapping gets DropUnsolicitedSYN (RFC 5382
// REQ-4).
func (t *Table) Inbound(proto Protocol, external, remote netip.AddrPort, tcpFlags uint8, now time.Time) (*Mapping, Verdict) {
	rel := now.Sub(t.epoch) // before the first mapping: unused, as none is found
	m, i, v := t.match(proto, external, remote, rel)
	switch v {
	case Accept:
	case DropNoMapping:
		if proto == TCP && isConnRequest(tcpFlags) {
			v = DropUnsolicitedSYN
		}
		return nil, v
	default:
		return m, v
	}
	m.countPacket(false)
	if proto == TCP {
		if i < 0 {
			if !isConnRequest(tcpFlags) {
				return m, Accept
			}
			r := remKeyOf(proto, remote)
			if i = m.find(r); i < 0 {
				i = m.addSession(r, rel)
			} else {
				m.sess(i).tcp = 0 // lapsed: start afresh
			}
		}
		t.tcpTouch(m, i, false, tcpFlags, rel)
		return m, Accept
	}
	if proto == UDP && i >= 0 && m.sess(i).tcp&udpReplied == 0 {
		// The first packet back: the session's timer becomes the replied
		// one, counted from its last refresh.
		s := m.sess(i)
		s.tcp |= udpReplied
		if u := t.unreplied(); u > 0 {
			m.extend(i, s.expires-u+t.cfg.UDPTimeout)
		}
	}
	// RFC 4787 REQ-6: inbound refresh is optional.
	if t.cfg.InboundRefresh {
		m.extend(i, rel+t.timeout(proto, udpReplied)) // an accepted packet back: the replied timer
	}
	return m, Accept
}

// PeekInbound is Inbound without side effects, for ICMP error translation: an
// error neither creates, refreshes nor deletes a mapping (RFC 5508 REQ-6).
// It never returns DropUnsolicitedSYN.
func (t *Table) PeekInbound(proto Protocol, external, remote netip.AddrPort, now time.Time) (*Mapping, Verdict) {
	m, _, v := t.match(proto, external, remote, now.Sub(t.epoch))
	return m, v
}

// PeekOutbound returns the live mapping Outbound would use for internal to
// remote, or nil; it has no side effects (RFC 5508 REQ-6).
func (t *Table) PeekOutbound(proto Protocol, internal, remote netip.AddrPort, now time.Time) *Mapping {
	if !internal.Addr().Is4() || !remote.Addr().Is4() {
		return nil
	}
	k := t.outProbe(proto, internal, remote)
	rel := now.Sub(t.epoch)
	if t.cfg.PortOverloading && proto != ICMP && t.secondaries > 0 {
		// As Outbound: a mapping made for this remote alone comes first.
		k2 := k.forRemote(remKeyOf(proto, remote))
		if m := t.out.findOut(hashOut(k2, t.seed), k2); m != nil && m.alive(rel) {
			return m
		}
	}
	m := t.out.findOut(hashOut(k, t.seed), k)
	if m == nil || !m.alive(rel) {
		return nil
	}
	return m
}

// match finds the live mapping holding external and applies its filter. It
// returns the position of remote's live session (or -1). rel is now in the
// table's time. An endpoint several mappings share (PortOverloading) goes
// to the one with a live session for remote.
func (t *Table) match(proto Protocol, external, remote netip.AddrPort, rel time.Duration) (*Mapping, int, Verdict) {
	if !external.Addr().Is4() || !remote.Addr().Is4() {
		return nil, -1, DropNoMapping
	}
	addr := external.Addr().As4()
	w := endpointWord(proto, addr, external.Port())
	h := hashExt(w, t.seed)
	r := remKeyOf(proto, remote)
	if t.cfg.PortOverloading && t.shared[extKey{proto: proto, addr: addr, port: external.Port()}] > 0 {
		var live *Mapping
		for c := range t.in.eachExt(h, w) {
			if !c.alive(rel) {
				continue
			}
			if live == nil {
				live = c
			}
			if i := c.findLive(r, rel); i >= 0 {
				return c, i, Accept
			}
		}
		if live == nil {
			return nil, -1, DropNoMapping
		}
		return live, -1, DropFiltered // APDF: none talks to remote
	}
	m := t.in.findExt(h, w)
	if m == nil || !m.alive(rel) {
		return nil, -1, DropNoMapping
	}
	i, ok := m.admits(t.filtering(proto), r, rel)
	if !ok {
		return m, -1, DropFiltered
	}
	return m, i, Accept
}

// forRemote reports whether k is the key of a mapping made for one remote
// on a port clash (PortOverloading, whose mapping is endpoint-independent,
// so its other keys carry no remote).
func (t *Table) forRemote(k outKey) bool {
	return t.cfg.PortOverloading && (k.rem != ([4]byte{}) || k.remPort != 0)
}

// talksTo reports whether a live holder of external endpoint k other than
// except has a live session with r (PortOverloading: the reply tuple
// (k, r) is taken).
func (t *Table) talksTo(k extKey, r remKey, rel time.Duration, except *Mapping) bool {
	for c := range t.in.eachExt(hashExt(k.word(), t.seed), k.word()) {
		if c != except && c.alive(rel) && c.findLive(r, rel) >= 0 {
			return true
		}
	}
	return false
}

// clashes reports whether another live holder of m's external endpoint
// has a live session with r.
func (t *Table) clashes(m *Mapping, r remKey, rel time.Duration) bool {
	k := m.extKey()
	return t.shared[k] > 0 && t.talksTo(k, r, rel, m)
}

// shareable reports whether a new mapping toward r may take external
// port on address e that live mappings hold: none of them talks to r.
func (t *Table) shareable(proto Protocol, e int, port uint16, r remKey, rel time.Duration) bool {
	return !t.talksTo(extKey{proto: proto, addr: t.ext[e], port: port}, r, rel, nil)
}

// Expire removes the mappings that have lapsed by now (Expires <= now) and
// frees their ports, calling fn (if not nil) for each. Mappings that Outbound
// removed on the way (a lapsed mapping in the way of a new one) are reported
// here too, so every mapping that leaves the table other than by Flush is
// reported exactly once. It returns how many were reported. fn must not
// change the table. The cost is O(log n) per removed mapping (plus, amortised,
// one heap step per live mapping per timeout period), not a scan of the table.
func (t *Table) Expire(now time.Time, fn func(*Mapping)) int {
	if t.haveEpoch {
		t.reapDue(now.Sub(t.epoch))
	}
	n := len(t.graveyard)
	if fn != nil {
		for _, m := range t.graveyard {
			fn(m)
		}
	}
	clear(t.graveyard)
	t.graveyard = t.graveyard[:0]
	return n
}

// reapDue moves every mapping lapsed at table time at to the graveyard and
// returns how many.
func (t *Table) reapDue(at time.Duration) int {
	n := 0
	for len(t.heap) > 0 && t.heap[0].due <= at {
		m := t.heap[0]
		if !m.alive(at) {
			t.bury(m)
			n++
			continue
		}
		m.due = m.expires
		t.heapDown(0)
	}
	return n
}

// setExpires sets a mapping's expiry, moving it up the heap if it got earlier
// than its due time. Moving Expires later needs no call: due stays below it.
func (t *Table) setExpires(m *Mapping, e time.Duration) {
	m.expires = e
	if m.hidx >= 0 && e < m.due {
		m.due = e
		t.heapUp(int(m.hidx))
	}
}

// tcpTouch applies a TCP packet (out: from inside) to session i of m: the
// state advances and the timer restarts. A packet that leaves the state as
// it is only moves the timer later: an earlier expiry would come from a
// reader whose clock (read once per batch) is a little behind another's,
// not from anything the flow did.
func (t *Table) tcpTouch(m *Mapping, i int, out bool, flags uint8, rel time.Duration) {
	s := m.sess(i)
	nb := tcpAdvance(s.tcp, out, flags)
	e := rel + t.timeout(TCP, nb)
	if nb == s.tcp && e <= s.expires {
		return
	}
	s.tcp = nb
	t.setTCPSessionExpiry(m, i, e)
}

// setTCPSessionExpiry sets a TCP session's expiry; the mapping lives while
// any session lives, so its Expires is the latest of its sessions'.
func (t *Table) setTCPSessionExpiry(m *Mapping, i int, e time.Duration) {
	old := m.setSessionExpiry(i, e)
	switch {
	case e > m.expires:
		m.expires = e
	case e < old && old == m.expires:
		t.setExpires(m, m.maxSessionExpiry())
	}
}

// create makes a new mapping for key k, the first remote it talks to
// being r; the caller adds the session, sets the expiry and pushes it on
// the heap. h is k's hash.
func (t *Table) create(proto Protocol, k outKey, h uint32, r remKey, now time.Duration) (*Mapping, error) {
	ext, port, err := t.allocate(proto, k.in, k.inPort, r, now)
	if err != nil {
		return nil, err
	}
	if p := t.pool(proto.index(), ext); p.isUsed(port) {
		t.shared[extKey{proto: proto, addr: t.ext[ext], port: port}]++ // overloaded
	} else {
		p.set(port)
	}
	if t.forRemote(k) {
		t.secondaries++
	}
	m := &Mapping{
		okey:    k,
		extPort: port,
		extAddr: t.ext[ext],
		ext:     uint16(ext),
		hidx:    -1,
		created: now,
		tab:     t,
	}
	t.out.insert(h, m)
	t.in.insert(hashExt(m.extWord(), t.seed), m)
	if t.cfg.Pooling == Paired {
		p, ok := t.pairs[k.in]
		if !ok {
			p.ext = int32(ext)
			t.rr = ext + 1
		}
		p.n++
		t.pairs[k.in] = p
	}
	return m, nil
}

// remove takes m out of every index and frees its port.
func (t *Table) remove(m *Mapping) {
	t.out.remove(hashOut(m.okey.probe(), t.seed), m)
	k := m.extKey()
	t.in.remove(hashExt(k.word(), t.seed), m)
	switch c := t.shared[k]; {
	case c > 1:
		t.shared[k] = c - 1
	case c == 1:
		delete(t.shared, k)
	default:
		t.pool(m.okey.proto.index(), int(m.ext)).clear(m.extPort)
	}
	if t.forRemote(m.okey) {
		t.secondaries--
	}
	if t.cfg.Pooling == Paired {
		p := t.pairs[m.okey.in]
		if p.n--; p.n <= 0 {
			delete(t.pairs, m.okey.in)
		} else {
			t.pairs[m.okey.in] = p
		}
	}
	if m.hidx >= 0 {
		t.heapRemove(int(m.hidx))
	}
}

// bury removes a lapsed mapping and keeps it for the next Expire to report.
func (t *Table) bury(m *Mapping) {
	t.remove(m)
	t.graveyard = append(t.graveyard, m)
}

func (t *Table) pool(pi, ext int) *portPool {
	p := t.pools[pi][ext]
	if p == nil {
		p = new(portPool)
		t.pools[pi][ext] = p
	}
	return p
}

// portRange returns the external port range for an internal port and the
// Sequential cursor it uses. RFC 4787 REQ-3a: ports below 1024 map into
// 1-1023 (with LinuxLowPorts 1-511 and 600-1023, as Linux does), others
// into PortLo-PortHi. ICMP identifiers use 1-65535.
func (t *Table) portRange(proto Protocol, inPort uint16) (lo, hi uint16, class int) {
	switch {
	case proto == ICMP:
		return 1, 65535, 0
	case inPort < 512 && t.cfg.LinuxLowPorts:
		return 1, 511, 0
	case inPort < 1024 && t.cfg.LinuxLowPorts:
		return 600, 1023, 2
	case inPort < 1024:
		return 1, 1023, 0
	}
	return t.cfg.PortLo, t.cfg.PortHi, 1
}

// allocate picks an external address and port for a new mapping. When none
// is free it removes lapsed mappings and tries once more, so a lapsed mapping
// never blocks a new one even before Expire runs.
func (t *Table) allocate(proto Protocol, ia [4]byte, inPort uint16, r remKey, now time.Duration) (int, uint16, error) {
	for attempt := 0; ; attempt++ {
		if ext, port, ok := t.pick(proto, ia, inPort, r, now); ok {
			return ext, port, nil
		}
		if attempt > 0 || t.reapDue(now) == 0 {
			// RFC 5508 REQ-8, RFC 6888 REQ-4: never steal a live mapping.
			return 0, 0, ErrPortsExhausted
		}
	}
}

// pick chooses the external address and port for a mapping whose first
// remote is r.
func (t *Table) pick(proto Protocol, ia [4]byte, inPort uint16, r remKey, now time.Duration) (int, uint16, bool) {
	n := len(t.ext)
	start, count := 0, n
	switch {
	case t.cfg.Pooling == Paired:
		// RFC 4787 REQ-2: every mapping of one internal address uses the same
		// external address while it holds any mapping (lapsed ones not yet
		// removed included); a new internal address takes the next one round
		// robin (or any with a free port).
		if p, ok := t.pairs[ia]; ok {
			start, count = int(p.ext), 1
		} else {
			start = t.rr % n
		}
	case n > 1:
		start = t.rng.IntN(n)
	}

	lo, hi, class := t.portRange(proto, inPort)
	mask := maskAll
	if t.cfg.Parity && proto != ICMP {
		// RFC 4787 REQ-4: keep the port's parity (RTP even, RTCP odd).
		mask = maskEven
		if inPort%2 == 1 {
			mask = maskOdd
		}
	}
	mode := t.cfg.PortAssignment
	if proto == ICMP {
		mode = Preserve // identifiers: keep if free (RFC 5508 REQ-1), else random
	}
	pi := proto.index()

	if mode == Preserve && inPort >= lo && inPort <= hi {
		// Port preservation may try every address of the pool before giving
		// up the port (RFC 4787 §4.2.1); paired pooling allows only one.
		for j := range count {
			e := (start + j) % n
			if t.takeable(proto, e, inPort, now) {
				return e, inPort, true
			}
		}
		if t.cfg.PortOverloading && proto != ICMP {
			// Held, but maybe not toward r: share it (Linux keeps the
			// port whenever the reply tuple stays unique).
			for j := range count {
				e := (start + j) % n
				if t.shareable(proto, e, inPort, r, now) {
					return e, inPort, true
				}
			}
		}
	}
	for j := range count {
		e := (start + j) % n
		p := t.pool(pi, e)
		var port uint16
		var ok bool
		if mode == Sequential {
			if port, ok = p.nextFree(lo, hi, p.last[class]+1, mask); ok {
				p.last[class] = port
			}
		} else {
			// Random, and Preserve after a clash (as Linux does).
			port, ok = p.random(lo, hi, mask, t.rng)
		}
		if ok {
			return e, port, true
		}
	}
	return 0, 0, false
}

// takeable reports whether port is free on external address e, removing a
// lapsed mapping that still holds it.
func (t *Table) takeable(proto Protocol, e int, port uint16, now time.Duration) bool {
	p := t.pool(proto.index(), e)
	k := extKey{proto: proto, addr: t.ext[e], port: port}
	for p.isUsed(port) {
		// Bury lapsed holders until the port is free or a live one holds
		// it (with PortOverloading there may be several).
		var lapsed *Mapping
		for c := range t.in.eachExt(hashExt(k.word(), t.seed), k.word()) {
			if c.alive(now) {
				return false
			}
			lapsed = c
		}
		if lapsed == nil {
			return false
		}
		t.bury(lapsed)
	}
	return true
}

// The expiry heap: a min-heap of mappings on due, each knowing its position.
// due never exceeds Expires, so the top is checked no later than the first
// mapping to lapse; a live top is rescheduled at its Expires. Refreshes on
// the hot path only move Expires later and never touch the heap.

func (t *Table) heapLess(i, j int) bool { return t.heap[i].due < t.heap[j].due }

func (t *Table) heapSwap(i, j int) {
	h := t.heap
	h[i], h[j] = h[j], h[i]
	h[i].hidx = int32(i)
	h[j].hidx = int32(j)
}

func (t *Table) heapPush(m *Mapping) {
	m.hidx = int32(len(t.heap))
	t.heap = append(t.heap, m)
	t.heapUp(len(t.heap) - 1)
}

func (t *Table) heapUp(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !t.heapLess(i, parent) {
			return
		}
		t.heapSwap(i, parent)
		i = parent
	}
}

func (t *Table) heapDown(i int) bool {
	start := i
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && t.heapLess(r, l) {
			c = r
		}
		if !t.heapLess(c, i) {
			break
		}
		t.heapSwap(i, c)
		i = c
	}
	return i > start
}

func (t *Table) heapRemove(i int) {
	last := len(t.heap) - 1
	m := t.heap[i]
	if i != last {
		t.heapSwap(i, last)
	}
	t.heap[last] = nil
	t.heap = t.heap[:last]
	m.hidx = -1
	if i != last && !t.heapDown(i) {
		t.heapUp(i)
	}
}
