package header

import (
	"bytes"
	"net/netip"
	"testing"
)

type rewriteOp6 struct {
	name string
	fn   func([]byte, *ParsedV6, netip.AddrPort)
}

// opsFor6 lists the rewrites that apply to p.
func opsFor6(p *ParsedV6) []rewriteOp6 {
	ops := []rewriteOp6{{"Src", RewriteSrc6}, {"Dst", RewriteDst6}}
	if p.InnerOff != 0 {
		ops = append(ops, rewriteOp6{"InnerSrc", RewriteInnerSrc6}, rewriteOp6{"InnerDst", RewriteInnerDst6})
	}
	return ops
}

// TestRewrite6MatchesRecompute: every rewrite of every random packet
// leaves exactly the bytes a full recomputation of the checksums gives,
// and the fields Decode reads back are the ones written.
func TestRewrite6MatchesRecompute(t *testing.T) {
	g := newGen(21)
	for range 5000 {
		b := g.packet6()
		p := decode6(b)
		if p.Status != OK {
			t.Fatalf("generated %v: %x", p.Status, b)
		}
		if !bytes.Equal(recompute6(t, b), b) {
			t.Fatalf("generated packet's checksums are not a sender's: %x", b)
		}
		for range 1 + g.Intn(3) {
			ops := opsFor6(&p)
			op := ops[g.Intn(len(ops))]
			to := g.addrPort6()
			before := bytes.Clone(b)
			op.fn(b, &p, to)
			if want := recompute6(t, b); !bytes.Equal(b, want) {
				t.Fatalf("%s to %v:\nbefore %x\nafter  %x\nfull   %x", op.name, to, before, b, want)
			}
			if q := decode6(b); q != p {
				t.Fatalf("%s: Parsed not kept in step:\nkept    %+v\ndecoded %+v", op.name, p, q)
			}
		}
	}
}

// TestRewrite6RoundTrip: translating there and back restores the bytes.
func TestRewrite6RoundTrip(t *testing.T) {
	g := newGen(22)
	for range 2000 {
		b := g.packet6()
		orig := bytes.Clone(b)
		p := decode6(b)
		src, dst := p.Src, p.Dst
		RewriteSrc6(b, &p, g.addrPort6())
		RewriteDst6(b, &p, g.addrPort6())
		RewriteDst6(b, &p, dst)
		RewriteSrc6(b, &p, src)
		if p.InnerOff != 0 {
			is := p.InnerSrc
			RewriteInnerSrc6(b, &p, g.addrPort6())
			RewriteInnerSrc6(b, &p, is)
		}
		if !bytes.Equal(b, orig) {
			t.Fatalf("round trip:\nwas %x\nnow %x", orig, b)
		}
	}
}

// TestRewrite6Fragments: the first fragment's checksum is fixed for the
// whole packet, later fragments have only their address changed, and
// reassembled they verify.
func TestRewrite6Fragments(t *testing.T) {
	g := newGen(24)
	buf := make([]byte, 2000)
	n := BuildUDP6(buf, g.ip6Fields(), UDPFields{SrcPort: 5353, DstPort: 53}, g.bytes(200))
	first, second := fragment6(buf[:n], 96, 0xdeadbeef)
	p1, p2 := decode6(first), decode6(second)
	if p1.Status != OK || !p1.HasPorts() || !p1.MoreFrags || p1.FragID != 0xdeadbeef || p1.TransportOff != 48 {
		t.Fatalf("first fragment: %+v", p1)
	}
	if p2.Status != OK || p2.HasPorts() || p2.FragOffset != 96 || p2.MoreFrags || p2.Src.Port() != 0 {
		t.Fatalf("second fragment: %+v", p2)
	}
	to := netip.MustParseAddrPort("[2001:db8::1]:40000")
	RewriteSrc6(first, &p1, to)
	before := bytes.Clone(second[IPv6Size:])
	RewriteSrc6(second, &p2, to)
	if !bytes.Equal(second[IPv6Size:], before) || IPv6(second).Src() != to.Addr() || p2.Src.Port() != 0 {
		t.Fatal("later fragment: more than the address changed")
	}
	whole := append(bytes.Clone(first[:IPv6Size]), first[IPv6Size+8:]...)
	whole = append(whole, second[IPv6Size+8:]...)
	whole[ip6NextHeader] = ProtoUDP
	IPv6(whole).SetPayloadLen(uint16(len(whole) - IPv6Size))
	if ok, _ := transportValid6(whole, IPv6Size, ProtoUDP); !ok {
		t.Fatal("reassembled checksum does not verify")
	}
	if UDP(whole[IPv6Size:]).SrcPort() != 40000 {
		t.Fatal("port not rewritten")
	}
}

