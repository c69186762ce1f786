package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// udp6Golden is an IPv6/UDP packet written out one field to a line.
var udp6Golden = []byte{
	0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
	0x00, 0x0c, // payload length 12
	0x11, 0x40, // next header 17 (UDP); hop limit 64
	0xfd, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // source fd00:1::2
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53, // destination 2001:db8::53
	0x14, 0xe9, 0x00, 0x35, // UDP source port 5353, destination port 53
	0x00, 0x0c, // UDP length 12
	0x36, 0x1e, // UDP checksum
	0x68, 0x69, 0x21, 0x21, // payload "hi!!"
}

// TestDecode6Golden decodes the golden packet and hostile variants of it,
// each made by one change to the bytes.
func TestDecode6Golden(t *testing.T) {
	if ok, _ := transportValid6(udp6Golden, IPv6Size, ProtoUDP); !ok {
		t.Fatal("golden UDP checksum is wrong")
	}
	src := netip.MustParseAddr("fd00:1::2")
	dst := netip.MustParseAddr("2001:db8::53")
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(udp6Golden)) }
	ext := func(next uint8, hdr ...[]byte) []byte {
		// The golden packet with hdr, the first of type next, between
		// the fixed header and UDP.
		b := bytes.Clone(udp6Golden[:IPv6Size])
		b[ip6NextHeader] = next
		for _, h := range hdr {
			b = append(b, h...)
		}
		b = append(b, udp6Golden[IPv6Size:]...)
		IPv6(b).SetPayloadLen(uint16(len(b) - IPv6Size))
		return b
	}
	tests := []struct {
		name   string
		b      []byte
		status Status
		proto  uint8
		off    int
	}{
		{"golden", udp6Golden, OK, ProtoUDP, 40},
		{"padding after the packet", append(bytes.Clone(udp6Golden), 0, 0, 0), OK, ProtoUDP, 40},
		{"empty", nil, Truncated, 0, 0},
		{"version 4", with(func(b []byte) []byte { b[0] = 0x45; return b }), BadVersion, 0, 0},
		{"39 bytes", udp6Golden[:39], Truncated, 0, 0},
		{"payload length past the end", udp6Golden[:51], Truncated, 0, 0},
		{"jumbogram", with(func(b []byte) []byte { b[4], b[5], b[6] = 0, 0, ProtoHopByHop; return b }), BadPayloadLen, 0, 0},
		{"no next header, empty", with(func(b []byte) []byte { b[4], b[5], b[6] = 0, 0, ProtoNoNext; return b[:40] }), OK, ProtoNoNext, 40},
		{"UDP header cut", with(func(b []byte) []byte { b[5] = 7; return b[:47] }), BadTransport, ProtoUDP, 40},
		{"UDP length 7", with(func(b []byte) []byte { b[45] = 7; return b }), BadTransport, ProtoUDP, 40},
		{"UDP length past the packet", with(func(b []byte) []byte { b[45] = 13; return b }), BadTransport, ProtoUDP, 40},
		{"hop-by-hop, then UDP", ext(ProtoHopByHop, []byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}), OK, ProtoUDP, 48},
		{"destination options of 16 bytes, routing, then UDP", ext(ProtoDestinations, []byte{ProtoRouting, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{ProtoUDP, 0, 0, 0, 0, 0, 0, 0}), OK, ProtoUDP, 64},
		{"AH of 12 bytes, then UDP", ext(ProtoAH, []byte{ProtoUDP, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1}), OK, ProtoUDP, 52},
		{"ESP ends the chain", with(func(b []byte) []byte { b[6] = ProtoESP; return b }), OK, ProtoESP, 40},
		{"hop-by-hop second", ext(ProtoDestinations, []byte{ProtoHopByHop, 0, 1, 4, 0, 0, 0, 0}, []byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}), BadExtChain, 0, 0},
		{"extension header past the end", ext(ProtoDestinations, []byte{ProtoUDP, 200, 1, 4, 0, 0, 0, 0}), BadExtChain, 0, 0},
		{"nine destination options", func() []byte {
			var hs [][]byte
			for range 9 {
				hs = append(hs, []byte{ProtoDestinations, 0, 1, 4, 0, 0, 0, 0})
			}
			hs[8][0] = ProtoUDP
			return ext(ProtoDestinations, hs...)
		}(), BadExtChain, 0, 0},
		{"two Fragment headers", ext(ProtoFragment, []byte{ProtoFragment, 0, 0, 1, 0, 0, 0, 1}, []byte{ProtoUDP, 0, 0, 0, 0, 0, 0, 1}), BadExtChain, 0, 0},
		{"later fragment: no ports", ext(ProtoFragment, []byte{ProtoUDP, 0, 0, 8, 0, 0, 0, 1}), OK, ProtoUDP, 48},
		{"first fragment, UDP length past it", func() []byte {
			b := ext(ProtoFragment, []byte{ProtoUDP, 0, 0, 1, 0, 0, 0, 1})
			b[48+5] = 200
			return b
		}(), OK, ProtoUDP, 48},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decode6(tt.b)
			if p.Status != tt.status || p.Proto != tt.proto || p.TransportOff != tt.off {
				t.Fatalf("got %v proto %d off %d, want %v %d %d (%+v)", p.Status, p.Proto, p.TransportOff, tt.status, tt.proto, tt.off, p)
			}
			checkParsed6(t, tt.b, &p)
			if p.Status == OK && p.Src.Addr() != src || p.Status == OK && p.Dst.Addr() != dst {
				t.Fatalf("addresses %v %v", p.Src, p.Dst)
			}
		})
	}
	p := decode6(udp6Golden)
	if p.Src != netip.AddrPortFrom(src, 5353) || p.Dst != netip.AddrPortFrom(dst, 53) || p.Length != 52 || p.HopLimit != 64 || !p.HasPorts() {
		t.Fatalf("golden: %+v", p)
	}
}

