// Package nat is gonat's translation engine: it rewrites packets in place
// between inside ports (private hosts) and one outside port, using the
// mappings and filters of package table. Packets come in and verdicts
// go out; reading and writing devices is package forward's.
//
// The per-packet path decodes once into a header.Parsed on the stack,
// rewrites addresses, ports and checksums in place (RFC 1624 incremental
// updates) and allocates nothing.
package nat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

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
	// Free marks a port with no hosts yet: nothing is routed to it until
	// SetInsideHosts gives it some (a host moving in, lab move).
	Free bool
	// Gateway is the NAT's own address on this side: the source of the
	// ICMP errors it generates (Time Exceeded, so traceroute shows the NAT
	// as a hop; 3/13 when ports run out).
	Gateway netip.Addr
	// MTU is the MTU of the link to these hosts (0: no limit): packets
	// larger are fragmented, or refused with an ICMP error (pmtu.go).
	MTU int
}

// Config is the engine's whole configuration.
type Config struct {
	Table  table.Config
	Inside []InsidePort
	// OutsideMTU is the MTU of the link beyond the outside port (0: no
	// limit), enforced as InsidePort.MTU is.
	OutsideMTU int
}

// Validate checks the parts of the configuration the table does not know
// about: addresses that would make routing ambiguous (RFC 4787 REQ-7:
// overlapping inside and outside spaces are refused at start-up).
func (c *Config) Validate() error {
	if len(c.Inside) == 0 {
		return errors.New("no inside port")
	}
	if err := c.validateMTUs(); err != nil {
		return err
	}
	seen := map[netip.Addr]int{}
	for i, ip := range c.Inside {
		if len(ip.Hosts) == 0 && !ip.Free {
			return fmt.Errorf("inside port %d: no host address", i+1)
		}
		for _, h := range ip.Hosts {
			a := h.Addr()
			if a.Is4In6() || !a.Is4() && !a.Is6() {
				return fmt.Errorf("inside address %s: want IPv4 or IPv6", h)
			}
			if j, dup := seen[a]; dup {
				return fmt.Errorf("inside address %s given twice (ports %d and %d)", a, j+1, i+1)
			}
			seen[a] = i
			for _, e := range append(c.Table.External[:len(c.Table.External):len(c.Table.External)], c.Table.External6...) {
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
	// FragMTU, when not 0, is the MTU of the link to Out, which the
	// forwarded packet exceeds: it is to be fragmented to fit (IPv4, DF
	// clear; a super-packet segmented first).
	FragMTU uint16
	// Out is the port to send the (rewritten) packet to when Verdict is
	// Forward.
	Out Port
	// ReplyLen > 0 means reply[:ReplyLen] holds an ICMP error the NAT
	// generated, to be sent back out of the port the packet came in on.
	ReplyLen int
	// Len > 0 is the forwarded packet's new length: NAT64 changes the
	// header's size (it may grow into the buffer's capacity, by at most
	// header.NAT64Growth). 0: the length is unchanged.
	Len int
}

// Engine translates packets. It is safe for concurrent use: the router
// calls it from a goroutine per device queue, each through a Queue of
// its own.
//
// Locking: the table is a table.Shared, and each Queue has a
// table.Reader of its own. A packet of an existing mapping that changes
// nothing but that mapping (table.Hits: most packets) takes only its
// queue's reader lock, and inside the table the lock of that mapping's
// stripe (one of 256), so readers of different queues meet only on the
// same flow, or on two flows whose mappings share a stripe. Anything
// else (a new mapping, a TCP state change, fragments, ICMP errors,
// expiry, queries) takes the whole table (shared.Lock), which holds
// every reader's lock: the engine's fields marked so are guarded by it.
type Engine struct {
	shared *table.Shared
	// queues are every Queue, for Count; NewQueue replaces the list
	// under shared.Lock.
	queues atomic.Pointer[[]*Queue]
	frags  fragCache // guarded by shared.Lock
	held   fragHold  // guarded by shared.Lock

	q0 *Queue // for Engine.Process and Prefetch

	cfg Config // guarded by shared.Lock
	// hairpin is cfg.Table.Hairpin, written with the table under
	// shared.Lock; packets read it first without the lock, and again under it.
	hairpin atomic.Bool
	// firewall is cfg.Table.Firewall when it has rules, nil when it has
	// none, written with the table; packets read it without the lock.
	firewall atomic.Pointer[table.Firewall]
	external []netip.Addr
	extIndex addrIndex // external address -> its position in external
	// in is what packets read of the inside ports, without a lock:
	// replaced whole under shared.Lock (SetInsideHosts, a new external
	// address).
	in             atomic.Pointer[insideView]
	ownHasExternal bool // the external addresses are in insideView.ownMasks

	counters [numVerdicts]atomic.Uint64

	// icmpLimit paces every ICMP error the NAT makes; icmpLimited counts
	// those it held back.
	icmpLimit   icmpLimiter // has a lock of its own
	icmpLimited atomic.Uint64

	// v6 is the IPv6 path's view of the configuration (ipv6.go); fw is
	// the routed mode's session table (firewall6.go), with a lock of its
	// own.
	v6 atomic.Pointer[v6State]
	fw firewall6
	// shared6 is the nat66 mode's table, alias6 its IPv6 addresses'
	// aliases, guarded by shared6 (nat66.go). Both exist in every mode.
	shared6 *table.Shared
	alias6  *table.Aliases6
	frags66 frag66 // where later IPv6 fragments from outside go (frag66.go)
	// aliases are the IPv6 hosts' IPv4 aliases for NAT64 (nat64.go),
	// fixed at New.
	aliases aliases

	observer atomic.Pointer[func(Event)]
	tracing  atomic.Bool

	// mtu is each port's link MTU by Port (0: no limit), anyMTU whether
	// any is set: fixed at New (pmtu.go). pmtuBlackhole is
	// cfg.Table.PMTUBlackhole, read without the lock.
	mtu           []uint16
	anyMTU        bool
	pmtuBlackhole atomic.Bool

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
	c := tab.Config()
	tab6, err := table.New(table6Config(c))
	if err != nil {
		return nil, err
	}
	e := &Engine{
		shared:   table.NewShared(tab),
		shared6:  table.NewShared(tab6),
		alias6:   newAliases6(&c),
		cfg:      cfg,
		external: append([]netip.Addr(nil), c.External...),
	}
	e.q0 = e.NewQueue()
	e.cfg.Table = tab.Config()
	e.hairpin.Store(e.cfg.Table.Hairpin)
	e.setFirewall(e.cfg.Table.Firewall)
	e.icmpLimit.set(e.cfg.Table.ICMPRate, e.cfg.Table.ICMPInterval)
	e.setMTUs()
	e.ipID.Store(rand.Uint32())

	exts := make(map[netip.Addr]uint32, len(e.external))
	for i, a := range e.external {
		exts[a] = uint32(i)
	}
	e.extIndex = newAddrIndex(exts)
	e.ownHasExternal = len(e.external) <= 8
	if e.aliases, err = newAliases(cfg.Inside); err != nil {
		return nil, err
	}
	if err := e.setInsideLocked(cfg.Inside); err != nil {
		return nil, err
	}
	return e, nil
}

// Config returns the configuration in force (with defaults filled in).
func (e *Engine) Config() Config {
	e.shared.Lock()
	defer e.shared.Unlock()
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
	v := e.in.Load()
	st, err := newV6State(&nc, v.portNets, v.hosts6)
	if err != nil {
		return err
	}
	tab6, err := table.New(table6Config(nc))
	if err != nil {
		return err
	}
	if len(nc.External) != len(e.external) {
		return errors.New("external addresses cannot change at run time")
	}
	for i := range nc.External {
		if nc.External[i] != e.external[i] {
			return errors.New("external addresses cannot change at run time")
		}
	}
	e.shared.LockReplace(tab)
	e.cfg.Table = nc
	e.frags = fragCache{}
	e.held.reset()
	e.hairpin.Store(nc.Hairpin)
	e.setFirewall(nc.Firewall)
	e.icmpLimit.set(nc.ICMPRate, nc.ICMPInterval)
	e.pmtuBlackhole.Store(nc.PMTUBlackhole)
	e.v6.Store(st)
	e.fw.reset()
	e.shared.Unlock()
	e.shared6.LockReplace(tab6)
	e.alias6 = newAliases6(&nc)
	e.shared6.Unlock()
	e.frags66.reset()
	return nil
}

// Flush drops every mapping (NAT rebinding).
func (e *Engine) Flush() {
	e.shared.Lock().Flush()
	e.frags = fragCache{}
	e.held.reset()
	e.shared.Unlock()
	e.fw.reset()
	e.flush66()
}

// Count returns how many packets got verdict v.
func (e *Engine) Count(v Verdict) uint64 {
	if v >= numVerdicts {
		return 0
	}
	n := e.counters[v].Load()
	if v == Forward {
		for _, q := range *e.queues.Load() { // queues are only ever added
			n += q.forwarded.Load()
		}
	}
	return n
}

// ICMPErrorsLimited returns how many ICMP errors the NAT held back under
// its rate limits (settings icmp-rate and icmp-interval). Their packets
// are counted under the reason they were dropped for.
func (e *Engine) ICMPErrorsLimited() uint64 { return e.icmpLimited.Load() }

// Mappings calls fn with a snapshot of every live mapping.
func (e *Engine) Mappings(now time.Time, fn func(MappingInfo)) {
	var ms []MappingInfo
	e.shared.Lock().All(func(m *table.Mapping) bool {
		if m.Expires().After(now) {
			ms = append(ms, e.snapshot(m))
		}
		return true
	})
	e.shared.Unlock()
	e.shared6.Lock().All(func(m *table.Mapping) bool {
		if m.Expires().After(now) {
			ms = append(ms, e.snapshot6(m))
		}
		return true
	})
	e.shared6.Unlock()
	t := now.UnixNano()
	e.fw.mu.Lock()
	for k, s := range e.fw.sessions {
		if s.expires > t {
			ms = append(ms, k.info(s))
		}
	}
	e.fw.mu.Unlock()
	for _, m := range ms {
		fn(m)
	}
}

// LiveMappings counts the mappings live at now, per protocol, copying
// none of them.
func (e *Engine) LiveMappings(now time.Time) map[table.Protocol]int {
	live := map[table.Protocol]int{}
	for _, sh := range [...]*table.Shared{e.shared, e.shared6} {
		sh.Lock().All(func(m *table.Mapping) bool {
			if m.Expires().After(now) {
				live[m.Proto()]++
			}
			return true
		})
		sh.Unlock()
	}
	return live
}

// MappingPages calls fn with the mappings live at now, a page at a time,
// until fn returns false or none are left; fn must not keep the slice.
// A page ends once it holds size entries or more, a mapping and each of
// its sessions counting one: it is one mapping past that at most. Unlike
// Mappings,
// which copies every mapping under one hold of the engine's lock, it
// keeps a pointer per mapping and one page of copies, and takes the lock
// once per page: a dump of a full table neither grows the process by the
// table's size nor stops the NAT for the whole walk. The set listed is
// the one live at the start; a mapping that goes away during the walk is
// listed as it was when it went.
func (e *Engine) MappingPages(now time.Time, size int, fn func([]MappingInfo) bool) {
	var page []MappingInfo
	if e.pages(e.shared, e.snapshot, now, size, page, fn) {
		e.pages(e.shared6, e.snapshot6, now, size, page, fn)
	}
}

// pages is MappingPages over the table of sh, each mapping seen through
// snap; it reports whether fn asked for more.
func (e *Engine) pages(sh *table.Shared, snap func(*table.Mapping) MappingInfo, now time.Time, size int, page []MappingInfo, fn func([]MappingInfo) bool) bool {
	var ms []*table.Mapping
	sh.Lock().All(func(m *table.Mapping) bool {
		if m.Expires().After(now) {
			ms = append(ms, m)
		}
		return true
	})
	sh.Unlock()
	for len(ms) > 0 {
		page = page[:0]
		n := 0
		sh.Lock()
		for len(ms) > 0 && (len(page) == 0 || n < size) {
			mi := snap(ms[0])
			ms[0] = nil // the walk no longer keeps it
			ms = ms[1:]
			n += 1 + len(mi.Remotes)
			page = append(page, mi)
		}
		sh.Unlock()
		if !fn(page) {
			return false
		}
	}
	return true
}

// MappingWindow calls fn with the mappings live at now from the
// first'th (0 is the first, in Mappings' order), at most n of them, each
// with at most remotes of its sessions in Remotes, and with how many
// sessions it has; it returns how many mappings are live. Only the
// window's mappings and their first sessions are copied: a paged view of
// a large table, or of a mapping with many sessions, costs its page.
func (e *Engine) MappingWindow(now time.Time, first, n, remotes int, fn func(m MappingInfo, sessions int)) (live int) {
	type row struct {
		m        MappingInfo
		sessions int
	}
	var rows []row
	for _, sh := range [...]*table.Shared{e.shared, e.shared6} {
		sh.Lock().All(func(m *table.Mapping) bool {
			if !m.Expires().After(now) {
				return true
			}
			if live >= first && live-first < n {
				r := row{m: MappingInfo{
					Proto: m.Proto(), Internal: e.unalias(m.Internal()), External: m.External(),
					Created: m.Created(), Expires: m.Expires(),
					PacketsOut: m.PacketsOut(), PacketsIn: m.PacketsIn(), BytesOut: m.BytesOut(), BytesIn: m.BytesIn(),
				}}
				m.Sessions(func(s table.SessionInfo) bool {
					if r.sessions < remotes {
						r.m.Remotes = append(r.m.Remotes, s)
					}
					r.sessions++
					return true
				})
				if sh == e.shared6 {
					e.unaliasInfo(&r.m)
				}
				rows = append(rows, r)
			}
			live++
			return true
		})
		sh.Unlock()
	}
	for _, r := range rows {
		fn(r.m, r.sessions)
	}
	return live
}

// PoolUsage reports how many external ports (ICMP: identifiers) of proto
// are in use, and how many there are.
func (e *Engine) PoolUsage(proto table.Protocol) (used, size int) {
	tab := e.shared.Lock()
	defer e.shared.Unlock()
	return tab.PoolUsage(proto)
}

// Expire removes lapsed mappings and reports each as an EventExpired.
func (e *Engine) Expire(now time.Time) int {
	obs := e.observer.Load()
	var gone []MappingInfo
	n := e.shared.Lock().Expire(now, func(m *table.Mapping) {
		if obs != nil {
			gone = append(gone, e.snapshot(m))
		}
	})
	e.shared.Unlock()
	// The nat66 table's lapsed mappings are reported before their
	// aliases can go.
	n += e.shared6.Lock().Expire(now, func(m *table.Mapping) {
		if obs != nil {
			gone = append(gone, e.snapshot6(m))
		}
	})
	e.alias6.Sweep(now)
	e.shared6.Unlock()
	var gone6 func(fwKey, *fwSession)
	if obs != nil {
		gone6 = func(k fwKey, s *fwSession) { gone = append(gone, k.info(s)) }
	}
	e.fw.mu.Lock()
	n += e.fw.expireLocked(now.UnixNano(), gone6)
	e.fw.mu.Unlock()
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
	p, ok := e.in.Load().hosts.lookup(a)
	return Port(p), ok
}

// inInsideNetwork reports whether a lies in an inside network without
// being a known host or gateway: such packets are never sent outside
// (REQ-7: never mis-routed).
func (e *Engine) inInsideNetwork(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	a4 := a.As4()
	k := binary.BigEndian.Uint32(a4[:])
	v := e.in.Load()
	for _, n := range v.ownMasks[:v.numNets] {
		if k&n.mask == n.addr {
			return true
		}
	}
	return false
}

// isGateway reports whether a is the NAT's own address on an inside port.
func (e *Engine) isGateway(a netip.Addr) bool {
	for _, ip := range e.in.Load().ports {
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
	if ports := e.in.Load().ports; in >= 1 && int(in) <= len(ports) {
		return ports[in-1].Gateway
	}
	return netip.Addr{}
}
