package header

import (
	"bytes"
	"net/netip"
	"testing"
)

// fuzzSeeds6 adds the golden packet and its hostile variants' kind, and
// built packets with extension headers and errors, to the corpus.
func fuzzSeeds6() [][]byte {
	seeds := [][]byte{
		udp6Golden,
		nil,                    // nothing
		{0x60},                 // a version byte alone
		make([]byte, IPv6Size), // version 0
		append([]byte{0x60, 0, 0, 0, 0, 0, ProtoHopByHop, 64}, make([]byte, 32)...), // jumbogram marker
	}
	g := newGen(33)
	for range 8 {
		seeds = append(seeds, g.transport6())
		e, _ := g.icmpError6()
		seeds = append(seeds, e)
	}
	buf := make([]byte, 300)
	n := BuildUDP6(buf, g.ip6Fields(), UDPFields{SrcPort: 1, DstPort: 2}, g.bytes(100))
	first, second := fragment6(buf[:n], 48, 7)
	return append(seeds, first, second)
}

// FuzzDecode6: Decode never panics or writes, whatever it reports OK
// holds, and gopacket decodes the same fields wherever it decodes as far;
// BuildICMPv6Error on the same bytes makes a valid error or nothing.
func FuzzDecode6(f *testing.F) {
	for _, s := range fuzzSeeds6() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		var p ParsedV6
		p.Decode(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("Decode wrote to the packet")
		}
		checkParsed6(t, b, &p)
		checkFlow6(t, b, &p)
		if p.Status == OK {
			compareGopacket6(t, b, &p, false)
		}
		var buf [IPv6MinMTU]byte
		if n := BuildICMPv6Error(buf[:], b, netip.MustParseAddr("2001:db8::fe"), ICMPv6TimeExceeded, 0, 0); n != 0 {
			e := decode6(buf[:n])
			if e.Status != OK && e.Status != BadInner || e.ICMPType != ICMPv6TimeExceeded || n > IPv6MinMTU {
				t.Fatalf("BuildICMPv6Error made %v, %d bytes", e.Status, n)
			}
			if ok, _ := transportValid6(buf[:n], IPv6Size, ProtoICMPv6); !ok {
				t.Fatal("BuildICMPv6Error's checksum does not verify")
			}
		}
	})
}

// FuzzRewrite6: for any packet that decodes OK, with its checksums made
// valid, rewriting source and destination (and the quote's, for an
// ICMPv6 error) to fuzzed endpoints gives exactly a full recomputation's
// checksums, keeps Parsed equal to a fresh decode, touches nothing past
// p.Length, and rewriting back restores the bytes.
func FuzzRewrite6(f *testing.F) {
	for i, s := range fuzzSeeds6() {
		f.Add(s, []byte("fd00::1 srcaddr"), uint16(i), []byte("2001:db8::53 dst"), uint16(53))
	}
	f.Fuzz(func(t *testing.T, b []byte, srcIP []byte, srcPort uint16, dstIP []byte, dstPort uint16) {
		var p ParsedV6
		p.Decode(b)
		if p.Status != OK || len(srcIP) < 16 || len(dstIP) < 16 {
			return
		}
		copy(b, recompute6(t, b))
		src := netip.AddrPortFrom(netip.AddrFrom16([16]byte(srcIP)), srcPort)
		dst := netip.AddrPortFrom(netip.AddrFrom16([16]byte(dstIP)), dstPort)
		orig := bytes.Clone(b)
		p0 := p
		RewriteSrc6(b, &p, src)
		RewriteDst6(b, &p, dst)
		RewriteInnerSrc6(b, &p, dst)
		RewriteInnerDst6(b, &p, src)
		if !bytes.Equal(b[p.Length:], orig[p.Length:]) {
			t.Fatal("wrote past the packet")
		}
		if want := recompute6(t, b); !bytes.Equal(b, want) {
			t.Fatalf("checksums:\ngot  %x\nwant %x", b, want)
		}
		if q := decode6(b); q != p {
			t.Fatalf("Parsed not kept in step:\nkept    %+v\ndecoded %+v", p, q)
		}
		RewriteInnerDst6(b, &p, p0.InnerDst)
		RewriteInnerSrc6(b, &p, p0.InnerSrc)
		RewriteDst6(b, &p, p0.Dst)
		RewriteSrc6(b, &p, p0.Src)
		if !bytes.Equal(b, orig) || p != p0 {
			t.Fatalf("not restored:\nwas %x\nnow %x", orig, b)
		}
	})
}

// checkFlow6 holds Flow6 to Decode: ok exactly for the packets that
// Decode finds OK with ports, and then the same protocol and endpoints.
func checkFlow6(t *testing.T, b []byte, p *ParsedV6) {
	t.Helper()
	proto, src, dst, ok := Flow6(b)
	if ok != p.HasPorts() {
		t.Fatalf("Flow6 ok = %v, Decode: %v, HasPorts %v", ok, p.Status, p.HasPorts())
	}
	if ok && (proto != p.Proto || src != p.Src || dst != p.Dst) {
		t.Fatalf("Flow6 = %d %s -> %s, Decode %d %s -> %s", proto, src, dst, p.Proto, p.Src, p.Dst)
	}
}

// Flow6 agrees with Decode on random packets and on every seed of the
// fuzz target, each also cut short: UDP, TCP, echoes and errors,
// extension headers, fragments and the malformed ones.
func TestFlow6(t *testing.T) {
	g := newGen(34)
	seeds := fuzzSeeds6()
	for range 500 {
		seeds = append(seeds, g.packet6())
	}
	n := 0
	for _, s := range seeds {
		for cut := len(s); cut >= 0 && cut > len(s)-60; cut-- {
			p := decode6(s[:cut])
			checkFlow6(t, s[:cut], &p)
			if p.HasPorts() {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no seed has ports: the test checks nothing")
	}
	seed := seeds[len(seeds)-1]
	if a := testing.AllocsPerRun(100, func() { Flow6(seed) }); a > 0 {
		t.Errorf("Flow6: %v allocs", a)
	}
}
