package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

type rewriteOp struct {
	name  string
	fn    func(b []byte, p *Parsed, to netip.AddrPort)
	get   func(p *Parsed) netip.AddrPort
	inner bool
	// outer is the rewrite of the original packet that matches an inner
	// one: the quote's source is the original's source.
	outer func(b []byte, p *Parsed, to netip.AddrPort)
}

var rewriteOps = []rewriteOp{
	{name: "RewriteSrc", fn: RewriteSrc, get: func(p *Parsed) netip.AddrPort { return p.Src }},
	{name: "RewriteDst", fn: RewriteDst, get: func(p *Parsed) netip.AddrPort { return p.Dst }},
	{name: "RewriteInnerSrc", fn: RewriteInnerSrc, get: func(p *Parsed) netip.AddrPort { return p.InnerSrc }, inner: true, outer: RewriteSrc},
	{name: "RewriteInnerDst", fn: RewriteInnerDst, get: func(p *Parsed) netip.AddrPort { return p.InnerDst }, inner: true, outer: RewriteDst},
}

// opsFor is the rewrites that apply to p.
func opsFor(p *Parsed) []rewriteOp {
	if p.InnerOff != 0 {
		return rewriteOps
	}
	return rewriteOps[:2]
}

// TestRewriteMatchesRecompute is the central property: over many random
// packets (UDP with and without checksum, TCP, ICMP queries, ICMP errors
// quoting any of those, with and without IP options), every rewrite
// leaves exactly the checksums a full recomputation gives, keeps Parsed
// equal to a fresh decode, and, for a quote, leaves the quoted bytes
// equal to those of the original packet rewritten the same way.
func TestRewriteMatchesRecompute(t *testing.T) {
	g := newGen(5)
	n := 30000
	if testing.Short() {
		n = 3000
	}
	for i := range n {
		var b, orig []byte
		if i%3 == 0 {
			b, orig = g.icmpError()
		} else {
			b = g.transport()
		}
		if !bytes.Equal(b, recompute(t, b)) {
			t.Fatalf("generator made a packet with a bad checksum: %x", b)
		}
		p := decode(b)
		ops := opsFor(&p)
		op := ops[g.Intn(len(ops))]
		hadPorts := p.HasPorts()
		udpZero := p.IPProto == ProtoUDP && UDP(b[p.IPHeaderLen:]).Checksum() == 0
		to := g.addrPort()
		before := bytes.Clone(b)

		op.fn(b, &p, to)

		if want := recompute(t, b); !bytes.Equal(b, want) {
			t.Fatalf("%s(%v) on\n%x\n got %x\nwant %x", op.name, to, before, b, want)
		}
		if fresh := decode(b); fresh != p {
			t.Fatalf("%s: Parsed out of step with the bytes:\nkept  %+v\nfresh %+v", op.name, p, fresh)
		}
		want := to
		if !op.inner && !hadPorts {
			want = netip.AddrPortFrom(to.Addr(), 0)
		}
		if got := op.get(&p); got != want {
			t.Fatalf("%s: now %v, want %v", op.name, got, want)
		}
		if udpZero && UDP(b[p.IPHeaderLen:]).Checksum() != 0 {
			t.Fatalf("%s: a zero UDP checksum became %#04x", op.name, UDP(b[p.IPHeaderLen:]).Checksum())
		}
		if op.inner {
			o := bytes.Clone(orig)
			po := decode(o)
			op.outer(o, &po, to)
			quote := b[p.InnerOff:p.Length]
			want := bytes.Clone(o[:len(quote)])
			if p.InnerProto == ProtoTCP && len(quote) == p.InnerHeaderLen+tcpChecksum+1 {
				// Half a checksum quoted: left as it was.
				want[len(want)-1] = orig[len(want)-1]
			}
			if !bytes.Equal(quote, want) {
				t.Fatalf("%s: quote\n%x\ndiffers from the original rewritten\n%x", op.name, quote, o[:len(quote)])
			}
		}
	}
}

