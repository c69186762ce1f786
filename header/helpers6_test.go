package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// addr6 is a documentation address: fd00::/8 inside (one in three),
// 2001:db8::/32 outside, the rest of the bits random so that checksums
// vary.
func (g gen) addr6() netip.Addr {
	var a [16]byte
	g.Read(a[:])
	if g.Intn(3) == 0 {
		a[0] = 0xfd
	} else {
		copy(a[:4], []byte{0x20, 0x01, 0x0d, 0xb8})
	}
	return netip.AddrFrom16(a)
}

func (g gen) addrPort6() netip.AddrPort { return netip.AddrPortFrom(g.addr6(), g.port()) }

func (g gen) ip6Fields() IPv6Fields {
	return IPv6Fields{
		Src:          g.addr6(),
		Dst:          g.addr6(),
		TrafficClass: uint8(g.Intn(256)),
		FlowLabel:    uint32(g.Intn(1 << 20)),
		HopLimit:     uint8(1 + g.Intn(255)),
	}
}

func (g gen) udp6(zeroChecksum bool) []byte {
	buf := make([]byte, 2000)
	n := BuildUDP6(buf, g.ip6Fields(), UDPFields{SrcPort: g.port(), DstPort: g.port()}, g.bytes(g.payloadLen()))
	pkt := buf[:n]
	if zeroChecksum {
		UDP(pkt[IPv6Size:]).SetChecksum(0)
	}
	return pkt
}

func (g gen) tcp6() []byte {
	buf := make([]byte, 2000)
	tf := TCPFields{
		SrcPort: g.port(), DstPort: g.port(),
		Seq: g.Uint32(), Ack: g.Uint32(),
		Flags: uint8(g.Intn(0x40)), Window: uint16(g.Intn(0x10000)),
	}
	return buf[:BuildTCP6(buf, g.ip6Fields(), tf, g.bytes(g.payloadLen()))]
}

func (g gen) echo6() []byte {
	buf := make([]byte, 2000)
	types := [...]uint8{ICMPv6EchoRequest, ICMPv6EchoReply}
	ic := ICMPFields{Type: types[g.Intn(2)], Ident: g.port(), Seq: uint16(g.Intn(0x10000))}
	return buf[:BuildICMPv6(buf, g.ip6Fields(), ic, g.bytes(g.payloadLen()))]
}

// Extension headers of 8 bytes each, as gopacket decodes them; the first
// byte (next header) is filled in by withExt.
var (
	extHopByHop = []byte{0, 0, 1, 4, 0, 0, 0, 0}             // PadN with 4 bytes
	extDestOpts = []byte{0, 0, 1, 4, 0, 0, 0, 0}             // PadN with 4 bytes
	extRouting  = []byte{0, 0, 0, 0, 0, 0, 0, 0}             // type 0, segments left 0, no addresses
	extAtomic   = []byte{0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78} // offset 0, M clear (RFC 6946)
	// AH of 16 bytes: payload length 2 ((2+2)*4 bytes, RFC 4302), SPI,
	// sequence number and a 4-byte ICV.
	extAH = []byte{0, 2, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 7, 0xa1, 0xb2, 0xc3, 0xd4}
)

// withExt returns pkt, an IPv6 packet without extension headers, with the
// headers of types types (and contents from the table above) put between
// its fixed header and its upper layer. No checksum changes: the
// pseudo-header counts the upper layer only.
func withExt(pkt []byte, types ...uint8) []byte {
	out := bytes.Clone(pkt[:IPv6Size])
	next := IPv6(pkt).NextHeader()
	if len(types) > 0 {
		out[ip6NextHeader] = types[0]
	}
	for i, typ := range types {
		var h []byte
		switch typ {
		case ProtoHopByHop:
			h = extHopByHop
		case ProtoDestinations:
			h = extDestOpts
		case ProtoRouting:
			h = extRouting
		case ProtoFragment:
			h = extAtomic
		case ProtoAH:
			h = extAH
		}
		h = bytes.Clone(h)
		h[0] = next
		if i+1 < len(types) {
			h[0] = types[i+1]
		}
		out = append(out, h...)
	}
	out = append(out, pkt[IPv6Size:]...)
	IPv6(out).SetPayloadLen(uint16(len(out) - IPv6Size))
	return out
}

// maybeExt gives one packet in three extension headers: hop-by-hop
// first or not, then destination options, routing, an atomic fragment,
// AH.
func (g gen) maybeExt(pkt []byte) []byte {
	if g.Intn(3) != 0 {
		return pkt
	}
	var types []uint8
	if g.Intn(2) == 0 {
		types = append(types, ProtoHopByHop)
	}
	for _, t := range []uint8{ProtoDestinations, ProtoRouting, ProtoFragment, ProtoAH} {
		if g.Intn(2) == 0 {
			types = append(types, t)
		}
	}
	return withExt(pkt, types...)
}

// transport6 is a random UDP (one in eight without checksum), TCP or
// echo packet, with extension headers now and then.
func (g gen) transport6() []byte {
	switch g.Intn(3) {
	case 0:
		return g.maybeExt(g.udp6(g.Intn(8) == 0))
	case 1:
		return g.maybeExt(g.tcp6())
	}
	return g.maybeExt(g.echo6())
}

