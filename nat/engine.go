// Package nat is gonat's translation engine: it rewrites packets in place
// between inside ports (private hosts) and one outside port, using the
// mappings and filters of package table, and moves batches of packets
// between TUN devices (Router).
//
// The per-packet path decodes once into a header.Parsed on the stack,
// rewrites addresses, ports and checksums in place (RFC 1624 incremental
// updates) and allocates nothing.
package nat

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// Port identifies one of the engine's ports: Outside, or an inside port
// numbered from 1 in the order of Config.Inside.
type Port int

// Outside is the port towards the public side.
const Outside Port = 0

// InsidePort describes the hosts behind one inside port.
type InsidePort struct {
	// Hosts are the inside hosts' addresses with their network prefix
	// (10.0.0.2/24). Packets to one of these addresses leave by this port.
	Hosts []netip.Prefix
	// Gateway is the NAT's own address on this side: the source of the
	// ICMP errors it generates (Time Exceeded, so traceroute shows the NAT
	// as a hop; 3/13 when ports run out).
	Gateway netip.Addr
}

// Config is the engine's whole configuration.
type Config struct {
	Table  table.Config
	Inside []InsidePort
}

// Validate checks the parts of the configuration the table does not know
// about: addresses that would make routing ambiguous (RFC 4787 REQ-7:
// overlapping inside and outside spaces are refused at start-up).
func (c *Config) Validate() error {
	if len(c.Inside) == 0 {
		return errors.New("no inside port")
	}
	seen := map[netip.Addr]int{}
	for i, ip := range c.Inside {
		if len(ip.Hosts) == 0 {
			return fmt.Errorf("inside port %d: no host address", i+1)
		}
		for _, h := range ip.Hosts {
			a := h.Addr()
			if !a.Is4() {
				return fmt.Errorf("inside address %s: only IPv4 is supported", h)
			}
			if j, dup := seen[a]; dup {
				return fmt.Errorf("inside address %s given twice (ports %d and %d)", a, j+1, i+1)
			}
			seen[a] = i
			for _, e := range c.Table.External {
				if h.Contains(e) {
					return fmt.Errorf("external address %s lies inside the inside network %s", e, h.Masked())
				}
			}
		}
		if ip.Gateway.IsValid() {
			if _, dup := seen[ip.Gateway]; dup {
				return fmt.Errorf("gateway %s is also a host address", ip.Gateway)
			}
		}
	}
	return nil
}

// Result tells the caller what to do with a processed packet.
type Result struct {
	Verdict Verdict
	// Out is the port to send the (rewritten) packet to when Verdict is
	// Forward.
	Out Port
	// ReplyLen > 0 means reply[:ReplyLen] holds an ICMP error the NAT
	// generated, to be sent back out of the port the packet came in on.
	ReplyLen int
}

// Engine translates packets. It is safe for concurrent use: the router
// calls it from a goroutine per device queue, each through a Queue of
// its own.
//
// Locking: each Queue has a lock of its own (its slot). A packet of an
// existing mapping that changes nothing but that mapping
// (table.OutboundHit, InboundHit: most packets) takes only its queue's
// slot, and the table's lock for that mapping's stripe (one of 256), so
// readers of different queues meet only on the same flow, or on two
// flows whose mappings share a stripe. Anything else (a new mapping, a
// TCP state change, fragments, ICMP errors, expiry, queries) takes every
// slot, in order (lock), and has the engine to itself.
type Engine struct {
	// slots are every Queue's locks, the default queue's first. NewQueue
	// adds one, holding all the others: lock takes the list it finds and
	// checks it is still the list once it holds them all.
	slots  atomic.Pointer[[]*slot]
	locked []*slot // the slots lock took, for unlock; guarded by them
	tab    *table.Table
	frags  fragCache
	held   fragHold

	q0 Queue // for Engine.Process and Prefetch

	cfg Config
	// hairpin is cfg.Table.Hairpin, written with the table under the
	// lock; packets read it first without the lock, and again under it.
	hairpin  atomic.Bool
	external []netip.Addr
	hosts    addrIndex // inside host address -> port
	extIndex addrIndex // external address -> its position in external
	inside   []InsidePort
	nets     []netip.Prefix // the inside networks and gateways, each once

	counters [numVerdicts]atomic.Uint64
	// lockWaits counts the packets and queries that found a lock they
	// needed held (LockWaits).
	lockWaits atomic.Uint64

	observer atomic.Pointer[func(Event)]
	tracing  atomic.Bool

	// ipID numbers the non-atomic datagrams (DF clear or fragmented) that
	// leave through the external addresses: inside hosts number theirs
	// independently, and two of them behind one address could otherwise
	// send fragments the receiver cannot tell apart (RFC 7857 §10, RFC
	// 6864 §5.3). Starts at a random value. Queues take it in blocks
	// (Queue.nextID).
	ipID atomic.Uint32
}