// TestRewrite6UDPZeroStays: a UDP checksum of 0 stays 0.
func TestRewrite6UDPZeroStays(t *testing.T) {
	g := newGen(25)
	b := g.udp6(true)
	p := decode6(b)
	RewriteSrc6(b, &p, g.addrPort6())
	if UDP(b[IPv6Size:]).Checksum() != 0 {
		t.Fatal("zero UDP checksum was filled in")
	}
}

// TestRewrite6NotOK: nothing is touched unless Decode said OK, or
// without a quote.
func TestRewrite6NotOK(t *testing.T) {
	g := newGen(26)
	b := g.udp6(false)
	b = b[:len(b)-1] // payload length now past the end
	p := decode6(b)
	if p.Status != Truncated {
		t.Fatalf("status %v", p.Status)
	}
	before := bytes.Clone(b)
	for _, op := range []rewriteOp6{{"Src", RewriteSrc6}, {"Dst", RewriteDst6}, {"InnerSrc", RewriteInnerSrc6}, {"InnerDst", RewriteInnerDst6}} {
		op.fn(b, &p, g.addrPort6())
	}
	c := g.tcp6()
	pc := decode6(c)
	cc := bytes.Clone(c)
	RewriteInnerSrc6(c, &pc, g.addrPort6())
	if !bytes.Equal(b, before) || !bytes.Equal(c, cc) {
		t.Fatal("rewrote a packet it should not have")
	}
}

// TestRewrite6InboundError: an error from outside about a packet the NAT
// sent (quoting its external source) is turned back into one about the
// inside host's packet, checksums valid, quote and all.
func TestRewrite6InboundError(t *testing.T) {
	internal := netip.MustParseAddrPort("[fd00:1::2]:5353")
	external := netip.MustParseAddrPort("[2001:db8:1::1]:40000")
	server := netip.MustParseAddrPort("[2001:db8:2::53]:53")
	router := netip.MustParseAddr("2001:db8:3::1")
	buf := make([]byte, 2000)
	n := BuildUDP6(buf, IPv6Fields{Src: internal.Addr(), Dst: server.Addr(), HopLimit: 64},
		UDPFields{SrcPort: internal.Port(), DstPort: server.Port()}, []byte("query"))
	sent := bytes.Clone(buf[:n])
	p := decode6(sent)
	RewriteSrc6(sent, &p, external)
	errBuf := make([]byte, IPv6MinMTU)
	en := BuildICMPv6Error(errBuf, sent, router, ICMPv6TimeExceeded, 0, 0)
	e := errBuf[:en]
	pe := decode6(e)
	if pe.Status != OK || pe.InnerOff != IPv6Size+ICMPv6MinSize || pe.InnerSrc != external || pe.InnerDst != server || pe.InnerProto != ProtoUDP {
		t.Fatalf("error decoded as %+v", pe)
	}
	RewriteDst6(e, &pe, internal)
	RewriteInnerSrc6(e, &pe, internal)
	if want := recompute6(t, e); !bytes.Equal(e, want) {
		t.Fatalf("checksums:\ngot  %x\nwant %x", e, want)
	}
	if !bytes.Equal(e[pe.InnerOff:], buf[:n]) {
		t.Fatalf("quote is not the original packet:\n%x\n%x", e[pe.InnerOff:], buf[:n])
	}
}
