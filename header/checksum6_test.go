package header

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestPseudoHeaderSum6 checks the sum against RFC 8200 section 8.1's
// layout written out as bytes and summed word by word.
func TestPseudoHeaderSum6(t *testing.T) {
	g := newGen(30)
	for range 1000 {
		src, dst := g.addr6(), g.addr6()
		proto := uint8(g.Intn(256))
		length := g.Uint32()
		var ph [40]byte
		s, d := src.As16(), dst.As16()
		copy(ph[0:], s[:])
		copy(ph[16:], d[:])
		binary.BigEndian.PutUint32(ph[32:], length)
		ph[39] = proto
		if got, want := Fold(PseudoHeaderSum6(src, dst, proto, length)), refSum(ph[:]); got != want && !(got == 0xffff && want == 0) {
			t.Fatalf("%v %v %d %d: %#x, want %#x", src, dst, proto, length, got, want)
		}
	}
}

// TestUpdateChecksum128Property: changing a 16-byte field at an even
// offset and updating the checksum incrementally gives the checksum a
// full computation gives (RFC 1624), for random data and fields.
func TestUpdateChecksum128Property(t *testing.T) {
	g := newGen(31)
	for range 20000 {
		data := g.bytes(16 + 2*g.Intn(40))
		if g.Intn(8) == 0 {
			clear(data) // the all-zero edge
		}
		off := 2 * g.Intn((len(data)-16)/2+1)
		c := Checksum(data, 0)
		var na [16]byte
		if g.Intn(4) != 0 {
			g.Read(na[:])
		}
		oa := [16]byte(data[off:])
		copy(data[off:], na[:])
		got := UpdateChecksum128(c, oa, na)
		want := Checksum(data, 0)
		// A full computation over all-zero data gives 0xFFFF, which
		// eqn. 3 cannot reach; no pseudo-header sum is ever zero.
		if got != want && !(want == 0xffff && got == 0) {
			t.Fatalf("%x at %d: incremental %#x, full %#x", data, off, got, want)
		}
	}
}

// TestNPTv6Example is RFC 6296 Appendix B's example: fd01:203:405::/48
// inside and 2001:db8:1::/48 outside map fd01:203:405:1::1234 to
// 2001:db8:1:d550::1234.
func TestNPTv6Example(t *testing.T) {
	n, ok := NewNPTv6(netip.MustParsePrefix("fd01:203:405::/48"), netip.MustParsePrefix("2001:db8:1::/48"))
	if !ok {
		t.Fatal("NewNPTv6 refused")
	}
	in := netip.MustParseAddr("fd01:203:405:1::1234")
	out, ok := n.Outbound(in.As16())
	if want := netip.MustParseAddr("2001:db8:1:d550::1234"); !ok || netip.AddrFrom16(out) != want {
		t.Fatalf("outbound %v %v, want %v", netip.AddrFrom16(out), ok, want)
	}
	back, ok := n.Inbound(out)
	if !ok || netip.AddrFrom16(back) != in {
		t.Fatalf("inbound %v %v", netip.AddrFrom16(back), ok)
	}
}

// TestNPTv6ChecksumNeutral: for random prefixes of every allowed length,
// translated addresses keep the one's-complement sum (so a UDP packet's
// checksum still verifies with no update), stay in the target prefix
// and come back unchanged.
func TestNPTv6ChecksumNeutral(t *testing.T) {
	g := newGen(32)
	buf := make([]byte, 200)
	for range 5000 {
		bits := 1 + g.Intn(64)
		inside := netip.PrefixFrom(g.addr6(), bits).Masked()
		outside := netip.PrefixFrom(g.addr6(), bits).Masked()
		n, ok := NewNPTv6(inside, outside)
		if !ok {
			t.Fatalf("refused %v %v", inside, outside)
		}
		var a [16]byte
		g.Read(a[:])
		ia := inside.Addr().As16()
		for i := range bits / 8 {
			a[i] = ia[i]
		}
		if r := bits % 8; r != 0 {
			m := byte(0xff) << (8 - r)
			a[bits/8] = a[bits/8]&^m | ia[bits/8]
		}
		if !inside.Contains(netip.AddrFrom16(a)) {
			t.Fatalf("test address %v not in %v", netip.AddrFrom16(a), inside)
		}
		f := IPv6Fields{Src: netip.AddrFrom16(a), Dst: g.addr6(), HopLimit: 64}
		pkt := buf[:BuildUDP6(buf, f, UDPFields{SrcPort: g.port(), DstPort: g.port()}, g.bytes(g.Intn(50)))]
		out, ok := n.Outbound(a)
		if !ok {
			continue // the adjustment word was 0xFFFF
		}
		if !outside.Contains(netip.AddrFrom16(out)) {
			t.Fatalf("%v -> %v, not in %v", netip.AddrFrom16(a), netip.AddrFrom16(out), outside)
		}
		IPv6(pkt).SetSrc(netip.AddrFrom16(out))
		if ok, _ := transportValid6(pkt, IPv6Size, ProtoUDP); !ok {
			t.Fatalf("%v -> %v (%v to %v): checksum no longer verifies", netip.AddrFrom16(a), netip.AddrFrom16(out), inside, outside)
		}
		back, ok := n.Inbound(out)
		if !ok || back != a {
			t.Fatalf("%v -> %v -> %v", netip.AddrFrom16(a), netip.AddrFrom16(out), netip.AddrFrom16(back))
		}
	}
	if _, ok := NewNPTv6(netip.MustParsePrefix("fd00::/48"), netip.MustParsePrefix("2001:db8::/56")); ok {
		t.Error("prefixes of different lengths accepted")
	}
	if _, ok := NewNPTv6(netip.MustParsePrefix("fd00::/72"), netip.MustParsePrefix("2001:db8::/72")); ok {
		t.Error("a /72 accepted")
	}
	n, _ := NewNPTv6(netip.MustParsePrefix("fd00::/48"), netip.MustParsePrefix("2001:db8::/48"))
	if _, ok := n.Outbound(netip.MustParseAddr("fd01::1").As16()); ok {
		t.Error("address outside the prefix translated")
	}
	if _, ok := n.Outbound(netip.MustParseAddr("fd00:0:0:ffff::1").As16()); ok {
		t.Error("adjustment word 0xFFFF translated (RFC 6296 section 3.5)")
	}
}
