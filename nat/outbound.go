package nat

import (
	"net/netip"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// outbound translates a packet from inside port in: routed between inside
// hosts, or sent outside from its mapping's external endpoint (made if
// need be), or turned back in through a mapping of the NAT's own
// (hairpinning, RFC 4787 REQ-9).
func (e *Engine) outbound(pk *packet) Result {
	q, in, b, p, now := pk.q, pk.in, pk.b, &pk.p, pk.now
	dst := p.Dst.Addr()
	srcPort, srcKnown := e.insidePort(p.Src.Addr())
	// Spoofed: another port's host, or off this port's networks.
	if srcKnown && srcPort != in || !srcKnown && e.offPort(in, p.Src.Addr()) {
		return e.drop(pk, DropSpoofed)
	}
	// Between inside hosts: routed, not translated.
	if out, ok := e.insidePort(dst); ok {
		if p.TTL <= 1 {
			return e.timeExceeded(pk, e.gateway(in))
		}
		if e.anyMTU {
			if r, ok := e.fit(pk, out, e.gateway(in)); !ok {
				return r
			}
		}
		header.IPv4(b).DecTTL()
		return e.forwardFit(pk, out)
	}
	if e.inInsideNetwork(dst) {
		// The gateways are in the inside networks: a packet to one is
		// for the NAT, which runs no services of its own.
		if e.isGateway(dst) {
			return e.drop(pk, DropLocal)
		}
		return e.drop(pk, DropNoRoute)
	}
	if martian(pk.dstIn) {
		return e.drop(pk, DropMartian)
	}
	if !srcKnown {
		// On the port's network but not a host the NAT knows: translating
		// it would create mappings for hosts it cannot reach back.
		return e.drop(pk, DropNoRoute)
	}
	if p.TTL <= 1 {
		return e.timeExceeded(pk, e.gateway(in))
	}
	proto := table.Protocol(p.IPProto)
	switch p.IPProto {
	case header.ProtoUDP, header.ProtoTCP, header.ProtoICMP:
	default:
		return e.drop(pk, DropUnsupported)
	}
	// Later fragments carry no transport header (ICMPType reads 0):
	// they follow their first fragment.
	if p.IsFragment() && !p.IsFirstFragment() {
		return e.outboundFragment(pk)
	}
	hairpin := e.isExternal(dst)
	if !hairpin && e.firewallRefuses(p, true) {
		return e.drop(pk, DropFirewall)
	}
	if p.IPProto == header.ProtoICMP {
		if header.IsICMPError(p.ICMPType) {
			return e.outboundICMPError(pk)
		}
		if !header.IsICMPQuery(p.ICMPType) {
			return e.drop(pk, DropUnsupported)
		}
	}
	if !p.HasPorts() {
		return e.drop(pk, DropMalformed)
	}
	if hairpin && !e.hairpin.Load() { // without the lock: checked again under it
		return e.drop(pk, DropHairpinOff)
	}
	// Before any mapping is made: a packet refused here never leaves.
	if !hairpin && e.anyMTU {
		if r, ok := e.fit(pk, Outside, e.gateway(in)); !ok {
			return r
		}
	}
	// A non-atomic datagram gets an identification of the NAT's; a first
	// fragment leaves it for the rest of its datagram (the key is the
	// original identification, so it is read before the rewrite).
	pk.nonAtomic = !p.DontFrag || p.MoreFrags
	var seg table.Segment
	if p.IPProto == header.ProtoTCP {
		tcpSegment(&seg, b, p)
	}

	if !hairpin && !p.MoreFrags {
		m := q.r.Lock().OutboundHitSeg(proto, p.Src, p.Dst, &seg, len(b), now)
		var ext netip.AddrPort
		if m != nil {
			// Read under the lock: Rebind moves external endpoints.
			ext = m.External()
			if pk.nonAtomic {
				pk.newID = q.nextID(pk.segs)
			}
		}
		q.r.Unlock()
		if m != nil {
			return e.translatedOut(pk, ext, 0)
		}
	}

	tab := e.shared.Lock()
	if hairpin && !e.hairpin.Load() {
		// Read again under the lock: the setting read above may have
		// been changed, with the table, while this packet waited.
		e.shared.Unlock()
		return e.drop(pk, DropHairpinOff)
	}
	m, created, err := tab.OutboundSeg(proto, p.Src, p.Dst, seg, now)
	if err != nil {
		// RFC 5508 REQ-8 / RFC 6888 REQ-4: say so with 3/13, never steal
		// a live mapping.
		e.shared.Unlock()
		return e.refused(pk, outboundError(err), e.gateway(in))
	}
	m.AddBytes(true, len(b))
	ext := m.External()
	if pk.nonAtomic {
		pk.newID = q.nextID(pk.segs) // q's reader lock is among those held
	}
	var info MappingInfo
	var notes traceNote
	if created {
		info = e.snapshot(m)
		notes = noteCreated
	}
	if p.MoreFrags && !hairpin {
		e.firstFragment(pk, ext.Addr(), true, Outside, fragWay{id: pk.newID})
	}
	var target *table.Mapping
	var tv table.Verdict
	if hairpin {
		// The packet turns around inside the NAT: it leaves with the
		// sender's external endpoint as source (REQ-9a) and enters the
		// destination mapping through its filter like any inbound packet.
		target, tv = tab.InboundSeg(proto, p.Dst, ext, seg, now)
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
			e.firstFragment(pk, ext.Addr(), true, Outside, fragWay{id: pk.newID, dst: internal.Addr(), out: port})
		}
	}
	e.shared.Unlock()

	if created {
		e.emit(Event{Kind: EventCreated, Time: now, Proto: proto, Mapping: info})
	}
	if !hairpin {
		return e.translatedOut(pk, ext, notes)
	}
	rewriteOut(pk, ext)
	if tv != table.Accept {
		return e.drop(pk, tableVerdict(tv))
	}
	header.RewriteDst(b, p, internal)
	out, ok := e.insidePort(internal.Addr())
	if !ok {
		return e.drop(pk, DropNoRoute)
	}
	e.trace(pk, Forward, out, notes|noteHairpin)
	return e.done(Forward, out, 0)
}

// translatedOut rewrites an outbound packet that is not hairpinned to
// leave from external endpoint ext, and forwards it; notes say whether
// the packet made its mapping.
func (e *Engine) translatedOut(pk *packet, ext netip.AddrPort, notes traceNote) Result {
	rewriteOut(pk, ext)
	e.trace(pk, Forward, Outside, notes)
	pk.q.forwarded.Add(1)
	return Result{Verdict: Forward, Out: Outside, FragMTU: pk.fragMTU}
}

// rewriteOut makes an outbound packet leave from external endpoint ext,
// with identification pk.newID if it is non-atomic, one hop on.
func rewriteOut(pk *packet, ext netip.AddrPort) {
	if pk.nonAtomic {
		header.RewriteID(pk.b, &pk.p, pk.newID)
	}
	header.RewriteSrc(pk.b, &pk.p, ext)
	header.IPv4(pk.b).DecTTL()
}
