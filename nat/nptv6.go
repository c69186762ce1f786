package nat

import (
	"net/netip"

	"github.com/gonat/gonat/header"
)

// The nptv6 mode: RFC 6296 Network Prefix Translation. The inside
// prefix (the inside ports' IPv6 network) and an external prefix of the
// same length (External6[0]'s) stand for each other, address for
// address, with no state: going out the source's prefix is replaced,
// coming in the destination's, and one 16-bit word of the address is
// adjusted so that its one's-complement sum is unchanged (section 3.2,
// header.NPTv6). No checksum that covers the address changes: not the
// transport's, and not an ICMPv6 error's, whose quote is translated the
// other way (section 3.5 asks for it: the quoted destination going out,
// the quoted source coming in), so the bytes are written as they are.
//
// It filters nothing: RFC 6296 section 5 leaves filtering to a firewall
// beside it. An address whose adjustment word is 0xFFFF cannot be
// mapped (section 3.5) and is dropped as unsupported.

// nptv6 forwards pk in the nptv6 mode.
func (e *Engine) nptv6(pk *packet6, st *v6State) Result {
	p, b := &pk.p, pk.b
	src, dst := p.Src.Addr(), p.Dst.Addr()
	isErr := p.Proto == header.ProtoICMPv6 && header.IsICMPv6Error(p.ICMPType)
	if pk.in != Outside {
		if r, done := e.fromInside6(pk, true); done {
			return r
		}
		to, ok := st.npt.Outbound(src.As16())
		if !ok {
			return e.drop6(pk, DropUnsupported)
		}
		notes := traceNote(0)
		if isErr {
			// The quote is of a packet from outside to the host: its
			// destination goes out as the external address it was sent to.
			q := (*[16]byte)(b[p.InnerOff+24 : p.InnerOff+40])
			if qa, ok := st.npt.Outbound(*q); ok {
				*q = qa
			}
			notes = noteICMPError
		}
		*(*[16]byte)(b[8:24]) = to
		p.Src = netip.AddrPortFrom(netip.AddrFrom16(to), p.Src.Port())
		return e.forward6(pk, Outside, notes)
	}

	if martian6(dst) || martian6(src) && !(isErr && src.IsLinkLocalUnicast()) {
		return e.drop6(pk, DropMartian)
	}
	if _, inside := e.port6(src); inside {
		return e.drop6(pk, DropMartian)
	}
	to, ok := st.npt.Inbound(dst.As16())
	if !ok {
		return e.drop6(pk, DropNoRoute)
	}
	out, ok := e.port6(netip.AddrFrom16(to))
	if !ok {
		return e.drop6(pk, DropNoRoute)
	}
	if p.HopLimit <= 1 {
		return e.timeExceeded6(pk, st.ext)
	}
	if e.anyMTU {
		// From the external address the packet was sent to: the
		// quote is untranslated, as the sender sent it.
		if r, ok := e.fit6(pk, out, dst); !ok {
			return r
		}
	}
	notes := traceNote(0)
	if isErr {
		q := (*[16]byte)(b[p.InnerOff+8 : p.InnerOff+24])
		if qa, ok := st.npt.Inbound(*q); ok {
			*q = qa
		}
		notes = noteICMPError
	}
	*(*[16]byte)(b[24:40]) = to
	p.Dst = netip.AddrPortFrom(netip.AddrFrom16(to), p.Dst.Port())
	return e.forward6(pk, out, notes)
}