// TestRewriteRoundTrip: rewriting to X and back restores the exact bytes
// and the exact Parsed.
func TestRewriteRoundTrip(t *testing.T) {
	g := newGen(6)
	for range 20000 {
		b := g.packet()
		orig := bytes.Clone(b)
		p := decode(b)
		p0 := p
		for _, op := range opsFor(&p) {
			was := op.get(&p)
			op.fn(b, &p, g.addrPort())
			op.fn(b, &p, was)
			if !bytes.Equal(b, orig) {
				t.Fatalf("%s there and back:\n got %x\nwant %x", op.name, b, orig)
			}
			if p != p0 {
				t.Fatalf("%s there and back: Parsed %+v, want %+v", op.name, p, p0)
			}
		}
	}
}

// TestRewriteFragments: rewriting the fragments of a datagram gives the
// fragments of the rewritten datagram. The first carries the transport
// checksum, which covers the whole datagram; later ones change address
// only.
func TestRewriteFragments(t *testing.T) {
	g := newGen(7)
	for i := range 5000 {
		var whole []byte
		for {
			whole = g.transport()
			if len(whole)-IPv4(whole).HeaderLen() >= 40 {
				break
			}
		}
		hl := IPv4(whole).HeaderLen()
		minCut := 8
		if IPv4(whole).Protocol() == ProtoTCP {
			minCut = 24
		}
		cut := minCut + 8*g.Intn((len(whole)-hl-minCut)/8)
		first, second := fragment(whole, cut)
		op := rewriteOps[i%2]
		to := g.addrPort()

		w := bytes.Clone(whole)
		pw := decode(w)
		op.fn(w, &pw, to)
		wantFirst, wantSecond := fragment(w, cut)

		pf := decode(first)
		if !pf.HasPorts() || !pf.IsFragment() {
			t.Fatalf("first fragment decoded as %+v", pf)
		}
		op.fn(first, &pf, to)
		if !bytes.Equal(first, wantFirst) {
			t.Fatalf("%s first fragment:\n got %x\nwant %x", op.name, first, wantFirst)
		}
		ps := decode(second)
		if ps.HasPorts() || ps.Status != OK {
			t.Fatalf("second fragment decoded as %+v", ps)
		}
		op.fn(second, &ps, to)
		if !bytes.Equal(second, wantSecond) {
			t.Fatalf("%s second fragment:\n got %x\nwant %x", op.name, second, wantSecond)
		}
		if got := op.get(&ps); got != netip.AddrPortFrom(to.Addr(), 0) {
			t.Fatalf("%s second fragment: %v", op.name, got)
		}
	}
}

// udpSumZero returns a UDP packet whose checksum computes to 0 and is
// therefore sent as 0xFFFF (RFC 768): one payload word is chosen to make
// the one's-complement sum -0.
func udpSumZero(t *testing.T, g gen) []byte {
	buf := make([]byte, 200)
	n := BuildUDP(buf, g.ipFields(), UDPFields{SrcPort: g.port(), DstPort: g.port()}, g.bytes(2+g.Intn(40)))
	b := buf[:n]
	u := UDP(b[IPv4MinSize:])
	c := uint32(u.Checksum())
	w := uint32(binary.BigEndian.Uint16(u[UDPSize:]))
	binary.BigEndian.PutUint16(u[UDPSize:], Fold(w+c))
	b = recompute(t, b)
	if got := UDP(b[IPv4MinSize:]).Checksum(); got != 0xffff {
		t.Fatalf("udpSumZero made checksum %#04x", got)
	}
	return b
}

