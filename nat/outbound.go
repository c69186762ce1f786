package nat

import (
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// outbound translates a packet from inside port in: routed between inside
// hosts, or sent outside from its mapping's external endpoint (made if
// need be), or turned back in through a mapping of the NAT's own
// (hairpinning, RFC 4787 REQ-9).
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

// rewriteOut makes an outbound packet leave from external endpoint ext,
// with identification newID if it is non-atomic, one hop on.
func rewriteOut(b []byte, p *header.Parsed, ext netip.AddrPort, nonAtomic bool, newID uint16) {
	if nonAtomic {
		header.RewriteID(b, p, newID)
	}
	header.RewriteSrc(b, p, ext)
	header.IPv4(b).DecTTL()
}
