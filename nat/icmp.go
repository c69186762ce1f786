package nat

import (
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// timeExceeded answers a packet whose TTL ran out here (RFC 5508 REQ-10,
// RFC 1812 5.3.1): traceroute shows the NAT as a hop. The answers are
// rate-limited (icmpLimiter).
func (e *Engine) timeExceeded(pk *packet, src netip.Addr) Result {
	n := 0
	if src.IsValid() {
		if !e.icmpAllowed(pk.p.Src.Addr(), pk.now) {
			return e.drop(pk, DropICMPRate)
		}
		n = header.BuildICMPError(pk.reply, pk.b, src, header.ICMPTimeExceeded, 0, 0)
	}
	e.trace(pk, DropTTLExceeded, 0, 0)
	return e.done(DropTTLExceeded, 0, n)
}

// inboundICMPError translates an error about a packet we sent out
// (RFC 5508 REQ-4/5): the embedded packet's source is our external
// endpoint; it becomes the inside endpoint again, and the outer
// destination the inside host. Checked first (REQ-3), looked up without
// refreshing or creating anything (REQ-6).
func (e *Engine) inboundICMPError(pk *packet) Result {
	b, p, now := pk.b, &pk.p, pk.now
	if p.InnerOff == 0 {
		return e.drop(pk, DropMalformed)
	}
	if !header.ICMPChecksumValid(b, p) || !header.InnerIPChecksumValid(b, p) {
		return e.drop(pk, DropBadChecksum)
	}
	if p.InnerSrc.Addr() != p.Dst.Addr() {
		return e.drop(pk, DropNoMapping)
	}
	proto := table.Protocol(p.InnerProto)
	m, tv := e.shared.Lock().PeekInbound(proto, p.InnerSrc, p.InnerDst, now)
	var internal netip.AddrPort
	if m != nil && tv == table.Accept {
		internal = m.Internal()
	}
	e.shared.Unlock()
	if m == nil {
		return e.drop(pk, DropNoMapping)
	}
	if tv != table.Accept {
		return e.drop(pk, tableVerdict(tv))
	}
	out, ok := e.insidePort(internal.Addr())
	if !ok {
		return e.drop(pk, DropNoRoute)
	}
	header.RewriteInnerSrc(b, p, internal)
	header.RewriteDst(b, p, netip.AddrPortFrom(internal.Addr(), 0))
	header.IPv4(b).DecTTL()
	e.trace(pk, Forward, out, noteICMPError)
	return e.done(Forward, out, 0)
}

// outboundICMPError translates an inside host's error about a packet it
// received from outside (its kernel's port unreachable, say): the embedded
// packet's destination was our external endpoint.
func (e *Engine) outboundICMPError(pk *packet) Result {
	b, p, now := pk.b, &pk.p, pk.now
	if p.InnerOff == 0 {
		return e.drop(pk, DropMalformed)
	}
	if !header.ICMPChecksumValid(b, p) || !header.InnerIPChecksumValid(b, p) {
		return e.drop(pk, DropBadChecksum)
	}
	if p.InnerDst.Addr() != p.Src.Addr() {
		return e.drop(pk, DropNoMapping)
	}
	proto := table.Protocol(p.InnerProto)
	m := e.shared.Lock().PeekOutbound(proto, p.InnerDst, p.InnerSrc, now)
	var ext netip.AddrPort
	if m != nil {
		ext = m.External()
	}
	e.shared.Unlock()
	if m == nil {
		return e.drop(pk, DropNoMapping)
	}
	header.RewriteInnerDst(b, p, ext)
	header.RewriteSrc(b, p, netip.AddrPortFrom(ext.Addr(), 0))
	header.IPv4(b).DecTTL()
	e.trace(pk, Forward, Outside, noteICMPError)
	return e.done(Forward, Outside, 0)
}

// refused answers a packet that no free port or a limit refused with
// ICMP 3/13 from src (RFC 5508 REQ-8, RFC 6888 REQ-3/4) when send says
// the rate allows one, and counts v.
func (e *Engine) refused(pk *packet, v Verdict, src netip.Addr, send bool) Result {
	n := 0
	if send {
		n = header.BuildICMPError(pk.reply, pk.b, src, header.ICMPDestUnreachable, header.ICMPCodeAdminProhibited, 0)
	}
	e.trace(pk, v, 0, 0)
	return e.done(v, 0, n)
}

// tokenBucket allows rate events per second, in bursts of up to rate.
// The zero time of last starts it full.
type tokenBucket struct {
	rate   int // per second; 0: none
	tokens float64
	last   time.Time
}

// take reports whether an event may happen at now, using a token if so.
// A now earlier than the last one seen (readers' clocks are read once
// per batch) adds nothing.
func (b *tokenBucket) take(now time.Time) bool {
	if b.rate <= 0 {
		return false
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(b.rate), b.tokens+d.Seconds()*float64(b.rate))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
