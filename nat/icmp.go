package nat

import (
	"net/netip"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// timeExceeded answers a packet whose TTL ran out here (RFC 5508 REQ-10,
// RFC 1812 5.3.1): traceroute shows the NAT as a hop. The answer is
// rate-limited (icmpError); the verdict is ttl-exceeded either way.
func (e *Engine) timeExceeded(pk *packet, src netip.Addr) Result {
	n, notes := 0, traceNote(0)
	if src.IsValid() {
		n, notes = e.icmpError(pk, src, header.ICMPTimeExceeded, 0)
	}
	e.trace(pk, DropTTLExceeded, 0, notes)
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
// ICMP 3/13 from src (RFC 5508 REQ-8, RFC 6888 REQ-3/4), rate-limited
// (icmpError), and counts v either way.
func (e *Engine) refused(pk *packet, v Verdict, src netip.Addr) Result {
	n, notes := e.icmpError(pk, src, header.ICMPDestUnreachable, header.ICMPCodeAdminProhibited)
	e.trace(pk, v, 0, notes)
	return e.done(v, 0, n)
}

// icmpError builds in pk.reply the ICMP error of type typ and code from
// src about pk, back to pk's sender, if the limiter lets one go to it
// now. It returns the error's length, or 0 with noteICMPLimited when the
// limiter held it back (counted in ICMPErrorsLimited). A packet no error
// may answer (an ICMP error, a later fragment) takes no token.
func (e *Engine) icmpError(pk *packet, src netip.Addr, typ, code uint8) (int, traceNote) {
	return e.icmpErrorMTU(pk, src, typ, code, 0)
}

// icmpErrorMTU is icmpError with the next-hop MTU of a fragmentation
// needed error (type 3 code 4).
func (e *Engine) icmpErrorMTU(pk *packet, src netip.Addr, typ, code uint8, mtu uint16) (int, traceNote) {
	n := header.BuildICMPError(pk.reply, pk.b, src, typ, code, mtu)
	if n > 0 && !e.icmpLimit.allow(pk.p.Src.Addr(), pk.now) {
		e.icmpLimited.Add(1)
		return 0, noteICMPLimited
	}
	return n, 0
}
