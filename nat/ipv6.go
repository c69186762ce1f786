package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// IPv6, by the NAT's mode (table.Config.IPv6):
//
//   - none: nothing leaves the inside network. An inside host gets an
//     ICMPv6 destination unreachable, code 1 (administratively
//     prohibited): the policy answer, as from a router configured to
//     refuse IPv6 (Linux's `prohibit` route). From outside: dropped.
//   - blackhole: lost both ways, answered by nothing, as on a network
//     whose IPv6 is broken without a word (Happy Eyeballs' slow case).
//   - reject: an inside host gets destination unreachable, code 0 (no
//     route to destination), as a router with no IPv6 default route
//     answers (Linux's `unreachable` route, a CPE whose upstream gave
//     it no IPv6): the fast failure. From outside: dropped.
//   - routed: forwarded untranslated through a stateful firewall (RFC
//     6092; firewall6.go).
//   - nptv6: the inside prefix translated to an external one (RFC 6296;
//     nptv6.go).
//   - nat66: addresses and ports translated as the IPv4 side's are, to
//     the first external IPv6 address (nat66.go).
//   - nat64: IPv6-only inside hosts reach IPv4 through NAT64 (RFC 6146;
//     nat64.go), and native IPv6 as in routed.
//
// Every answer the NAT makes passes the ICMP rate limits. IPv6 takes a
// path of its own from the IPv4 one: process sends it here only after
// header.Parsed.Decode found the version was not 4, so IPv4 pays nothing
// for it.

// v6State is what the IPv6 path reads of the configuration, replaced as
// a whole when the configuration changes.
type v6State struct {
	mode table.IPv6Mode
	// ext is the NAT's first IPv6 address on its outside port (invalid
	// when it has none): the source of what it answers from outside.
	ext   netip.Addr
	npt   header.NPTv6       // nptv6 only
	fw    fwConfig           // routed only
	nat64 header.NAT64Prefix // nat64 only
}

// newV6State derives the IPv6 path's state from c, the inside ports'
// networks and IPv6 hosts, or says why the mode cannot work with them.
func newV6State(c *table.Config, portNets [][]netip.Prefix, hosts6 map[netip.Addr]Port) (*v6State, error) {
	st := &v6State{mode: c.IPv6, fw: newFWConfig(c)}
	for _, a := range c.External6 {
		if a.Is6() && !a.Is4In6() {
			st.ext = a
			break
		}
	}
	if c.IPv6 == table.IPv6Routed || c.IPv6 == table.IPv6NPTv6 || c.IPv6 == table.IPv6NAT66 || c.IPv6 == table.IPv6NAT64 {
		// The NAT answers from each port's prefix::1 (gateway6): a host
		// there would never be reached.
		for h, p := range hosts6 {
			for _, n := range portNets[p-1] {
				if n.Addr().Is6() && n.Contains(h) && h == n.Addr().Next() {
					return nil, fmt.Errorf("ipv6 %s: inside address %s is the NAT's own address on %s", c.IPv6, h, n)
				}
			}
		}
	}
	if c.IPv6 == table.IPv6NAT66 && !st.ext.IsValid() {
		return nil, errors.New("ipv6 nat66: no external IPv6 address to translate to (give external6, or --external with an IPv6 address)")
	}
	if c.IPv6 == table.IPv6NAT64 {
		var err error
		st.nat64, err = header.NewNAT64Prefix(c.NAT64PrefixOrDefault())
		return st, err
	}
	if c.IPv6 != table.IPv6NPTv6 {
		return st, nil
	}
	// NPTv6 maps one inside prefix: the inside ports' IPv6 network,
	// which they must share if there are several.
	var inside netip.Prefix
	for _, nets := range portNets {
		for _, n := range nets {
			if !n.Addr().Is6() {
				continue
			}
			if inside.IsValid() && n != inside {
				return nil, fmt.Errorf("ipv6 nptv6: the inside IPv6 networks %s and %s differ: NPTv6 maps one prefix", inside, n)
			}
			inside = n
		}
	}
	if !inside.IsValid() {
		return nil, errors.New("ipv6 nptv6: no inside host has an IPv6 prefix")
	}
	if !st.ext.IsValid() {
		return nil, errors.New("ipv6 nptv6: no external IPv6 address to take the external prefix from")
	}
	if inside.Bits() > 64 {
		return nil, fmt.Errorf("ipv6 nptv6: inside prefix %s longer than /64 (RFC 6296 section 3.1)", inside)
	}
	outside := netip.PrefixFrom(st.ext, inside.Bits()).Masked()
	npt, ok := header.NewNPTv6(inside, outside)
	if !ok {
		return nil, fmt.Errorf("ipv6 nptv6: cannot map %s to %s", inside, outside)
	}
	st.npt = npt
	return st, nil
}

