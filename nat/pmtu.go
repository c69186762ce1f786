package nat

import (
	"fmt"
	"net/netip"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun/offload"
)

// Path MTU. Each port may have the MTU of the link beyond it
// (Config.OutsideMTU, InsidePort.MTU). Where that link is a device of
// its own the lab sets the device's MTU too, so the kernels on the far
// side keep to it; the engine enforces it for what the NAT sends there,
// as a router does for its next hop:
//
//   - IPv4 with DF clear is fragmented (RFC 791, RFC 1812 section
//     5.2.6): the engine translates it whole and says so in
//     Result.FragMTU; the forwarding plane cuts it
//     (header.FragmentIPv4). A super-packet is cut into segments first.
//   - IPv4 with DF set gets ICMP 3/4, fragmentation needed, with the
//     link's MTU (RFC 1191 section 4), from the NAT's address on the
//     sender's side: its gateway for a packet from inside, the external
//     address the packet was sent to for one from outside, so the
//     outside sender sees the address it knows. The error quotes the
//     packet as it came in, before any translation, which is the packet
//     the sender sent.
//   - IPv6 is never fragmented by routers (RFC 8200 section 5): Packet
//     Too Big with the link's MTU (RFC 4443 section 3.2), likewise.
//
// A super-packet (TSO/USO) is measured by its segments, not its whole:
// each segment is what the wire carries. Errors are rate-limited like
// every error the NAT makes (icmplimit.go), and the drops are counted as
// too-big. With pmtu-blackhole the errors are not sent and the drops are
// counted as pmtu-blackhole: the black hole of RFC 2923 section 2.1,
// where a TCP connection opens and then stalls on its first full-sized
// segment.
//
// Not checked: a hairpinned packet (it stays in the NAT) and an ICMP
// error the NAT translates (at most 576 bytes from IPv4 routers, 1280
// from IPv6 ones: both fit any link the settings allow).

// Smallest MTUs a link may have: every IPv4 module must forward a 68-byte
// datagram unfragmented (RFC 791), every IPv6 link carry 1280 bytes (RFC
// 8200 section 5).
const (
	minMTU4 = 68
	minMTU6 = header.IPv6MinMTU
	maxMTU  = 65535
)

// validateMTUs checks the ports' MTUs: within IPv4's range, and for a
// port that carries IPv6 at least IPv6's minimum.
func (c *Config) validateMTUs() error {
	check := func(what string, mtu int, v6 bool) error {
		switch {
		case mtu == 0:
			return nil
		case mtu < minMTU4 || mtu > maxMTU:
			return fmt.Errorf("%s %d: want %d-%d (IPv4 needs at least %d; 0: no limit)", what, mtu, minMTU4, maxMTU, minMTU4)
		case v6 && mtu < minMTU6:
			return fmt.Errorf("%s %d: the link carries IPv6, which needs at least %d (RFC 8200)", what, mtu, minMTU6)
		}
		return nil
	}
	if err := check("outside MTU", c.OutsideMTU, len(c.Table.External6) > 0); err != nil {
		return err
	}
	for i, ip := range c.Inside {
		v6 := false
		for _, h := range ip.Hosts {
			v6 = v6 || h.Addr().Is6()
		}
		if err := check(fmt.Sprintf("inside port %d MTU", i+1), ip.MTU, v6); err != nil {
			return err
		}
	}
	return nil
}

// setMTUs fills e.mtu from the configuration.
func (e *Engine) setMTUs() {
	e.mtu = make([]uint16, 1+len(e.cfg.Inside))
	e.mtu[Outside] = uint16(e.cfg.OutsideMTU)
	for i, ip := range e.cfg.Inside {
		e.mtu[i+1] = uint16(ip.MTU)
	}
	for _, m := range e.mtu {
		e.anyMTU = e.anyMTU || m > 0
	}
	e.pmtuBlackhole.Store(e.cfg.Table.PMTUBlackhole)
}

// MTU returns the MTU the engine enforces towards port p (0: none).
func (e *Engine) MTU(p Port) int {
	if p < 0 || int(p) >= len(e.mtu) {
		return 0
	}
	return int(e.mtu[p])
}