// New builds an engine. It does not touch any device.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tab, err := table.New(cfg.Table)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		tab:      tab,
		cfg:      cfg,
		external: append([]netip.Addr(nil), tab.Config().External...),
		inside:   cfg.Inside,
	}
	e.q0 = Queue{e: e, slot: new(slot)}
	e.slots.Store(&[]*slot{e.q0.slot})
	tab.CountStripeWaits(&e.lockWaits)
	e.cfg.Table = tab.Config()
	e.hairpin.Store(e.cfg.Table.Hairpin)
	e.ipID.Store(rand.Uint32())
	hosts := make(map[netip.Addr]uint32)
	for i, ip := range cfg.Inside {
		e.nets = appendNet(e.nets, netip.PrefixFrom(ip.Gateway, 32))
		for _, h := range ip.Hosts {
			hosts[h.Addr()] = uint32(i + 1) // IPv4: Validate saw to it
			e.nets = appendNet(e.nets, h.Masked())
		}
	}
	e.hosts = newAddrIndex(hosts)
	exts := make(map[netip.Addr]uint32, len(e.external))
	for i, a := range e.external {
		exts[a] = uint32(i)
	}
	e.extIndex = newAddrIndex(exts)
	return e, nil
}

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

// idBlock is how many IP identifications a queue takes from the engine's
// counter at a time: one write to a shared line per idBlock non-atomic
// datagrams, not one per datagram.
const idBlock = 64

// nextID returns the identification for a non-atomic datagram that
// leaves as segs datagrams (a DF-clear super-packet, which the kernel
// numbers ID, ID+1, ...). Call it with q's slot held.
//
// A block goes stale once the other queues have moved the counter almost
// round (by 2^16 less two blocks): its numbers would come round again
// elsewhere, and two datagrams a moment apart could share one (found in
// review: TestIPIDStaleBlock).
func (q *Queue) nextID(segs int) uint16 {
	if segs > 1 {
		return uint16(q.e.ipID.Add(uint32(segs)) - uint32(segs)) // a run of its own
	}
	if q.idLeft == 0 || q.e.ipID.Load()-q.idTaken > 1<<16-2*idBlock {
		q.idTaken = q.e.ipID.Add(idBlock)
		q.idNext = uint16(q.idTaken - idBlock)
		q.idLeft = idBlock
	}
	q.idLeft--
	q.idNext++
	return q.idNext - 1
}

// Config returns the configuration in force (with defaults filled in).
func (e *Engine) Config() Config {
	e.lock()
	defer e.unlock()
	return e.cfg
}

// SetTableConfig replaces the NAT behaviour at run time. Existing mappings
// are dropped (a behaviour change invalidates them), as a NAT reboot would.
// The external addresses must stay the same.
func (e *Engine) SetTableConfig(c table.Config) error {
	tab, err := table.New(c)
	if err != nil {
		return err
	}
	nc := tab.Config()
	if len(nc.External) != len(e.external) {
		return errors.New("external addresses cannot change at run time")
	}
	for i := range nc.External {
		if nc.External[i] != e.external[i] {
			return errors.New("external addresses cannot change at run time")
		}
	}
	tab.CountStripeWaits(&e.lockWaits)
	e.lock()
	e.tab = tab
	e.cfg.Table = nc
	e.frags = fragCache{}
	e.held.reset()
	e.hairpin.Store(nc.Hairpin)
	e.unlock()
	return nil
}