// packet6 is packet for IPv6: one packet on its way through the IPv6
// path, on process6's stack.
type packet6 struct {
	q            *Queue
	in           Port
	b            []byte // cut to the packet's length once decoded
	reply        []byte
	now          time.Time
	p            header.ParsedV6
	srcIn, dstIn netip.AddrPort // as it came in, for tracing
	wire         int            // a super-packet's largest segment (0: len(b)); pmtu.go
}

// process6 handles an IPv6 packet by the NAT's mode; wire is the size
// of a super-packet's largest segment (0: not one).
func (q *Queue) process6(in Port, b []byte, reply []byte, now time.Time, wire int) Result {
	e := q.e
	var pk packet6
	pk.q, pk.in, pk.reply, pk.now, pk.wire = q, in, reply, now, wire
	pk.p.Decode(b)
	pk.b = b
	if pk.p.Length > 0 {
		pk.b = b[:pk.p.Length]
	}
	pk.srcIn, pk.dstIn = pk.p.Src, pk.p.Dst
	st := e.v6.Load()
	switch st.mode {
	case table.IPv6Blackhole:
		return e.drop6(&pk, DropIPv6Blackhole)
	case table.IPv6None:
		return e.refuse6(&pk, DropIPv6None, header.ICMPv6CodeAdminProhibited)
	case table.IPv6Reject:
		return e.refuse6(&pk, DropIPv6Reject, header.ICMPv6CodeNoRoute)
	}
	if pk.p.Status != header.OK {
		return e.drop6(&pk, DropMalformed)
	}
	switch st.mode {
	case table.IPv6NPTv6:
		return e.nptv6(&pk, st)
	case table.IPv6NAT66:
		return e.nat66(&pk, st)
	case table.IPv6NAT64:
		return e.nat64(&pk, st)
	}
	return e.routed6(&pk, st)
}

// refuse6 answers a packet from inside with destination unreachable of
// code, rate-limited, and drops it counted as v; from outside it only
// drops it.
func (e *Engine) refuse6(pk *packet6, v Verdict, code uint8) Result {
	if pk.in == Outside {
		return e.drop6(pk, v)
	}
	n, notes := e.icmpError6(pk, e.gateway6(pk.in), header.ICMPv6DestUnreachable, code)
	e.trace6(pk, v, 0, notes)
	return e.done(v, 0, n)
}

// timeExceeded6 answers a packet whose hop limit ran out here (RFC 4443
// section 3.3), from src when it is valid, rate-limited.
func (e *Engine) timeExceeded6(pk *packet6, src netip.Addr) Result {
	n, notes := 0, traceNote(0)
	if src.IsValid() {
		n, notes = e.icmpError6(pk, src, header.ICMPv6TimeExceeded, 0)
	}
	e.trace6(pk, DropTTLExceeded, 0, notes)
	return e.done(DropTTLExceeded, 0, n)
}

// icmpError6 is icmpError for IPv6: the error of type typ and code from
// src about pk in pk.reply, if the limiter lets it go now.
func (e *Engine) icmpError6(pk *packet6, src netip.Addr, typ, code uint8) (int, traceNote) {
	n := header.BuildICMPv6Error(pk.reply, pk.b, src, typ, code, 0)
	if n > 0 && !e.icmpLimit.allow(pk.p.Src.Addr(), pk.now) {
		e.icmpLimited.Add(1)
		return 0, noteICMPLimited
	}
	return n, 0
}

// forward6 sends pk on by port out, its hop limit decremented (RFC 8200
// section 3: no checksum covers it).
func (e *Engine) forward6(pk *packet6, out Port, notes traceNote) Result {
	header.IPv6(pk.b).DecHopLimit()
	e.trace6(pk, Forward, out, notes)
	pk.q.forwarded.Add(1)
	return Result{Verdict: Forward, Out: out}
}

// drop6 counts and traces pk's drop for reason v.
func (e *Engine) drop6(pk *packet6, v Verdict) Result {
	e.trace6(pk, v, 0, 0)
	return e.done(v, 0, 0)
}