// fit decides whether pk, not yet translated, may leave by port out:
// true when it fits the link, or may be fragmented to fit (pk.fragMTU
// set); false with the result of refusing it (tooBig), the error from
// src. Callers check e.anyMTU first.
func (e *Engine) fit(pk *packet, out Port, src netip.Addr) (Result, bool) {
	mtu := e.mtu[out]
	w := pk.wire
	if w == 0 {
		w = len(pk.b)
	}
	if mtu == 0 || w <= int(mtu) {
		return Result{}, true
	}
	if !pk.p.DontFrag {
		pk.fragMTU = mtu
		return Result{}, true
	}
	return e.tooBig(pk, mtu, src), false
}

// cutToFit marks later fragment pk to be cut again if it exceeds the
// link to port out: a fragment is never refused for its size (its first
// fragment decided that for the datagram).
func (e *Engine) cutToFit(pk *packet, out Port) {
	if mtu := e.mtu[out]; mtu > 0 && len(pk.b) > int(mtu) {
		pk.fragMTU = mtu
	}
}

// tooBig refuses pk for a link of MTU mtu: ICMP 3/4 from src, or
// nothing under pmtu-blackhole.
func (e *Engine) tooBig(pk *packet, mtu uint16, src netip.Addr) Result {
	if e.pmtuBlackhole.Load() {
		return e.drop(pk, DropPMTUBlackhole)
	}
	n, notes := e.icmpErrorMTU(pk, src, header.ICMPDestUnreachable, header.ICMPCodeFragNeeded, mtu)
	e.trace(pk, DropTooBig, 0, notes)
	return e.done(DropTooBig, 0, n)
}

// forwardFit is done(Forward, out, 0) for a packet fit let through,
// with the MTU to fragment it to, if any.
func (e *Engine) forwardFit(pk *packet, out Port) Result {
	r := e.done(Forward, out, 0)
	r.FragMTU = pk.fragMTU
	return r
}

// fit6 is fit for IPv6: false, with Packet Too Big from src sent back
// (or nothing under pmtu-blackhole), when pk is larger than the link to
// port out carries. Every IPv6 mode that forwards calls it before it
// translates anything, so that the error quotes the packet as it was
// sent; callers check e.anyMTU first.
func (e *Engine) fit6(pk *packet6, out Port, src netip.Addr) (Result, bool) {
	mtu := e.mtu[out]
	w := pk.wire
	if w == 0 {
		w = len(pk.b)
	}
	if mtu == 0 || w <= int(mtu) {
		return Result{}, true
	}
	if e.pmtuBlackhole.Load() {
		return e.drop6(pk, DropPMTUBlackhole), false
	}
	n := header.BuildICMPv6Error(pk.reply, pk.b, src, header.ICMPv6PacketTooBig, 0, uint32(mtu))
	notes := traceNote(0)
	if n > 0 && !e.icmpLimit.allow(pk.p.Src.Addr(), pk.now) {
		e.icmpLimited.Add(1)
		n, notes = 0, noteICMPLimited
	}
	e.trace6(pk, DropTooBig, 0, notes)
	return e.done(DropTooBig, 0, n), false
}

// ext6Source is the source of what the NAT answers an IPv6 packet from
// outside with: its external IPv6 address, else its address on port out.
func (e *Engine) ext6Source(st *v6State, out Port) netip.Addr {
	if st.ext.IsValid() {
		return st.ext
	}
	return e.gateway6(out)
}

// segmentWire is the size of the largest datagram super-packet b (IPv4,
// virtio-net header h) leaves as: its headers and one segment's payload.
func segmentWire(b []byte, h *offload.VirtioHdr) int {
	if !h.IsGSO() {
		return 0
	}
	if _, hl := h.WireSegments(b); hl > 0 {
		return min(len(b), hl+int(h.GSOSize))
	}
	return 0
}

// segmentWire6 is segmentWire for an IPv6 super-packet, whose transport
// header starts at the checksum's start.
func segmentWire6(b []byte, h *offload.VirtioHdr) int {
	if !h.IsGSO() {
		return 0
	}
	cs, thl := int(h.CsumStart), header.UDPSize
	if h.GSOType&^offload.GSOECN == offload.GSOTCPv6 {
		if cs+13 > len(b) {
			return 0
		}
		thl = int(b[cs+12]>>4) * 4
	}
	return min(len(b), cs+thl+int(h.GSOSize))
}