// TestDecode6EveryPrefix: every cut of a packet with headers decodes
// without panicking, and the cut ones are never OK with ports.
func TestDecode6EveryPrefix(t *testing.T) {
	g := newGen(27)
	for range 50 {
		b := g.packet6()
		for i := range len(b) {
			p := decode6(b[:i])
			checkParsed6(t, b[:i], &p)
			if p.Status == OK {
				t.Fatalf("prefix %d of %d is OK", i, len(b))
			}
		}
	}
}

// TestViews6 reads every field of the views from built packets.
func TestViews6(t *testing.T) {
	f := IPv6Fields{
		Src: netip.MustParseAddr("fd00:1::2"), Dst: netip.MustParseAddr("2001:db8::1"),
		TrafficClass: 0xb8, FlowLabel: 0xabcde, HopLimit: 7,
	}
	buf := make([]byte, 200)
	n := BuildICMPv6(buf, f, ICMPFields{Type: ICMPv6EchoRequest, Ident: 0x1234, Seq: 0x5678}, []byte("ping"))
	ip := IPv6(buf[:n])
	if ip.Version() != 6 || ip.TrafficClass() != 0xb8 || ip.FlowLabel() != 0xabcde || ip.HopLimit() != 7 ||
		ip.PayloadLen() != 12 || ip.NextHeader() != ProtoICMPv6 || ip.Src() != f.Src || ip.Dst() != f.Dst ||
		ip.SrcBytes() != f.Src.As16() || ip.DstBytes() != f.Dst.As16() || len(ip.Payload()) != 12 {
		t.Fatalf("IPv6 view: %x", ip)
	}
	m := ICMPv6(ip.Payload())
	if m.Type() != ICMPv6EchoRequest || m.Code() != 0 || m.Ident() != 0x1234 || m.Seq() != 0x5678 ||
		m.MTU() != 0x12345678 || m.Pointer() != 0x12345678 || string(m.Payload()) != "ping" {
		t.Fatalf("ICMPv6 view: %x", m)
	}
	ip.DecHopLimit()
	if ip.HopLimit() != 6 {
		t.Fatal("DecHopLimit")
	}
	ip.SetHopLimit(0)
	ip.DecHopLimit()
	if ip.HopLimit() != 0 {
		t.Fatal("DecHopLimit wrapped 0")
	}
	fr := IPv6Fragment([]byte{ProtoTCP, 0, 0x05, 0x39, 0xca, 0xfe, 0xf0, 0x0d})
	if fr.NextHeader() != ProtoTCP || fr.Offset() != 0x538 || !fr.More() || fr.Ident() != 0xcafef00d {
		t.Fatalf("fragment view: %d %d %v %x", fr.NextHeader(), fr.Offset(), fr.More(), fr.Ident())
	}
}

