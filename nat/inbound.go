package nat

import (
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// inbound translates a packet from outside for the inside host whose
// mapping owns its destination, if the mapping's filter lets it in.
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
