package nat

import (
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// The nat66 mode: address and port translation for IPv6 as the IPv4
// side does it, to the NAT's first external IPv6 address (v6State.ext),
// with every mapping, filtering, port, hairpinning, timeout and limit
// setting of the IPv4 side.
//
// It keeps its mappings in a second table.Table (Engine.shared6), not a
// table of its own kind: the table's keys hold 4-byte addresses, and an
// IPv6 address goes in as its alias (table.Aliases6, Engine.alias6),
// exact both ways. The external address goes in as extAlias6. Every
// packet swaps its addresses for aliases on the way in and the
// mapping's aliases for addresses on the way out; what the table says
// (mapping, filter, port, TCP state, timers) is the IPv4 side's word for
// word. The hit path is the IPv4 one: a packet of a live mapping whose
// addresses have aliases takes its queue's reader lock of shared6 only.
//
// Locking: shared6 is a table.Shared as shared is, each Queue with a
// Reader of it (Queue.r6); alias6 is guarded by shared6 as its table is
// (Lookup, Addr, Touch under a reader's lock; Alias, Sweep, Reset, and
// replacing alias6, under shared6.Lock). No path holds shared and
// shared6 at once.
//
// Fragments: frag66.go.

// extAlias6 stands for the NAT's external IPv6 address in the nat66
// table: 240.0.0.1, in the reserved 240.0.0.0/4 (RFC 1112 section 4),
// apart from the aliases (0.0.0.0/8) and never on the wire.
var extAlias6 = netip.AddrFrom4([4]byte{240, 0, 0, 1})

// noAlias6 is a remote alias no address ever has (Aliases6 never gives
// 0.0.0.0): the filter's answer for a remote that has no session.
var noAlias6 = netip.IPv4Unspecified()

// table6Config is the nat66 table's configuration from the NAT's: the
// same behaviours, ports, timeouts and limits, one external address
// (extAlias6). The firewall rules apply to IPv4 only.
func table6Config(c table.Config) table.Config {
	c.External = []netip.Addr{extAlias6}
	c.External6 = nil
	c.IPv6 = table.IPv6None
	c.Firewall = table.Firewall{}
	return c
}

// newAliases6 returns the alias map for the nat66 table of c (defaults
// filled in). An alias lives as long as the longest timeout and a port
// hold after it: by then nothing live in the table holds it. Each alias
// is an inside address of a mapping or the remote of a session, so the
// limits on those bound it.
func newAliases6(c *table.Config) *table.Aliases6 {
	idle := max(c.UDPTimeout, c.TCPEstablishedTimeout, c.TCPTransitoryTimeout, c.ICMPTimeout) + c.PortHold
	limit := 0
	if c.LimitMappings > 0 && c.LimitSessions > 0 {
		limit = c.LimitMappings + c.LimitSessions
	}
	return table.NewAliases6(limit, idle)
}

// proto66 is the table's protocol for an IPv6 upper-layer protocol:
// ICMPv6 echoes are kept as ICMP queries. ok is false for any other.
func proto66(p uint8) (table.Protocol, bool) {
	switch p {
	case header.ProtoUDP:
		return table.UDP, true
	case header.ProtoTCP:
		return table.TCP, true
	case header.ProtoICMPv6:
		return table.ICMP, true
	}
	return 0, false
}

// tcpSegment6 is tcpSegment for an IPv6 packet.
func tcpSegment6(g *table.Segment, b []byte, p *header.ParsedV6) {
	fillSegment(g, header.TCP(b[p.TransportOff:p.Length]), p.TCPFlags)
}

// nat66 translates pk in the nat66 mode.
func (e *Engine) nat66(pk *packet6, st *v6State) Result {
	if pk.in == Outside {
		return e.nat66In(pk, st)
	}
	p := &pk.p
	dst := p.Dst.Addr()
	// A hairpinned packet stays inside: no outside link to fit.
	if r, done := e.fromInside6(pk, dst != st.ext); done {
		return r
	}
	proto, ok := proto66(p.Proto)
	switch {
	case !ok:
		return e.drop6(pk, DropUnsupported)
	case !p.IsFirstFragment():
		return e.laterOut66(pk, st)
	case p.Proto == header.ProtoICMPv6 && header.IsICMPv6Error(p.ICMPType):
		return e.nat66OutError(pk, st)
	case !p.HasPorts():
		return e.drop6(pk, DropUnsupported) // ICMPv6 other than echoes
	}
	hairpin := dst == st.ext
	if hairpin && !e.hairpin.Load() { // without the lock: checked again under it
		return e.drop6(pk, DropHairpinOff)
	}
	if hairpin && p.MoreFrags {
		return e.drop6(pk, DropUnsupported) // its later fragments could not follow
	}
	var seg table.Segment
	if proto == table.TCP {
		tcpSegment6(&seg, pk.b, p)
	}
	if !hairpin {
		if port, ok := pk.q.hit66Out(proto, p, &seg, len(pk.b), pk.now); ok {
			return e.out66(pk, st, port, 0)
		}
	}
	return e.nat66OutFull(pk, st, proto, &seg, hairpin)
}

// hit66Out is the outbound hit path: the external port of pk's live
// mapping, when both its addresses have aliases and nothing but the
// mapping changes (table.Hits).
func (q *Queue) hit66Out(proto table.Protocol, p *header.ParsedV6, seg *table.Segment, n int, now time.Time) (uint16, bool) {
	h := q.r6.Lock()
	defer q.r6.Unlock()
	al := q.e.alias6
	sa, ok := al.Lookup(p.Src.Addr(), now)
	if !ok {
		return 0, false
	}
	da, ok := al.Lookup(p.Dst.Addr(), now)
	if !ok {
		return 0, false
	}
	m := h.OutboundHitSeg(proto, netip.AddrPortFrom(sa, p.Src.Port()), netip.AddrPortFrom(da, p.Dst.Port()), seg, n, now)
	if m == nil {
		return 0, false
	}
	return m.External().Port(), true // under the lock: Rebind moves external endpoints
}

// nat66OutFull is the outbound full path, with the nat66 table to
// itself: aliases and mapping made as needed, hairpinning.
func (e *Engine) nat66OutFull(pk *packet6, st *v6State, proto table.Protocol, seg *table.Segment, hairpin bool) Result {
	p, b, now := &pk.p, pk.b, pk.now
	tab := e.shared6.Lock()
	if hairpin && !e.hairpin.Load() {
		e.shared6.Unlock()
		return e.drop6(pk, DropHairpinOff)
	}
	al := e.alias6
	sa, ok := al.Alias(p.Src.Addr(), now)
	da := extAlias6
	if ok && !hairpin {
		da, ok = al.Alias(p.Dst.Addr(), now)
	}
	if !ok {
		e.shared6.Unlock()
		return e.refuse6(pk, DropIPv6Aliases, header.ICMPv6CodeAdminProhibited)
	}
	m, created, err := tab.OutboundSeg(proto, netip.AddrPortFrom(sa, p.Src.Port()), netip.AddrPortFrom(da, p.Dst.Port()), *seg, now)
	if err != nil {
		// As IPv4 answers with 3/13: never steal a live mapping.
		e.shared6.Unlock()
		return e.refuse6(pk, outboundError(err), header.ICMPv6CodeAdminProhibited)
	}
	m.AddBytes(true, len(b))
	ext := m.External()
	var info MappingInfo
	var notes traceNote
	if created {
		info, notes = e.snapshot6(m), noteCreated
	}
	var internal netip.AddrPort
	tv := table.Accept
	if hairpin {
		// Turned around at the NAT: it leaves with the sender's external
		// endpoint as source (RFC 4787 REQ-9a) and enters the destination
		// mapping through its filter like any inbound packet.
		var target *table.Mapping
		target, tv = tab.InboundSeg(proto, netip.AddrPortFrom(extAlias6, p.Dst.Port()), ext, *seg, now)
		if tv == table.Accept {
			target.AddBytes(false, len(b))
			internal = e.unalias6(target.Internal())
			al.Touch(target.Internal().Addr(), now)
		}
	}
	e.shared6.Unlock()

	if created {
		e.emit(Event{Kind: EventCreated, Time: now, Proto: proto, Mapping: info})
	}
	if !hairpin {
		return e.out66(pk, st, ext.Port(), notes)
	}
	header.RewriteSrc6(b, p, netip.AddrPortFrom(st.ext, ext.Port()))
	if tv != table.Accept {
		return e.drop6(pk, tableVerdict(tv))
	}
	out, ok := e.port6(internal.Addr())
	if !ok {
		return e.drop6(pk, DropNoRoute)
	}
	header.RewriteDst6(b, p, internal)
	return e.forward6(pk, out, notes|noteHairpin)
}

// out66 sends pk out from the external endpoint (st.ext, port).
func (e *Engine) out66(pk *packet6, st *v6State, port uint16, notes traceNote) Result {
	header.RewriteSrc6(pk.b, &pk.p, netip.AddrPortFrom(st.ext, port))
	return e.forward6(pk, Outside, notes)
}

// nat66In translates a packet from outside in the nat66 mode.
func (e *Engine) nat66In(pk *packet6, st *v6State) Result {
	p := &pk.p
	src, dst := p.Src.Addr(), p.Dst.Addr()
	if dst != st.ext {
		return e.drop6(pk, DropNoRoute)
	}
	isErr := p.Proto == header.ProtoICMPv6 && header.IsICMPv6Error(p.ICMPType)
	// A router whose links carry only link-local addresses reports its
	// errors from one (RFC 4443 section 2.2 lets it).
	if martian6(src) && !(isErr && src.IsLinkLocalUnicast()) || src == st.ext {
		return e.drop6(pk, DropMartian)
	}
	if _, inside := e.port6(src); inside {
		return e.drop6(pk, DropMartian)
	}
	if p.HopLimit <= 1 {
		return e.timeExceeded6(pk, st.ext)
	}
	proto, ok := proto66(p.Proto)
	switch {
	case !ok:
		return e.drop6(pk, DropUnsupported)
	case !p.IsFirstFragment():
		return e.laterIn66(pk)
	case isErr:
		return e.nat66InError(pk, st)
	case !p.HasPorts():
		return e.drop6(pk, DropUnsupported)
	}
	var seg table.Segment
	if proto == table.TCP {
		tcpSegment6(&seg, pk.b, p)
	}
	internal, tv, hit := pk.q.hit66In(proto, p, &seg, len(pk.b), pk.now)
	v := tableVerdict(tv)
	if !hit {
		internal, v = e.nat66InFull(pk, proto, &seg)
	}
	if v != Forward {
		return e.drop6(pk, v)
	}
	if p.MoreFrags {
		e.frags66.admit(fragKey66(pk), internal.Addr(), pk.now.UnixNano())
	}
	return e.in66(pk, internal, 0)
}

// hit66In is the inbound hit path: the verdict on pk, and the internal
// endpoint it goes to when accepted, if the sender has an alias and
// nothing but its mapping changes (table.Hits).
func (q *Queue) hit66In(proto table.Protocol, p *header.ParsedV6, seg *table.Segment, n int, now time.Time) (netip.AddrPort, table.Verdict, bool) {
	h := q.r6.Lock()
	defer q.r6.Unlock()
	al := q.e.alias6
	ra, ok := al.Lookup(p.Src.Addr(), now)
	if !ok {
		return netip.AddrPort{}, 0, false
	}
	m, tv, ok := h.InboundHitSeg(proto, netip.AddrPortFrom(extAlias6, p.Dst.Port()), netip.AddrPortFrom(ra, p.Src.Port()), seg, n, now)
	if !ok || tv != table.Accept {
		return netip.AddrPort{}, tv, ok
	}
	in := m.Internal()
	al.Touch(in.Addr(), now)
	return q.e.unalias6(in), tv, true
}

// nat66InFull is the inbound full path, with the nat66 table to itself.
// A sender without an alias has no session: it gets one (and an alias)
// only if the filter admits a stranger (endpoint-independent), so that
// unsolicited packets from many addresses fill no alias map.
func (e *Engine) nat66InFull(pk *packet6, proto table.Protocol, seg *table.Segment) (netip.AddrPort, Verdict) {
	p, now := &pk.p, pk.now
	ext := netip.AddrPortFrom(extAlias6, p.Dst.Port())
	tab := e.shared6.Lock()
	defer e.shared6.Unlock()
	al := e.alias6
	ra, ok := al.Lookup(p.Src.Addr(), now)
	if !ok {
		if _, tv := tab.PeekInbound(proto, ext, netip.AddrPortFrom(noAlias6, p.Src.Port()), now); tv != table.Accept {
			if tv == table.DropNoMapping && proto == table.TCP && p.TCPFlags&(header.TCPSyn|header.TCPAck) == header.TCPSyn {
				tv = table.DropUnsolicitedSYN // as Inbound says it (RFC 5382 REQ-4)
			}
			return netip.AddrPort{}, tableVerdict(tv)
		}
		if ra, ok = al.Alias(p.Src.Addr(), now); !ok {
			return netip.AddrPort{}, DropIPv6Aliases
		}
	}
	m, tv := tab.InboundSeg(proto, ext, netip.AddrPortFrom(ra, p.Src.Port()), *seg, now)
	if tv != table.Accept {
		return netip.AddrPort{}, tableVerdict(tv)
	}
	m.AddBytes(false, len(pk.b))
	al.Touch(m.Internal().Addr(), now)
	return e.unalias6(m.Internal()), Forward
}

// in66 sends pk in to internal endpoint internal.
func (e *Engine) in66(pk *packet6, internal netip.AddrPort, notes traceNote) Result {
	out, ok := e.port6(internal.Addr())
	if !ok {
		return e.drop6(pk, DropNoRoute)
	}
	if e.anyMTU {
		// From the external address the sender used, quoting what it sent.
		if r, ok := e.fit6(pk, out, pk.p.Dst.Addr()); !ok {
			return r
		}
	}
	header.RewriteDst6(pk.b, &pk.p, internal)
	return e.forward6(pk, out, notes)
}

// icmp6ChecksumOK reports whether pk's ICMPv6 checksum is right.
func icmp6ChecksumOK(pk *packet6) bool {
	p := &pk.p
	t := pk.b[p.TransportOff:p.Length]
	return header.Checksum(t, header.PseudoHeaderSum6(p.Src.Addr(), p.Dst.Addr(), header.ProtoICMPv6, uint32(len(t)))) == 0
}

// nat66OutError translates an inside host's ICMPv6 error about a packet
// that came in through a mapping: the quoted destination (the host) and
// the outer source become the mapping's external endpoint and address
// (RFC 5508 section 4.2, for IPv6). Errors neither make nor refresh a
// mapping.
func (e *Engine) nat66OutError(pk *packet6, st *v6State) Result {
	p := &pk.p
	if !icmp6ChecksumOK(pk) {
		return e.drop6(pk, DropBadChecksum)
	}
	proto, _ := proto66(p.InnerProto)
	if p.InnerDst.Addr() != p.Src.Addr() {
		return e.drop6(pk, DropNoMapping)
	}
	var m *table.Mapping
	var port uint16
	tab := e.shared6.Lock()
	al := e.alias6
	if ia, ok := al.Lookup(p.InnerDst.Addr(), pk.now); ok {
		if ra, ok := al.Lookup(p.InnerSrc.Addr(), pk.now); ok {
			m = tab.PeekOutbound(proto, netip.AddrPortFrom(ia, p.InnerDst.Port()), netip.AddrPortFrom(ra, p.InnerSrc.Port()), pk.now)
		}
	}
	if m != nil {
		port = m.External().Port()
	}
	e.shared6.Unlock()
	if m == nil {
		return e.drop6(pk, DropNoMapping)
	}
	header.RewriteInnerDst6(pk.b, p, netip.AddrPortFrom(st.ext, port))
	header.RewriteSrc6(pk.b, p, netip.AddrPortFrom(st.ext, 0))
	return e.forward6(pk, Outside, noteICMPError)
}

// nat66InError translates an ICMPv6 error from outside about a packet
// that went out through a mapping (Packet Too Big included, so PMTU
// discovery works through the NAT): the quoted source and the outer
// destination become the inside host's, if the mapping's filter admits
// the quoted destination.
func (e *Engine) nat66InError(pk *packet6, st *v6State) Result {
	p := &pk.p
	if !icmp6ChecksumOK(pk) {
		return e.drop6(pk, DropBadChecksum)
	}
	if p.InnerSrc.Addr() != st.ext {
		return e.drop6(pk, DropNoMapping)
	}
	proto, _ := proto66(p.InnerProto)
	tv := table.DropNoMapping
	var internal netip.AddrPort
	tab := e.shared6.Lock()
	al := e.alias6
	if ra, ok := al.Lookup(p.InnerDst.Addr(), pk.now); ok {
		var m *table.Mapping
		m, tv = tab.PeekInbound(proto, netip.AddrPortFrom(extAlias6, p.InnerSrc.Port()), netip.AddrPortFrom(ra, p.InnerDst.Port()), pk.now)
		if m != nil && tv == table.Accept {
			internal = e.unalias6(m.Internal())
		}
	}
	e.shared6.Unlock()
	if tv != table.Accept {
		return e.drop6(pk, tableVerdict(tv))
	}
	out, ok := e.port6(internal.Addr())
	if !ok {
		return e.drop6(pk, DropNoRoute)
	}
	header.RewriteInnerSrc6(pk.b, p, internal)
	header.RewriteDst6(pk.b, p, netip.AddrPortFrom(internal.Addr(), 0))
	return e.forward6(pk, out, noteICMPError)
}

// unalias6 is the IPv6 endpoint that nat66 table endpoint a stands for
// (under a lock of shared6): the external address for extAlias6. An
// alias with no address (never so while a live mapping holds it) gives
// the zero endpoint.
func (e *Engine) unalias6(a netip.AddrPort) netip.AddrPort {
	if a.Addr() == extAlias6 {
		return netip.AddrPortFrom(e.v6.Load().ext, a.Port())
	}
	ip, _ := e.alias6.Addr(a.Addr())
	return netip.AddrPortFrom(ip, a.Port())
}

// snapshot6 is snapshot for a mapping of the nat66 table (under a lock
// of shared6), its endpoints the IPv6 ones.
func (e *Engine) snapshot6(m *table.Mapping) MappingInfo {
	mi := e.snapshot(m)
	e.unaliasInfo(&mi)
	return mi
}

func (e *Engine) unaliasInfo(mi *MappingInfo) {
	mi.Internal, mi.External = e.unalias6(mi.Internal), e.unalias6(mi.External)
	for i := range mi.Remotes {
		mi.Remotes[i].Remote = e.unalias6(mi.Remotes[i].Remote)
	}
}

// flush66 forgets the nat66 mappings, their aliases and fragments.
func (e *Engine) flush66() {
	e.shared6.Lock().Flush()
	e.alias6.Reset()
	e.shared6.Unlock()
	e.frags66.reset()
}