// icmpError6 returns an ICMPv6 error quoting orig, a random transport
// packet, and orig: the quote is the headers and 8 bytes, or more, up to
// all of orig or the 1280-byte limit.
func (g gen) icmpError6() (pkt, orig []byte) {
	orig = g.transport6()
	p := decode6(orig)
	room := min(len(orig), IPv6MinMTU-IPv6Size-ICMPv6MinSize)
	q := p.TransportOff + 8
	switch g.Intn(3) {
	case 0:
		q = room
	case 1:
		q += g.Intn(room - q + 1)
	}
	types := [...][2]uint8{
		{ICMPv6DestUnreachable, ICMPv6CodePortUnreachable},
		{ICMPv6DestUnreachable, ICMPv6CodeAdminProhibited},
		{ICMPv6PacketTooBig, 0},
		{ICMPv6TimeExceeded, 0},
		{ICMPv6ParamProblem, 0},
	}
	t := types[g.Intn(len(types))]
	buf := make([]byte, IPv6Size+ICMPv6MinSize+q)
	n := BuildICMPv6Error(buf, orig, g.addr6(), t[0], t[1], g.Uint32())
	if n == 0 {
		panic("icmpError6: refused")
	}
	return g.maybeExt(buf[:n]), orig
}

// packet6 is any of the above.
func (g gen) packet6() []byte {
	if g.Intn(4) == 0 {
		p, _ := g.icmpError6()
		return p
	}
	return g.transport6()
}

// recompute6 returns a copy of pkt with every checksum that Decode can
// locate computed afresh, the way a sender computes it: the quoted upper
// layer's when the whole quoted packet is there, then the outer upper
// layer's (a zero UDP checksum left alone), ICMPv6's last as it covers
// the quote. The incremental updates must give exactly this.
func recompute6(t testing.TB, pkt []byte) []byte {
	t.Helper()
	b := bytes.Clone(pkt)
	p := decode6(b)
	if p.Status != OK {
		t.Fatalf("recompute6: %v", p.Status)
	}
	if p.InnerOff != 0 {
		q := b[p.InnerOff:p.Length]
		c, _ := WalkExtensions(q, IPv6(q).NextHeader(), IPv6Size)
		if n := IPv6Size + int(IPv6(q).PayloadLen()); n <= len(q) && n >= p.InnerHeaderLen &&
			(c.FragOff == 0 || !IPv6Fragment(q[c.FragOff:]).More()) {
			recomputeTransport6(q[:n], p.InnerHeaderLen, p.InnerProto)
		}
	}
	if !p.IsFragment() {
		recomputeTransport6(b[:p.Length], p.TransportOff, p.Proto)
	}
	return b
}

// recomputeTransport6 computes the UDP, TCP or ICMPv6 checksum of the
// whole packet b whose upper layer starts at off.
func recomputeTransport6(b []byte, off int, proto uint8) {
	if proto == ProtoUDP && (len(b) < off+UDPSize || UDP(b[off:]).Checksum() == 0) {
		return
	}
	if len(b) < off+TCPMinSize && proto == ProtoTCP || len(b) < off+ICMPv6MinSize {
		return
	}
	SetTransportChecksum6(IPv6(b), proto, off)
}

// transportValid6 reports whether the upper-layer checksum of the whole
// packet b verifies, and whether it is a UDP checksum of 0 (none).
func transportValid6(b []byte, off int, proto uint8) (valid, udpNone bool) {
	seg := b[off:]
	if proto == ProtoUDP && UDP(seg).Checksum() == 0 {
		return true, true
	}
	return Checksum(seg, PseudoHeaderSum6(IPv6(b).Src(), IPv6(b).Dst(), proto, uint32(len(seg)))) == 0, false
}

// fragment6 splits pkt, without extension headers, at upper-layer offset
// cut (a multiple of 8) into two fragments with identification id, as the
// source would (RFC 8200 section 4.5).
func fragment6(pkt []byte, cut int, id uint32) (first, second []byte) {
	frag := func(off int, more bool, data []byte) []byte {
		f := bytes.Clone(pkt[:IPv6Size])
		f[ip6NextHeader] = ProtoFragment
		h := make([]byte, IPv6FragmentSize)
		h[0] = IPv6(pkt).NextHeader()
		v := uint16(off)
		if more {
			v |= fragM
		}
		binary.BigEndian.PutUint16(h[fragOffFlags:], v)
		binary.BigEndian.PutUint32(h[fragIdent:], id)
		f = append(append(f, h...), data...)
		IPv6(f).SetPayloadLen(uint16(len(f) - IPv6Size))
		return f
	}
	up := pkt[IPv6Size:]
	return frag(0, true, up[:cut]), frag(cut, false, up[cut:])
}

// decode6 is ParsedV6.Decode as an expression.
func decode6(b []byte) ParsedV6 {
	var p ParsedV6
	p.Decode(b)
	return p
}