func TestUDPChecksumFFFF(t *testing.T) {
	g := newGen(8)
	for range 2000 {
		b := udpSumZero(t, g)
		p := decode(b)
		src := p.Src

		// From 0xFFFF to something else and back.
		c := bytes.Clone(b)
		pc := p
		RewriteSrc(c, &pc, g.addrPort())
		if !bytes.Equal(c, recompute(t, c)) {
			t.Fatalf("rewrite from 0xFFFF: got %x", c)
		}
		RewriteSrc(c, &pc, src)
		if !bytes.Equal(c, b) {
			t.Fatalf("back to a computed 0:\n got %x\nwant %x", c, b)
		}

		// In a quote too.
		buf := make([]byte, 300)
		n := BuildICMPError(buf, b, netip.MustParseAddr("192.0.2.254"), ICMPDestUnreachable, ICMPCodePortUnreachable, 0)
		e := buf[:n]
		e0 := bytes.Clone(e)
		pe := decode(e)
		RewriteInnerSrc(e, &pe, g.addrPort())
		if !bytes.Equal(e, recompute(t, e)) {
			t.Fatalf("quote from 0xFFFF: got %x", e)
		}
		RewriteInnerSrc(e, &pe, src)
		if !bytes.Equal(e, e0) {
			t.Fatalf("quote back to a computed 0:\n got %x\nwant %x", e, e0)
		}
	}
}

func TestUDPZeroChecksumStaysZero(t *testing.T) {
	g := newGen(9)
	for range 2000 {
		b := g.udp(true)
		p := decode(b)
		RewriteSrc(b, &p, g.addrPort())
		RewriteDst(b, &p, g.addrPort())
		if c := UDP(b[IPv4MinSize:]).Checksum(); c != 0 {
			t.Fatalf("checksum %#04x, want 0", c)
		}
		if !IPv4(b).ChecksumValid() {
			t.Fatal("bad IPv4 checksum")
		}
	}
}

// TestICMPAllZeroEcho: an echo reply whose identifier becomes 0, with
// sequence 0 and no data, is all zeros but for its checksum, and only
// 0xFFFF verifies there; RFC 1624 eqn. 3 alone would give 0.
func TestICMPAllZeroEcho(t *testing.T) {
	buf := make([]byte, 64)
	ip := IPv4Fields{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("203.0.113.1"), TTL: 64}
	n := BuildICMP(buf, ip, ICMPFields{Type: ICMPEchoReply, Ident: 0x1234}, nil)
	b := buf[:n]
	orig := bytes.Clone(b)
	p := decode(b)
	RewriteDst(b, &p, netip.MustParseAddrPort("10.0.0.2:0"))
	if c := ICMPv4(b[IPv4MinSize:]).Checksum(); c != 0xffff || !ICMPChecksumValid(b, &p) {
		t.Errorf("checksum %#04x after rewriting to identifier 0, want 0xffff", c)
	}
	if !bytes.Equal(b, recompute(t, b)) {
		t.Errorf("differs from recomputation")
	}
	RewriteDst(b, &p, netip.MustParseAddrPort("203.0.113.1:4660"))
	if !bytes.Equal(b, orig) {
		t.Errorf("round trip:\n got %x\nwant %x", b, orig)
	}
}

// TestRewriteInboundError walks the NAT's inbound error path on a golden
// packet: the port unreachable from 198.51.100.7 quotes a datagram from
// the external endpoint 203.0.113.1:40000, which goes back to the inside
// host 10.0.0.2:5353.
func TestRewriteInboundError(t *testing.T) {
	b := bytes.Clone(goldenPackets["portUnreachUDP"])
	p := decode(b)
	internal := netip.MustParseAddrPort("10.0.0.2:5353")
	RewriteInnerSrc(b, &p, internal)
	RewriteDst(b, &p, netip.AddrPortFrom(internal.Addr(), 0))
	if !IPv4(b).ChecksumValid() || !ICMPChecksumValid(b, &p) || !InnerIPChecksumValid(b, &p) {
		t.Fatal("a checksum went bad")
	}
	if p.InnerSrc != internal || p.Dst != netip.AddrPortFrom(internal.Addr(), 0) || p.Src != ap("198.51.100.7:0") {
		t.Errorf("Parsed: %+v", p)
	}
	// The datagram the inside host sent: its checksum is what the quote
	// must now hold.
	buf := make([]byte, 64)
	n := BuildUDP(buf, IPv4Fields{Src: internal.Addr(), Dst: netip.MustParseAddr("198.51.100.7"), TTL: 64, ID: 0x4242, DontFrag: true},
		UDPFields{SrcPort: 5353, DstPort: 53}, []byte("q?!!"))
	sent := buf[:n]
	if got, want := b[p.InnerOff:p.Length], sent[:28]; !bytes.Equal(got, want) {
		t.Errorf("quote\n%x\nwant\n%x", got, want)
	}
}

