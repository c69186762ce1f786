package nat

import (
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

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