// TestWalkExtensionsBounded: whatever the bytes, the walk ends within
// MaxExtHeaders steps and inside the buffer.
func TestWalkExtensionsBounded(t *testing.T) {
	g := newGen(28)
	for range 20000 {
		b := g.bytes(g.Intn(200))
		// Mostly extension header types, to make long chains.
		for i := 0; i < len(b); i += 8 {
			if g.Intn(4) != 0 {
				b[i] = []byte{ProtoHopByHop, ProtoRouting, ProtoFragment, ProtoDestinations, ProtoAH}[g.Intn(5)]
				if i+1 < len(b) {
					b[i+1] &= 3
				}
			}
		}
		c, ok := WalkExtensions(b, ProtoDestinations, 0)
		if c.Off > len(b) || c.FragOff > c.Off || (ok && c.Off < 8) {
			t.Fatalf("walk %+v %v in %d bytes", c, ok, len(b))
		}
	}
}

// checkParsed6 checks what Decode promises about p, decoded from b: every
// offset in bounds, and the fields equal to the bytes they came from.
func checkParsed6(t *testing.T, b []byte, p *ParsedV6) {
	t.Helper()
	if p.Status != OK {
		if p.InnerOff != 0 || p.HasPorts() {
			t.Fatalf("%v with InnerOff %d HasPorts %v", p.Status, p.InnerOff, p.HasPorts())
		}
		return
	}
	ip := IPv6(b)
	if p.Length != IPv6Size+int(ip.PayloadLen()) || p.Length > len(b) || p.TransportOff < IPv6Size || p.TransportOff > p.Length ||
		p.HopLimit != ip.HopLimit() || p.Src.Addr() != ip.Src() || p.Dst.Addr() != ip.Dst() {
		t.Fatalf("fixed header disagrees: %+v", p)
	}
	if p.FragHdrOff != 0 {
		f := IPv6Fragment(b[p.FragHdrOff:])
		if p.FragHdrOff+8 > p.TransportOff || f.Ident() != p.FragID || f.Offset() != p.FragOffset || f.More() != p.MoreFrags {
			t.Fatalf("fragment disagrees: %+v", p)
		}
	} else if p.FragOffset != 0 || p.MoreFrags || p.FragID != 0 {
		t.Fatalf("fragment fields without a Fragment header: %+v", p)
	}
	seg := b[p.TransportOff:p.Length]
	var sp, dp uint16
	if p.HasPorts() {
		switch p.Proto {
		case ProtoUDP:
			sp, dp = UDP(seg).SrcPort(), UDP(seg).DstPort()
		case ProtoTCP:
			if TCP(seg).DataOffset() > len(seg) || TCP(seg).DataOffset() < TCPMinSize || p.TCPFlags != TCP(seg).Flags() {
				t.Fatalf("TCP from %d bytes", len(seg))
			}
			sp, dp = TCP(seg).SrcPort(), TCP(seg).DstPort()
		case ProtoICMPv6:
			sp = ICMPv6(seg).Ident()
			dp = sp
		}
	}
	if p.Src.Port() != sp || p.Dst.Port() != dp {
		t.Fatalf("ports %d %d, bytes say %d %d", p.Src.Port(), p.Dst.Port(), sp, dp)
	}
	if p.InnerOff == 0 {
		if p.Proto == ProtoICMPv6 && p.FragOffset == 0 && IsICMPv6Error(p.ICMPType) {
			t.Fatal("OK ICMPv6 error without a quote")
		}
		if p.InnerSrc.IsValid() || p.InnerDst.IsValid() || p.InnerProto != 0 || p.InnerHeaderLen != 0 {
			t.Fatalf("inner fields without a quote: %+v", p)
		}
		return
	}
	if p.Proto != ProtoICMPv6 || !IsICMPv6Error(p.ICMPType) || p.IsFragment() || p.InnerOff != p.TransportOff+ICMPv6MinSize ||
		p.InnerHeaderLen < IPv6Size || p.InnerOff+p.InnerHeaderLen+8 > p.Length {
		t.Fatalf("quote: %+v", p)
	}
	q := IPv6(b[p.InnerOff:p.Length])
	if q.Src() != p.InnerSrc.Addr() || q.Dst() != p.InnerDst.Addr() {
		t.Fatalf("quoted addresses: %+v", p)
	}
	qt := b[p.InnerOff+p.InnerHeaderLen:]
	sp, dp = binary.BigEndian.Uint16(qt[0:]), binary.BigEndian.Uint16(qt[2:])
	if p.InnerProto == ProtoICMPv6 {
		sp = ICMPv6(qt).Ident()
		dp = sp
	}
	if p.InnerSrc.Port() != sp || p.InnerDst.Port() != dp {
		t.Fatalf("quoted ports: %+v", p)
	}
}

