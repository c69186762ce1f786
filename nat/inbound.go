package nat

import (
	"net/netip"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// inbound translates a packet from outside for the inside host whose
// mapping owns its destination, if the mapping's filter lets it in.
func (e *Engine) inbound(pk *packet) Result {
	q, b, p, now := pk.q, pk.b, &pk.p, pk.now
	dst := p.Dst.Addr()
	if !e.isExternal(dst) {
		return e.drop(pk, DropNoRoute)
	}
	if e.martianSource(pk) {
		return e.drop(pk, DropMartian)
	}
	if p.TTL <= 1 {
		return e.timeExceeded(pk, dst)
	}
	proto := table.Protocol(p.IPProto)
	switch p.IPProto {
	case header.ProtoUDP, header.ProtoTCP, header.ProtoICMP:
	default:
		return e.drop(pk, DropUnsupported)
	}
	if p.IsFragment() && !p.IsFirstFragment() {
		return e.inboundFragment(pk)
	}
	if p.IPProto == header.ProtoICMP {
		if header.IsICMPError(p.ICMPType) {
			if e.firewallRefuses(p, false) {
				return e.drop(pk, DropFirewall)
			}
			return e.inboundICMPError(pk)
		}
		if !header.IsICMPQuery(p.ICMPType) {
			return e.drop(pk, DropUnsupported)
		}
	}
	if !p.HasPorts() {
		return e.drop(pk, DropMalformed)
	}
	var seg table.Segment
	if p.IPProto == header.ProtoTCP {
		tcpSegment(&seg, b, p)
		// A segment that could open or end a session must be one the
		// host would take; data segments are left to the host.
		if p.TCPFlags&(header.TCPSyn|header.TCPFin|header.TCPRst) != 0 && !tcpChecksumOK(b, p) {
			return e.drop(pk, DropBadChecksum)
		}
	}
	if !p.MoreFrags {
		m, tv, ok := q.r.Lock().InboundHitSeg(proto, p.Dst, p.Src, &seg, len(b), now)
		q.r.Unlock()
		if ok {
			if tv != table.Accept {
				return e.drop(pk, tableVerdict(tv))
			}
			if e.firewallRefuses(p, false) {
				return e.drop(pk, DropFirewall)
			}
			return e.translatedIn(pk, m.Internal())
		}
	}
	m, tv := e.shared.Lock().InboundSeg(proto, p.Dst, p.Src, seg, now)
	if tv != table.Accept {
		v := tableVerdict(tv)
		if tv == table.DropLimitSessionsPerMapping || tv == table.DropLimitSessions {
			e.shared.Unlock()
			return e.refused(pk, v, dst)
		}
		e.shared.Unlock()
		return e.drop(pk, v)
	}
	if e.firewallRefuses(p, false) {
		e.shared.Unlock()
		return e.drop(pk, DropFirewall)
	}
	m.AddBytes(false, len(b))
	internal := m.Internal()
	if p.MoreFrags {
		// translatedIn looks the port up again; only a first fragment
		// needs it here, under the lock.
		if out, ok := e.insidePort(internal.Addr()); ok {
			e.firstFragment(pk, internal.Addr(), false, out, fragWay{})
		}
	}
	e.shared.Unlock()
	return e.translatedIn(pk, internal)
}

// translatedIn rewrites an inbound packet for internal endpoint internal
// and forwards it to that host's port.
func (e *Engine) translatedIn(pk *packet, internal netip.AddrPort) Result {
	b, p := pk.b, &pk.p
	out, ok := e.insidePort(internal.Addr())
	if !ok {
		return e.drop(pk, DropNoRoute)
	}
	// Refused before the rewrite: the error quotes the packet as sent,
	// from the external address it was sent to.
	if e.anyMTU {
		if r, ok := e.fit(pk, out, p.Dst.Addr()); !ok {
			return r
		}
	}
	header.RewriteDst(b, p, internal)
	header.IPv4(b).DecTTL()
	e.trace(pk, Forward, out, 0)
	pk.q.forwarded.Add(1)
	return Result{Verdict: Forward, Out: out, FragMTU: pk.fragMTU}
}