// trace6 is trace for an IPv6 packet.
func (e *Engine) trace6(pk *packet6, v Verdict, out Port, notes traceNote) {
	if e.tracing.Load() {
		e.emitPacket6(pk, v, out, notes)
	}
}

func (e *Engine) emitPacket6(pk *packet6, v Verdict, out Port, notes traceNote) {
	p := &pk.p
	ev := Event{Kind: EventDrop, Time: pk.now, Verdict: v, In: pk.in, Proto: table.Protocol(p.Proto), Src: pk.srcIn, Dst: pk.dstIn}
	if v == Forward {
		ev.Kind, ev.Out = EventTranslated, out
		ev.NewSrc, ev.NewDst = p.Src, p.Dst
		ev.Created = notes&noteCreated != 0
		ev.Hairpin = notes&noteHairpin != 0
		ev.ICMPError = notes&noteICMPError != 0
	}
	ev.ICMPLimited = notes&noteICMPLimited != 0
	e.emit(ev)
}

// port6 returns the inside port IPv6 address a belongs to: the port of
// the host of that address, else the first port with a network that
// holds it (a host's other addresses in its prefix, such as temporary
// ones, reach it too).
func (e *Engine) port6(a netip.Addr) (Port, bool) {
	v := e.in.Load()
	if p, ok := v.hosts6[a]; ok {
		return p, true
	}
	for i, nets := range v.portNets {
		for _, n := range nets {
			if n.Addr().Is6() && n.Contains(a) {
				return Port(i + 1), true
			}
		}
	}
	return 0, false
}

// fromInside6 makes the checks every IPv6 mode that forwards makes of a
// packet from an inside port before its own work: a spoofed source, a
// martian destination, a packet for another inside host (routed as it
// is, never translated), the hop limit, and for one going out (leaving)
// the outside link's MTU, measured before any translation so that Packet
// Too Big quotes what the host sent. done says whether it decided pk's
// fate, r; if not, pk is the mode's to send out.
func (e *Engine) fromInside6(pk *packet6, leaving bool) (r Result, done bool) {
	p := &pk.p
	src, dst := p.Src.Addr(), p.Dst.Addr()
	if e.spoofed6(pk.in, src) {
		return e.drop6(pk, DropSpoofed), true
	}
	if martian6(dst) {
		return e.drop6(pk, DropMartian), true
	}
	if out, ok := e.port6(dst); ok {
		if dst == e.gateway6(out) {
			return e.drop6(pk, DropLocal), true
		}
		if p.HopLimit <= 1 {
			return e.timeExceeded6(pk, e.gateway6(pk.in)), true
		}
		if e.anyMTU {
			if r, ok := e.fit6(pk, out, e.gateway6(pk.in)); !ok {
				return r, true
			}
		}
		return e.forward6(pk, out, 0), true
	}
	if p.HopLimit <= 1 {
		return e.timeExceeded6(pk, e.gateway6(pk.in)), true
	}
	if leaving && e.anyMTU {
		if r, ok := e.fit6(pk, Outside, e.gateway6(pk.in)); !ok {
			return r, true
		}
	}
	return Result{}, false
}

// spoofed6 reports whether src may not come from inside port in (BCP 38,
// as validate.go for IPv4): another port's host, or off the port's
// networks.
func (e *Engine) spoofed6(in Port, src netip.Addr) bool {
	if p, ok := e.in.Load().hosts6[src]; ok && p != in {
		return true
	}
	return e.offPort(in, src)
}

// gateway6 is the NAT's IPv6 address on inside port in, the source of
// the errors it sends there: the first address of the port's first IPv6
// network (prefix::1, as routers commonly take), or fe80::1 on a port
// without one.
func (e *Engine) gateway6(in Port) netip.Addr {
	if nets := e.in.Load().portNets; in >= 1 && int(in) <= len(nets) {
		for _, n := range nets[in-1] {
			if n.Addr().Is6() {
				return n.Masked().Addr().Next()
			}
		}
	}
	return linkLocalGateway
}

var linkLocalGateway = netip.MustParseAddr("fe80::1")

// martian6 reports whether a is an IPv6 address no router forwards to or
// from: unspecified, loopback, link-local, multicast (as a destination
// the NAT forwards no multicast), or IPv4-mapped (RFC 4291 section
// 2.5.5.2: never on the wire).
func martian6(a netip.Addr) bool {
	return a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.Is4In6()
}