// TestRewriteShortTCPQuote: with only 8 bytes of TCP quoted there is no
// TCP checksum to fix, and nothing past the quote is touched.
func TestRewriteShortTCPQuote(t *testing.T) {
	b := append(bytes.Clone(goldenPackets["timeExceededTCP"]), 0xee, 0xee, 0xee, 0xee) // padding
	p := decode(b)
	RewriteInnerSrc(b, &p, netip.MustParseAddrPort("10.9.8.7:1234"))
	if !ICMPChecksumValid(b, &p) || !InnerIPChecksumValid(b, &p) {
		t.Fatal("a checksum went bad")
	}
	if !bytes.Equal(b[p.Length:], []byte{0xee, 0xee, 0xee, 0xee}) {
		t.Error("wrote past the packet")
	}
	if TCP(b[p.InnerOff+p.InnerHeaderLen:]).SrcPort() != 1234 {
		t.Error("port not rewritten")
	}
}

func TestRewriteNonFirstFragment(t *testing.T) {
	b := bytes.Clone(goldenPackets["udpNonFirstFragment"])
	orig := bytes.Clone(b)
	p := decode(b)
	RewriteDst(b, &p, netip.MustParseAddrPort("10.0.0.2:9999"))
	if p.Dst != ap("10.0.0.2:0") {
		t.Errorf("Dst = %v", p.Dst)
	}
	if !IPv4(b).ChecksumValid() {
		t.Error("bad IPv4 checksum")
	}
	if !bytes.Equal(b[20:], orig[20:]) {
		t.Error("payload of a non-first fragment changed")
	}
}

// TestRewriteNotOK: rewrites leave alone what Decode did not vouch for.
func TestRewriteNotOK(t *testing.T) {
	for name, pkt := range goldenPackets {
		b := bytes.Clone(pkt)
		p := decode(b)
		if p.Status == OK {
			continue
		}
		for _, op := range rewriteOps {
			op.fn(b, &p, netip.MustParseAddrPort("10.0.0.1:1"))
		}
		if !bytes.Equal(b, pkt) {
			t.Errorf("%s (%v): rewritten", name, p.Status)
		}
	}
	// No quote, no inner rewrite.
	b := bytes.Clone(goldenPackets["udp"])
	p := decode(b)
	RewriteInnerSrc(b, &p, netip.MustParseAddrPort("10.0.0.1:1"))
	RewriteInnerDst(b, &p, netip.MustParseAddrPort("10.0.0.1:1"))
	if !bytes.Equal(b, goldenPackets["udp"]) {
		t.Error("inner rewrite of a packet without a quote changed it")
	}
}

func TestChecksumValidFunctions(t *testing.T) {
	b := bytes.Clone(goldenPackets["fragNeededEcho"])
	p := decode(b)
	if !ICMPChecksumValid(b, &p) || !InnerIPChecksumValid(b, &p) {
		t.Fatal("golden packet invalid")
	}
	b[48]++ // quoted ICMP type: the ICMP checksum breaks, the quoted IPv4 header's not
	if ICMPChecksumValid(b, &p) || !InnerIPChecksumValid(b, &p) {
		t.Error("quoted ICMP byte changed")
	}
	b[48]--
	b[40]++ // quoted source address
	if ICMPChecksumValid(b, &p) || InnerIPChecksumValid(b, &p) {
		t.Error("quoted address changed")
	}
	u := goldenPackets["udp"]
	pu := decode(u)
	if ICMPChecksumValid(u, &pu) || InnerIPChecksumValid(u, &pu) {
		t.Error("valid on a UDP packet")
	}
	f := goldenPackets["icmpNonFirstFragment"]
	pf := decode(f)
	if ICMPChecksumValid(f, &pf) {
		t.Error("valid on a fragment")
	}
}
