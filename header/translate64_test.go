package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestNAT64Prefix: the embeddings of RFC 6052 section 2.4's table, and
// the prefixes it does not define.
func TestNAT64Prefix(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.33").As4()
	for _, c := range []struct{ prefix, want string }{
		{"2001:db8::/32", "2001:db8:c000:221::"},
		{"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
		{"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
		{"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
		{"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
		{"2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"},
		{"64:ff9b::/96", "64:ff9b::192.0.2.33"},
	} {
		x, err := NewNAT64Prefix(netip.MustParsePrefix(c.prefix))
		if err != nil {
			t.Fatalf("%s: %v", c.prefix, err)
		}
		got := x.Embed(v4)
		if want := netip.MustParseAddr(c.want); netip.AddrFrom16(got) != want {
			t.Errorf("%s: embedded %s, want %s", c.prefix, netip.AddrFrom16(got), want)
		}
		back, ok := x.Extract(got)
		if !ok || back != v4 {
			t.Errorf("%s: extracted %v %v", c.prefix, back, ok)
		}
		if _, ok := x.Extract(netip.MustParseAddr("2001:db9::1").As16()); ok {
			t.Errorf("%s: extracted from outside the prefix", c.prefix)
		}
	}
	for _, bad := range []string{"2001:db8::/33", "2001:db8::/24", "2001:db8::/80", "2001:db8:0:0:ff00::/96", "192.0.2.0/24"} {
		if _, err := NewNAT64Prefix(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// nat64Addrs4 are random IPv4 addresses for a translation to IPv4, the
// quote's the other way round as an error about a reply would have them.
func (g gen) nat64Addrs4() Addrs4 {
	s, d := g.addr().As4(), g.addr().As4()
	return Addrs4{Src: s, Dst: d, InnerSrc: d, InnerDst: s}
}

func (g gen) nat64Addrs6() Addrs6 {
	s, d := g.addr6().As16(), g.addr6().As16()
	return Addrs6{Src: s, Dst: d, InnerSrc: d, InnerDst: s}
}

// withoutExt is pkt, an IPv6 packet that is not a fragment, with its
// extension headers taken out and its flow label zeroed: what translating
// it to IPv4 and back gives.
func withoutExt(pkt []byte) []byte {
	p := decode6(pkt)
	out := append(bytes.Clone(pkt[:IPv6Size]), pkt[p.TransportOff:p.Length]...)
	out[ip6NextHeader] = p.Proto
	IPv6(out).SetPayloadLen(uint16(len(out) - IPv6Size))
	binary.BigEndian.PutUint32(out, binary.BigEndian.Uint32(out)&^0xfffff)
	return out
}

// TestTranslateRoundTrip: UDP, TCP and echo packets translated to IPv4
// carry exactly the checksums a full computation gives and decode in
// gopacket to the same fields; translated back with their own addresses
// they are the packets they were (without extension headers and flow
// label, which IPv4 cannot carry).
func TestTranslateRoundTrip(t *testing.T) {
	g := newGen(64)
	for i := range 3000 {
		orig := g.transport6()
		p := decode6(orig)
		if p.Proto == ProtoUDP && UDP(orig[p.TransportOff:]).Checksum() == 0 {
			if TranslateTo4(bytes.Clone(orig), &p, &Addrs4{}) != 0 {
				t.Fatal("UDP without checksum translated to IPv4")
			}
			continue
		}
		b := bytes.Clone(orig)
		a4 := g.nat64Addrs4()
		n := TranslateTo4(b, &p, &a4)
		if n == 0 {
			t.Fatalf("packet %d not translated: %x", i, orig)
		}
		v4 := b[:n]
		p4 := decode(v4)
		if p4.Status != OK || !IPv4(v4).ChecksumValid() || p4.Src.Port() != p.Src.Port() || p4.Dst.Port() != p.Dst.Port() ||
			p4.Src.Addr().As4() != a4.Src || p4.Dst.Addr().As4() != a4.Dst || p4.TTL != p.HopLimit {
			t.Fatalf("translated to %+v from %+v", p4, p)
		}
		if want := recompute(t, v4); !bytes.Equal(v4, want) {
			t.Fatalf("IPv4 checksums:\ngot  %x\nwant %x", v4, want)
		}
		compareGopacket(t, v4, &p4)
		a6 := Addrs6{Src: IPv6(orig).SrcBytes(), Dst: IPv6(orig).DstBytes()}
		n = TranslateTo6(v4, &p4, &a6)
		if n == 0 {
			t.Fatalf("not translated back: %x", v4)
		}
		if want := withoutExt(orig); !bytes.Equal(b[:n], want) {
			t.Fatalf("round trip:\ngot  %x\nwant %x", b[:n], want)
		}
	}
}

// TestTranslateZeroUDPChecksum: a UDP datagram without checksum from
// IPv4 gets one computed over IPv6.
func TestTranslateZeroUDPChecksum(t *testing.T) {
	g := newGen(7)
	for range 200 {
		orig := g.udp(true)
		p := decode(orig)
		b := make([]byte, len(orig), len(orig)+NAT64Growth)
		copy(b, orig)
		a := g.nat64Addrs6()
		n := TranslateTo6(b, &p, &a)
		if n == 0 {
			t.Fatal("not translated")
		}
		p6 := decode6(b[:n])
		if valid, none := transportValid6(b[:n], p6.TransportOff, ProtoUDP); !valid || none {
			t.Fatalf("checksum %v, none %v", valid, none)
		}
	}
}

// TestTranslateICMPErrors: ICMP errors both ways, with the packet they
// quote translated: checksums as a full computation gives them (the
// quote's too when it is whole), the quote's addresses those given,
// gopacket agreeing.
func TestTranslateICMPErrors(t *testing.T) {
	g := newGen(46)
	var to4, to6 int
	for range 2000 {
		pkt, _ := g.icmpError6()
		p := decode6(pkt)
		b := bytes.Clone(pkt)
		a4 := g.nat64Addrs4()
		n := TranslateTo4(b, &p, &a4)
		if n == 0 {
			continue // a type or pointer RFC 7915 drops
		}
		to4++
		p4 := decode(b[:n])
		if p4.Status != OK || p4.InnerOff == 0 || p4.InnerSrc.Addr().As4() != a4.InnerSrc || p4.InnerDst.Addr().As4() != a4.InnerDst ||
			p4.InnerSrc.Port() != p.InnerSrc.Port() || p4.InnerDst.Port() != p.InnerDst.Port() {
			t.Fatalf("to IPv4: %+v\nfrom %+v", p4, p)
		}
		if !ICMPChecksumValid(b[:n], &p4) || !InnerIPChecksumValid(b[:n], &p4) {
			t.Fatalf("to IPv4: a bad checksum in %x", b[:n])
		}
		if want := recompute(t, b[:n]); !bytes.Equal(b[:n], want) {
			t.Fatalf("to IPv4, checksums:\ngot  %x\nwant %x", b[:n], want)
		}
		compareGopacket(t, b[:n], &p4)
	}
	for range 2000 {
		pkt, _ := g.icmpError()
		p := decode(pkt)
		b := make([]byte, len(pkt), len(pkt)+NAT64Growth)
		copy(b, pkt)
		a6 := g.nat64Addrs6()
		n := TranslateTo6(b, &p, &a6)
		if n == 0 {
			continue
		}
		to6++
		v6 := b[:n]
		p6 := decode6(v6)
		if p6.Status != OK || p6.InnerOff == 0 || p6.InnerSrc.Addr().As16() != a6.InnerSrc || p6.InnerDst.Addr().As16() != a6.InnerDst ||
			p6.InnerSrc.Port() != p.InnerSrc.Port() {
			t.Fatalf("to IPv6: %+v\nfrom %+v", p6, p)
		}
		if want := recompute6(t, v6); !bytes.Equal(v6, want) {
			t.Fatalf("to IPv6, checksums:\ngot  %x\nwant %x", v6, want)
		}
		if !compareGopacket6(t, v6, &p6, true) {
			t.Fatalf("gopacket did not decode %x", v6)
		}
	}
	if to4 < 1000 || to6 < 1000 {
		t.Fatalf("only %d to IPv4 and %d to IPv6 translated", to4, to6)
	}
}

// TestTranslateICMPTypes: the RFC 7915 mappings the NAT64 relies on,
// Packet Too Big's MTU adjusted by 20 each way, and a long quote cut to
// 1280 bytes over IPv6.
func TestTranslateICMPTypes(t *testing.T) {
	f6 := IPv6Fields{Src: netip.MustParseAddr("fd00:64::2"), Dst: netip.MustParseAddr("64:ff9b::cb00:710a"), HopLimit: 64}
	buf := make([]byte, 2000)
	udp6 := bytes.Clone(buf[:BuildUDP6(buf, f6, UDPFields{SrcPort: 4000, DstPort: 53}, make([]byte, 1400))])
	f4 := IPv4Fields{Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("203.0.113.10"), TTL: 64}
	udp4 := bytes.Clone(buf[:BuildUDP(buf, f4, UDPFields{SrcPort: 4000, DstPort: 53}, make([]byte, 1400))])
	a4 := Addrs4{Src: [4]byte{240, 0, 0, 1}, Dst: [4]byte{203, 0, 113, 10}, InnerSrc: [4]byte{240, 0, 0, 1}, InnerDst: [4]byte{203, 0, 113, 10}}
	a6 := Addrs6{Src: f6.Dst.As16(), Dst: f6.Src.As16(), InnerSrc: f6.Src.As16(), InnerDst: f6.Dst.As16()}
	for _, c := range []struct {
		typ, code uint8
		param     uint32
		wantType  uint8
		wantCode  uint8
		wantRest  uint32
	}{
		{ICMPv6DestUnreachable, ICMPv6CodePortUnreachable, 0, ICMPDestUnreachable, ICMPCodePortUnreachable, 0},
		{ICMPv6DestUnreachable, ICMPv6CodeNoRoute, 0, ICMPDestUnreachable, ICMPCodeHostUnreachable, 0},
		{ICMPv6PacketTooBig, 0, 1400, ICMPDestUnreachable, ICMPCodeFragNeeded, 1380},
		{ICMPv6TimeExceeded, 0, 0, ICMPTimeExceeded, 0, 0},
		{ICMPv6ParamProblem, 0, 7, ICMPParamProblem, 0, 8 << 24},
	} {
		b := make([]byte, IPv6MinMTU)
		n := BuildICMPv6Error(b, udp6, netip.MustParseAddr("fd00:64::2"), c.typ, c.code, c.param)
		p := decode6(b[:n])
		n = TranslateTo4(b, &p, &a4)
		if n == 0 {
			t.Fatalf("%d/%d not translated", c.typ, c.code)
		}
		m := ICMPv4(b[IPv4MinSize:n])
		if m.Type() != c.wantType || m.Code() != c.wantCode || binary.BigEndian.Uint32(m[4:]) != c.wantRest {
			t.Errorf("%d/%d became %d/%d %#x", c.typ, c.code, m.Type(), m.Code(), binary.BigEndian.Uint32(m[4:]))
		}
	}
	for _, c := range []struct {
		typ, code uint8
		mtu       uint16
		wantType  uint8
		wantCode  uint8
		wantRest  uint32
	}{
		{ICMPDestUnreachable, ICMPCodePortUnreachable, 0, ICMPv6DestUnreachable, ICMPv6CodePortUnreachable, 0},
		{ICMPDestUnreachable, ICMPCodeFragNeeded, 1400, ICMPv6PacketTooBig, 0, 1420},
		{ICMPDestUnreachable, ICMPCodeFragNeeded, 0, ICMPv6PacketTooBig, 0, 1280},
		{ICMPDestUnreachable, ICMPCodeAdminProhibited, 0, ICMPv6DestUnreachable, ICMPv6CodeAdminProhibited, 0},
		{ICMPTimeExceeded, 1, 0, ICMPv6TimeExceeded, 1, 0},
	} {
		b := make([]byte, 2000)
		q := udp4[:1300] // more than fits in 1280 bytes once translated
		n := BuildICMP(b, IPv4Fields{Src: f4.Dst, Dst: f4.Src, TTL: 64}, ICMPFields{Type: c.typ, Code: c.code, Seq: c.mtu}, q)
		p := decode(b[:n])
		n = TranslateTo6(b[:n], &p, &a6)
		if n == 0 {
			t.Fatalf("%d/%d not translated", c.typ, c.code)
		}
		if n != IPv6MinMTU {
			t.Errorf("%d/%d: %d bytes over IPv6, want 1280", c.typ, c.code, n)
		}
		m := ICMPv6(b[IPv6Size:n])
		if m.Type() != c.wantType || m.Code() != c.wantCode || m.MTU() != c.wantRest {
			t.Errorf("%d/%d became %d/%d %d", c.typ, c.code, m.Type(), m.Code(), m.MTU())
		}
		if valid, _ := transportValid6(b[:n], IPv6Size, ProtoICMPv6); !valid {
			t.Errorf("%d/%d: bad ICMPv6 checksum", c.typ, c.code)
		}
	}
	// Dropped: redirects, an ICMPv6 error with a bad checksum, and
	// fragments.
	b := make([]byte, 2000)
	n := BuildICMP(b, IPv4Fields{Src: f4.Dst, Dst: f4.Src, TTL: 64}, ICMPFields{Type: ICMPRedirect}, udp4[:28])
	if p := decode(b[:n]); TranslateTo6(b[:n], &p, &a6) != 0 {
		t.Error("redirect translated")
	}
	n = BuildICMPv6Error(b, udp6, netip.MustParseAddr("fd00:64::2"), ICMPv6DestUnreachable, 4, 0)
	b[n-1] ^= 1
	if p := decode6(b[:n]); TranslateTo4(b, &p, &a4) != 0 {
		t.Error("ICMPv6 error with a bad checksum translated")
	}
	first, _ := fragment6(udp6, 512, 7)
	if p := decode6(first); TranslateTo4(first, &p, &a4) != 0 {
		t.Error("fragment translated")
	}
}

var sinkN int

// TestNoAllocs64: translation allocates nothing.
func TestNoAllocs64(t *testing.T) {
	udp, tcp, echo, ptb := testPackets6()
	a4 := Addrs4{Src: [4]byte{240, 0, 0, 1}, Dst: [4]byte{203, 0, 113, 10}}
	for name, pkt := range map[string][]byte{"udp": udp, "tcp": tcp, "echo": echo, "ptb": ptb} {
		b := make([]byte, len(pkt), len(pkt)+NAT64Growth)
		a6 := Addrs6{Src: IPv6(pkt).DstBytes(), Dst: IPv6(pkt).SrcBytes(), InnerSrc: IPv6(pkt).SrcBytes(), InnerDst: IPv6(pkt).DstBytes()}
		allocs := testing.AllocsPerRun(100, func() {
			copy(b[:cap(b)], pkt)
			b = b[:len(pkt)]
			var p ParsedV6
			p.Decode(b)
			n := TranslateTo4(b, &p, &a4)
			var p4 Parsed
			p4.Decode(b[:n])
			sinkN = TranslateTo6(b[:n], &p4, &a6)
		})
		if allocs != 0 || sinkN == 0 {
			t.Errorf("%s: %v allocations, length %d", name, allocs, sinkN)
		}
	}
}

// FuzzTranslate64: any IPv6 packet that decodes OK, its checksums made
// valid, either is refused or becomes an IPv4 packet that decodes OK with
// the checksums a full computation gives, writing nothing past the
// growth it may use; a UDP, TCP or echo packet translated back is the
// packet it was, without extension headers and flow label.
func FuzzTranslate64(f *testing.F) {
	for _, s := range fuzzSeeds6() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var p ParsedV6
		p.Decode(in)
		if p.Status != OK {
			return
		}
		orig := recompute6(t, in)
		b := make([]byte, len(orig), len(orig)+NAT64Growth)
		copy(b, orig)
		a4 := Addrs4{Src: [4]byte{240, 0, 0, 1}, Dst: [4]byte{203, 0, 113, 10}, InnerSrc: [4]byte{203, 0, 113, 10}, InnerDst: [4]byte{240, 0, 0, 1}}
		n := TranslateTo4(b, &p, &a4)
		if n == 0 {
			return
		}
		v4 := b[:n]
		p4 := decode(v4)
		if p4.Status != OK {
			t.Fatalf("translated to %v: %x", p4.Status, v4)
		}
		if want := recompute(t, v4); !bytes.Equal(v4, want) {
			t.Fatalf("checksums:\ngot  %x\nwant %x", v4, want)
		}
		if p.Proto == ProtoICMPv6 && IsICMPv6Error(p.ICMPType) {
			return
		}
		a6 := Addrs6{Src: IPv6(orig).SrcBytes(), Dst: IPv6(orig).DstBytes()}
		n = TranslateTo6(v4, &p4, &a6)
		if want := withoutExt(orig); !bytes.Equal(b[:n], want) {
			t.Fatalf("round trip:\ngot  %x\nwant %x", b[:n], want)
		}
	})
}