// Flush drops every mapping (NAT rebinding).
func (e *Engine) Flush() {
	e.lock()
	e.tab.Flush()
	e.frags = fragCache{}
	e.held.reset()
	e.unlock()
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

// Count returns how many packets got verdict v.
func (e *Engine) Count(v Verdict) uint64 {
	if v >= numVerdicts {
		return 0
	}
	n := e.counters[v].Load()
	if v == Forward {
		for _, s := range *e.slots.Load() { // slots are only ever added
			n += s.forwarded.Load()
		}
	}
	return n
}

// Mappings calls fn with a snapshot of every live mapping.
func (e *Engine) Mappings(now time.Time, fn func(MappingInfo)) {
	var ms []MappingInfo
	e.lock()
	e.tab.All(func(m *table.Mapping) bool {
		if m.Expires().After(now) {
			ms = append(ms, snapshot(m))
		}
		return true
	})
	e.unlock()
	for _, m := range ms {
		fn(m)
	}
}

// PoolUsage reports how many external ports (ICMP: identifiers) of proto
// are in use, and how many there are.
func (e *Engine) PoolUsage(proto table.Protocol) (used, size int) {
	e.lock()
	defer e.unlock()
	return e.tab.PoolUsage(proto)
}

// Expire removes lapsed mappings and reports each as an EventExpired.
func (e *Engine) Expire(now time.Time) int {
	obs := e.observer.Load()
	var gone []MappingInfo
	e.lock()
	n := e.tab.Expire(now, func(m *table.Mapping) {
		if obs != nil {
			gone = append(gone, snapshot(m))
		}
	})
	e.unlock()
	if obs != nil {
		for _, m := range gone {
			(*obs)(Event{Kind: EventExpired, Time: now, Proto: m.Proto, Mapping: m})
		}
	}
	return n
}

func (e *Engine) isExternal(a netip.Addr) bool {
	_, ok := e.extIndex.lookup(a)
	return ok
}

// insidePort returns the inside port of host address a.
func (e *Engine) insidePort(a netip.Addr) (Port, bool) {
	p, ok := e.hosts.lookup(a)
	return Port(p), ok
}

// inInsideNetwork reports whether a lies in an inside network without
// being a known host or gateway: such packets are never sent outside
// (REQ-7: never mis-routed).
func (e *Engine) inInsideNetwork(a netip.Addr) bool {
	for _, n := range e.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// isGateway reports whether a is the NAT's own address on an inside port.
func (e *Engine) isGateway(a netip.Addr) bool {
	for _, ip := range e.inside {
		if ip.Gateway.IsValid() && ip.Gateway == a {
			return true
		}
	}
	return false
}

// appendNet adds n to nets unless it is there: a thousand hosts on one
// /24 make one network to check per packet, not a thousand.
func appendNet(nets []netip.Prefix, n netip.Prefix) []netip.Prefix {
	if !n.IsValid() {
		return nets
	}
	for _, x := range nets {
		if x == n {
			return nets
		}
	}
	return append(nets, n)
}

func (e *Engine) gateway(in Port) netip.Addr {
	if in >= 1 && int(in) <= len(e.inside) {
		return e.inside[in-1].Gateway
	}
	return netip.Addr{}
}

func (e *Engine) done(v Verdict, out Port, reply int) Result {
	e.counters[v].Add(1)
	return Result{Verdict: v, Out: out, ReplyLen: reply}
}

// Process handles one packet that arrived on port in, rewriting it in
// place. reply is scratch space for an ICMP error the NAT may generate
// (at least 576 bytes). now is read once per batch by the caller.
// Readers running side by side should each use a Queue of their own.
func (e *Engine) Process(in Port, b []byte, reply []byte, now time.Time) Result {
	return e.q0.Process(in, b, reply, now)
}

// Prefetch is Queue.Prefetch on the engine's default queue.
func (e *Engine) Prefetch(in Port, pkts [][]byte) { e.q0.Prefetch(in, pkts) }

// Process is Engine.Process through q.
func (q *Queue) Process(in Port, b []byte, reply []byte, now time.Time) Result {
	return q.process(in, b, reply, now, 1)
}

// process is Process for a packet that leaves as segs datagrams (a
// super-packet the kernel will segment), which matters to the IP
// identifications a non-atomic one uses up.
func (q *Queue) process(in Port, b []byte, reply []byte, now time.Time, segs int) Result {
	e := q.e
	var p header.Parsed
	p.Decode(b)
	if p.Status != header.OK {
		if p.Status == header.BadVersion {
			return e.drop(in, &p, DropNotIPv4, now)
		}
		return e.drop(in, &p, DropMalformed, now)
	}
	b = b[:p.Length]
	if in == Outside {
		return e.inbound(q, b, &p, reply, now)
	}
	return e.outbound(q, in, b, &p, reply, now, segs)
}

// Prefetch starts the mapping-table loads that translating a batch of
// packets from port in will make, so that with a big table the batch pays
// its cache misses together rather than one per packet (see
// table.Prefetch). Call it with the batch just read, then Process each
// packet. It changes nothing; with a small table it returns at once.
func (q *Queue) Prefetch(in Port, pkts [][]byte) {
	q.rlock()
	defer q.slot.Unlock()
	tab := q.e.tab
	if !tab.PrefetchHelps() {
		return
	}
	keys := q.prefetchKeys[:0]
	for _, b := range pkts {
		// Flow, not Decode: this pass only needs the flow, and Decode's
		// full record cost ~10 ns per packet of it at 1M mappings.
		proto, src, dst, ok := header.Flow(b)
		if !ok {
			continue
		}
		// Filled in place: a key built on the stack and then copied into
		// the slice is read back with wider loads than it was written
		// with, a store-forwarding stall per packet (perf annotate: half
		// of this loop's time).
		keys = append(keys, table.LookupKey{})
		k := &keys[len(keys)-1]
		k.Proto = table.Protocol(proto)
		if in != Outside {
			k.Outbound, k.Local, k.Remote = true, src, dst
		} else {
			k.Local = dst
		}
	}
	tab.Prefetch(keys)
	q.prefetchKeys = keys[:0]
}

func (e *Engine) drop(in Port, p *header.Parsed, v Verdict, now time.Time) Result {
	if e.tracing.Load() {
		e.emit(Event{Kind: EventDrop, Time: now, Verdict: v, In: in, Proto: table.Protocol(p.IPProto), Src: p.Src, Dst: p.Dst})
	}
	return e.done(v, 0, 0)
}

// timeExceeded answers a packet whose TTL ran out here (RFC 5508 REQ-10,
// RFC 1812 5.3.1): traceroute shows the NAT as a hop.
func (e *Engine) timeExceeded(in Port, b []byte, p *header.Parsed, src netip.Addr, reply []byte, now time.Time) Result {
	n := 0
	if src.IsValid() {
		n = header.BuildICMPError(reply, b, src, header.ICMPTimeExceeded, 0, 0)
	}
	if e.tracing.Load() {
		e.emit(Event{Kind: EventDrop, Time: now, Verdict: DropTTLExceeded, In: in, Proto: table.Protocol(p.IPProto), Src: p.Src, Dst: p.Dst})
	}
	return e.done(DropTTLExceeded, 0, n)
}

func (e *Engine) outbound(q *Queue, in Port, b []byte, p *header.Parsed, reply []byte, now time.Time, segs int) Result {
	dst := p.Dst.Addr()
	// Between inside hosts: routed, not translated.
	if out, ok := e.insidePort(dst); ok {
		if p.TTL <= 1 {
			return e.timeExceeded(in, b, p, e.gateway(in), reply, now)
		}
		header.IPv4(b).DecTTL()
		return e.done(Forward, out, 0)
	}
	if e.inInsideNetwork(dst) {
		// The gateways are in the inside networks: a packet to one is
		// for the NAT, which runs no services of its own.
		if e.isGateway(dst) {
			return e.drop(in, p, DropLocal, now)
		}
		return e.drop(in, p, DropNoRoute, now)
	}
	if _, ok := e.insidePort(p.Src.Addr()); !ok {
		// Spoofed or misconfigured source: translating it would create
		// mappings for hosts we cannot reach back.
		return e.drop(in, p, DropNoRoute, now)
	}
	if p.TTL <= 1 {
		return e.timeExceeded(in, b, p, e.gateway(in), reply, now)
	}
	proto := table.Protocol(p.IPProto)
	switch p.IPProto {
	case header.ProtoUDP, header.ProtoTCP, header.ProtoICMP:
	default:
		return e.drop(in, p, DropUnsupported, now)
	}
	// Later fragments carry no transport header (ICMPType reads 0):
	// they follow their first fragment.
	if p.IsFragment() && !p.IsFirstFragment() {
		return e.outboundFragment(in, b, p, now)
	}
	if p.IPProto == header.ProtoICMP {
		if header.IsICMPError(p.ICMPType) {
			return e.outboundICMPError(in, b, p, now)
		}
		if !header.IsICMPQuery(p.ICMPType) {
			return e.drop(in, p, DropUnsupported, now)
		}
	}
	if !p.HasPorts() {
		return e.drop(in, p, DropMalformed, now)
	}
	before := [2]netip.AddrPort{p.Src, p.Dst}
	hairpin := e.isExternal(dst)
	if hairpin && !e.hairpin.Load() { // without the lock: checked again under it
		return e.drop(in, p, DropHairpinOff, now)
	}
	// A non-atomic datagram gets an identification of the NAT's; a first
	// fragment leaves it for the rest of its datagram (the key is the
	// original identification, so it is read before the rewrite).
	var newID uint16
	nonAtomic := !p.DontFrag || p.MoreFrags

	if !hairpin && !p.MoreFrags {
		q.rlock()
		m := e.tab.OutboundHit(proto, p.Src, p.Dst, p.TCPFlags, len(b), now)
		if m != nil && nonAtomic {
			newID = q.nextID(segs)
		}
		q.slot.Unlock()
		if m != nil {
			return e.translatedOut(q, in, b, p, m.External(), nonAtomic, newID, before, false, now)
		}
	}

	e.lock()
	if hairpin && !e.hairpin.Load() {
		// Read again under the lock: the setting read above may have
		// been changed, with the table, while this packet waited.
		e.unlock()
		return e.drop(in, p, DropHairpinOff, now)
	}
	m, created, err := e.tab.Outbound(proto, p.Src, p.Dst, p.TCPFlags, now)
	if err != nil {
		e.unlock()
		// RFC 5508 REQ-8 / RFC 6888: say so with 3/13, never steal a
		// live mapping.
		n := header.BuildICMPError(reply, b, e.gateway(in), header.ICMPDestUnreachable, header.ICMPCodeAdminProhibited, 0)
		if e.tracing.Load() {
			e.emit(Event{Kind: EventDrop, Time: now, Verdict: DropPoolExhausted, In: in, Proto: proto, Src: p.Src, Dst: p.Dst})
		}
		return e.done(DropPoolExhausted, 0, n)
	}
	m.AddBytes(true, len(b))
	ext := m.External()
	if nonAtomic {
		newID = q.nextID(segs) // q's slot is among those held
	}
	var info MappingInfo
	if created {
		info = snapshot(m)
	}
	if p.MoreFrags && !hairpin {
		e.firstFragment(fragKeyOf(p), b, p, ext.Addr(), true, Outside, fragWay{id: newID}, now)
	}
	var target *table.Mapping
	var tv table.Verdict
	if hairpin {
		// The packet turns around inside the NAT: it leaves with the
		// sender's external endpoint as source (REQ-9a) and enters the
		// destination mapping through its filter like any inbound packet.
		target, tv = e.tab.Inbound(proto, p.Dst, ext, p.TCPFlags, now)
		if tv == table.Accept {
			target.AddBytes(false, len(b))
		}
	}
	var internal netip.AddrPort
	if target != nil {
		internal = target.Internal()
	}
	if p.MoreFrags && hairpin && tv == table.Accept {
		// The rest of the datagram takes the same way round (later
		// fragments have no ports to find the target by).
		if port, ok := e.insidePort(internal.Addr()); ok {
			e.firstFragment(fragKeyOf(p), b, p, ext.Addr(), true, Outside, fragWay{id: newID, dst: internal.Addr(), out: port}, now)
		}
	}
	e.unlock()

	if created {
		e.emit(Event{Kind: EventCreated, Time: now, Proto: proto, Mapping: info})
	}
	if !hairpin {
		return e.translatedOut(q, in, b, p, ext, nonAtomic, newID, before, created, now)
	}
	rewriteOut(b, p, ext, nonAtomic, newID)
	if tv != table.Accept {
		return e.drop(in, p, tableVerdict(tv), now)
	}
	header.RewriteDst(b, p, internal)
	out, ok := e.insidePort(internal.Addr())
	if !ok {
		return e.drop(in, p, DropNoRoute, now)
	}
	if e.tracing.Load() {
		e.emit(Event{Kind: EventTranslated, Time: now, In: in, Out: out, Proto: proto, Src: before[0], Dst: before[1],
			NewSrc: p.Src, NewDst: p.Dst, Created: created, Hairpin: true})
	}
	return e.done(Forward, out, 0)
}

// translatedOut rewrites an outbound packet that is not hairpinned to
// leave from external endpoint ext, and forwards it; created says
// whether the packet made its mapping.
func (e *Engine) translatedOut(q *Queue, in Port, b []byte, p *header.Parsed, ext netip.AddrPort, nonAtomic bool, newID uint16, before [2]netip.AddrPort, created bool, now time.Time) Result {
	rewriteOut(b, p, ext, nonAtomic, newID)
	if e.tracing.Load() {
		e.emit(Event{Kind: EventTranslated, Time: now, In: in, Out: Outside, Proto: table.Protocol(p.IPProto), Src: before[0], Dst: before[1],
			NewSrc: p.Src, NewDst: p.Dst, Created: created})
	}
	q.slot.forwarded.Add(1)
	return Result{Verdict: Forward, Out: Outside}
}

func (e *Engine) inbound(q *Queue, b []byte, p *header.Parsed, reply []byte, now time.Time) Result {
	dst := p.Dst.Addr()
	if !e.isExternal(dst) {
		return e.drop(Outside, p, DropNoRoute, now)
	}
	if p.TTL <= 1 {
		return e.timeExceeded(Outside, b, p, dst, reply, now)
	}
	proto := table.Protocol(p.IPProto)
	switch p.IPProto {
	case header.ProtoUDP, header.ProtoTCP, header.ProtoICMP:
	default:
		return e.drop(Outside, p, DropUnsupported, now)
	}
	if p.IsFragment() && !p.IsFirstFragment() {
		return e.inboundFragment(b, p, now)
	}
	if p.IPProto == header.ProtoICMP {
		if header.IsICMPError(p.ICMPType) {
			return e.inboundICMPError(b, p, now)
		}
		if !header.IsICMPQuery(p.ICMPType) {
			return e.drop(Outside, p, DropUnsupported, now)
		}
	}
	if !p.HasPorts() {
		return e.drop(Outside, p, DropMalformed, now)
	}
	before := [2]netip.AddrPort{p.Src, p.Dst}
	if !p.MoreFrags {
		q.rlock()
		m, tv, ok := e.tab.InboundHit(proto, p.Dst, p.Src, p.TCPFlags, len(b), now)
		q.slot.Unlock()
		if ok {
			if tv != table.Accept {
				return e.drop(Outside, p, tableVerdict(tv), now)
			}
			return e.translatedIn(q, b, p, m.Internal(), before, now)
		}
	}
	e.lock()
	m, tv := e.tab.Inbound(proto, p.Dst, p.Src, p.TCPFlags, now)
	if tv != table.Accept {
		e.unlock()
		return e.drop(Outside, p, tableVerdict(tv), now)
	}
	m.AddBytes(false, len(b))
	internal := m.Internal()
	if p.MoreFrags {
		// translatedIn looks the port up again; only a first fragment
		// needs it here, under the lock.
		if out, ok := e.insidePort(internal.Addr()); ok {
			e.firstFragment(fragKeyOf(p), b, p, internal.Addr(), false, out, fragWay{}, now)
		}
	}
	e.unlock()
	return e.translatedIn(q, b, p, internal, before, now)
}

// rewriteOut makes an outbound packet leave from external endpoint ext,
// with identification newID if it is non-atomic, one hop on.
func rewriteOut(b []byte, p *header.Parsed, ext netip.AddrPort, nonAtomic bool, newID uint16) {
	if nonAtomic {
		header.RewriteID(b, p, newID)
	}
	header.RewriteSrc(b, p, ext)
	header.IPv4(b).DecTTL()
}

// translatedIn rewrites an inbound packet for internal endpoint internal
// and forwards it to that host's port.
func (e *Engine) translatedIn(q *Queue, b []byte, p *header.Parsed, internal netip.AddrPort, before [2]netip.AddrPort, now time.Time) Result {
	out, ok := e.insidePort(internal.Addr())
	if !ok {
		return e.drop(Outside, p, DropNoRoute, now)
	}
	header.RewriteDst(b, p, internal)
	header.IPv4(b).DecTTL()
	if e.tracing.Load() {
		e.emit(Event{Kind: EventTranslated, Time: now, In: Outside, Out: out, Proto: table.Protocol(p.IPProto), Src: before[0], Dst: before[1], NewSrc: p.Src, NewDst: p.Dst})
	}
	q.slot.forwarded.Add(1)
	return Result{Verdict: Forward, Out: out}
}

// inboundICMPError translates an error about a packet we sent out
// (RFC 5508 REQ-4/5): the embedded packet's source is our external
// endpoint; it becomes the inside endpoint again, and the outer
// destination the inside host. Checked first (REQ-3), looked up without
// refreshing or creating anything (REQ-6).
func (e *Engine) inboundICMPError(b []byte, p *header.Parsed, now time.Time) Result {
	if p.InnerOff == 0 {
		return e.drop(Outside, p, DropMalformed, now)
	}
	if !header.ICMPChecksumValid(b, p) || !header.InnerIPChecksumValid(b, p) {
		return e.drop(Outside, p, DropBadChecksum, now)
	}
	if p.InnerSrc.Addr() != p.Dst.Addr() {
		return e.drop(Outside, p, DropNoMapping, now)
	}
	proto := table.Protocol(p.InnerProto)
	e.lock()
	m, tv := e.tab.PeekInbound(proto, p.InnerSrc, p.InnerDst, now)
	var internal netip.AddrPort
	if m != nil && tv == table.Accept {
		internal = m.Internal()
	}
	e.unlock()
	if m == nil {
		return e.drop(Outside, p, DropNoMapping, now)
	}
	if tv != table.Accept {
		return e.drop(Outside, p, tableVerdict(tv), now)
	}
	out, ok := e.insidePort(internal.Addr())
	if !ok {
		return e.drop(Outside, p, DropNoRoute, now)
	}
	before := [2]netip.AddrPort{p.Src, p.Dst}
	header.RewriteInnerSrc(b, p, internal)
	header.RewriteDst(b, p, netip.AddrPortFrom(internal.Addr(), 0))
	header.IPv4(b).DecTTL()
	if e.tracing.Load() {
		e.emit(Event{Kind: EventTranslated, Time: now, In: Outside, Out: out, Proto: table.ICMP, Src: before[0], Dst: before[1], NewSrc: p.Src, NewDst: p.Dst, ICMPError: true})
	}
	return e.done(Forward, out, 0)
}

// outboundICMPError translates an inside host's error about a packet it
// received from outside (its kernel's port unreachable, say): the embedded
// packet's destination was our external endpoint.
func (e *Engine) outboundICMPError(in Port, b []byte, p *header.Parsed, now time.Time) Result {
	if p.InnerOff == 0 {
		return e.drop(in, p, DropMalformed, now)
	}
	if !header.ICMPChecksumValid(b, p) || !header.InnerIPChecksumValid(b, p) {
		return e.drop(in, p, DropBadChecksum, now)
	}
	if p.InnerDst.Addr() != p.Src.Addr() {
		return e.drop(in, p, DropNoMapping, now)
	}
	proto := table.Protocol(p.InnerProto)
	e.lock()
	m := e.tab.PeekOutbound(proto, p.InnerDst, p.InnerSrc, now)
	var ext netip.AddrPort
	if m != nil {
		ext = m.External()
	}
	e.unlock()
	if m == nil {
		return e.drop(in, p, DropNoMapping, now)
	}
	before := [2]netip.AddrPort{p.Src, p.Dst}
	header.RewriteInnerDst(b, p, ext)
	header.RewriteSrc(b, p, netip.AddrPortFrom(ext.Addr(), 0))
	header.IPv4(b).DecTTL()
	if e.tracing.Load() {
		e.emit(Event{Kind: EventTranslated, Time: now, In: in, Out: Outside, Proto: table.ICMP, Src: before[0], Dst: before[1], NewSrc: p.Src, NewDst: p.Dst, ICMPError: true})
	}
	return e.done(Forward, Outside, 0)
}

// Fragments after the first carry no ports: they follow the address their
// first fragment was translated to, remembered by (src, dst, proto, id).
func (e *Engine) outboundFragment(in Port, b []byte, p *header.Parsed, now time.Time) Result {
	ext, w, ok, held := e.laterFragment(b, p, now)
	switch {
	case held:
		return e.done(HeldFragment, 0, 0)
	case !ok:
		return e.drop(in, p, DropFragment, now)
	}
	header.RewriteID(b, p, w.id)
	header.RewriteSrc(b, p, netip.AddrPortFrom(ext, 0))
	out := Outside
	if w.dst.IsValid() { // hairpinned
		header.RewriteDst(b, p, netip.AddrPortFrom(w.dst, 0))
		out = w.out
	}
	header.IPv4(b).DecTTL()
	return e.done(Forward, out, 0)
}

func (e *Engine) inboundFragment(b []byte, p *header.Parsed, now time.Time) Result {
	internal, _, ok, held := e.laterFragment(b, p, now)
	switch {
	case held:
		return e.done(HeldFragment, 0, 0)
	case !ok:
		return e.drop(Outside, p, DropFragment, now)
	}
	out, ok := e.insidePort(internal)
	if !ok {
		return e.drop(Outside, p, DropNoRoute, now)
	}
	header.RewriteDst(b, p, netip.AddrPortFrom(internal, 0))
	header.IPv4(b).DecTTL()
	return e.done(Forward, out, 0)
}

// laterFragment looks up how the first fragment of b's datagram was
// translated (ok) and counts b as passed; without that, it holds b until
// the first fragment comes (held), if there is room.
func (e *Engine) laterFragment(b []byte, p *header.Parsed, now time.Time) (addr netip.Addr, w fragWay, ok, held bool) {
	e.lock()
	defer e.unlock()
	k := fragKeyOf(p)
	if addr, w, ok = e.frags.get(k, now); ok {
		n, end := fragPayload(b, p)
		e.frags.count(k, n, end)
		return addr, w, true, false
	}
	return addr, w, false, e.held.hold(k, b, now)
}

// firstFragment records, under e.lock, how the first fragment of datagram
// k (packet b, not yet rewritten) was translated, so its later fragments
// follow, and releases those that came before it.
func (e *Engine) firstFragment(k fragKey, b []byte, p *header.Parsed, addr netip.Addr, outbound bool, out Port, w fragWay, now time.Time) {
	first, _ := fragPayload(b, p)
	e.frags.put(k, addr, w, first, now)
	_, bytes, end := e.held.release(k, outbound, addr, out, w)
	e.frags.count(k, bytes, end)
}

func tableVerdict(v table.Verdict) Verdict {
	switch v {
	case table.Accept:
		return Forward
	case table.DropFiltered:
		return DropFiltered
	case table.DropUnsolicitedSYN:
		return DropUnsolicitedSYN
	default:
		return DropNoMapping
	}
}