// TestStatusString6 names the IPv6 statuses.
func TestStatusString6(t *testing.T) {
	if BadPayloadLen.String() != "bad-payload-length" || BadExtChain.String() != "bad-extension-chain" {
		t.Fatal(BadPayloadLen.String(), BadExtChain.String())
	}
}

// TestDecode6ICMPv6Errors: the quotes Decode refuses to translate are
// BadInner, and the quote's extension headers are walked.
func TestDecode6ICMPv6Errors(t *testing.T) {
	router := netip.MustParseAddr("2001:db8::1")
	host := netip.MustParseAddr("fd00:1::2")
	server := netip.MustParseAddr("2001:db8::53")
	errorAbout := func(quote []byte) []byte {
		b := make([]byte, 2000)
		n := BuildICMPv6(b, IPv6Fields{Src: router, Dst: host, HopLimit: 64}, ICMPFields{Type: ICMPv6DestUnreachable}, quote)
		return b[:n]
	}
	buf := make([]byte, 2000)
	udp := bytes.Clone(buf[:BuildUDP6(buf, IPv6Fields{Src: host, Dst: server, HopLimit: 1}, UDPFields{SrcPort: 5353, DstPort: 53}, []byte("query"))])
	echoErr := bytes.Clone(buf[:BuildICMPv6(buf, IPv6Fields{Src: host, Dst: server, HopLimit: 1}, ICMPFields{Type: ICMPv6TimeExceeded}, make([]byte, 48))])
	ext := withExt(udp, ProtoHopByHop, ProtoDestinations, ProtoRouting)
	_, later := fragment6(udp, 8, 1)
	tests := []struct {
		name   string
		b      []byte
		status Status
		inner  int // InnerHeaderLen
	}{
		{"UDP", errorAbout(udp), OK, 40},
		{"UDP behind three extension headers", errorAbout(ext), OK, 64},
		{"headers and 8 bytes exactly", errorAbout(ext[:72]), OK, 64},
		{"7 bytes of UDP", errorAbout(ext[:71]), BadInner, 0},
		{"quote cut inside the chain", errorAbout(ext[:60]), BadInner, 0},
		{"IPv4 quoted", errorAbout(goldenPackets["udp"]), BadInner, 0},
		{"an error quoted", errorAbout(echoErr), BadInner, 0},
		{"a later fragment quoted", errorAbout(later), BadInner, 0},
		{"the error itself in fragments", func() []byte {
			f, _ := fragment6(errorAbout(udp), 48, 2)
			return f
		}(), BadInner, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decode6(tt.b)
			if p.Status != tt.status || p.InnerHeaderLen != tt.inner {
				t.Fatalf("%v, inner header %d; want %v, %d", p.Status, p.InnerHeaderLen, tt.status, tt.inner)
			}
			checkParsed6(t, tt.b, &p)
			if p.Status == OK && (p.InnerSrc != netip.AddrPortFrom(host, 5353) || p.InnerDst != netip.AddrPortFrom(server, 53) || p.InnerProto != ProtoUDP) {
				t.Fatalf("quote: %+v", p)
			}
		})
	}
}
