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
