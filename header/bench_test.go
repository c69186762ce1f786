package header

import (
	"bytes"
	"net/netip"
	"testing"
)

func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"udp", "tcpOptions", "echoRequest", "portUnreachUDP"} {
		pkt := goldenPackets[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkParsed.Decode(pkt)
			}
		})
	}
}

// benchRewrite alternates between two endpoints so that every iteration
// changes the packet.
func benchRewrite(b *testing.B, pkt []byte, fn func([]byte, *Parsed, netip.AddrPort), x, y netip.AddrPort) {
	pkt = bytes.Clone(pkt)
	var p Parsed
	p.Decode(pkt)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i&1 == 0 {
			fn(pkt, &p, x)
		} else {
			fn(pkt, &p, y)
		}
		i++
	}
	sinkParsed = p
}

func BenchmarkRewriteSrcUDP(b *testing.B) {
	benchRewrite(b, goldenPackets["udp"], RewriteSrc, ap("203.0.113.1:40000"), ap("10.0.0.2:5353"))
}

func BenchmarkRewriteSrcTCP(b *testing.B) {
	benchRewrite(b, goldenPackets["tcpSYN"], RewriteSrc, ap("203.0.113.1:40000"), ap("10.0.0.2:40000"))
}

func BenchmarkRewriteDstICMP(b *testing.B) {
	benchRewrite(b, goldenPackets["echoRequest"], RewriteDst, ap("10.0.0.2:99"), ap("203.0.113.9:4660"))
}

func BenchmarkRewriteInnerSrc(b *testing.B) {
	benchRewrite(b, goldenPackets["portUnreachUDP"], RewriteInnerSrc, ap("10.0.0.2:5353"), ap("203.0.113.1:40000"))
}

// BenchmarkDecodeRewriteDecTTL is the whole per-packet header work of a
// translated UDP packet.
func BenchmarkDecodeRewriteDecTTL(b *testing.B) {
	pkt := bytes.Clone(goldenPackets["udp"])
	to := ap("203.0.113.1:40000")
	back := ap("10.0.0.2:5353")
	b.ReportAllocs()
	for b.Loop() {
		var p Parsed
		p.Decode(pkt)
		RewriteSrc(pkt, &p, to)
		IPv4(pkt).DecTTL()
		RewriteSrc(pkt, &p, back)
		IPv4(pkt).SetTTL(64)
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	data := newGen(12).bytes(1500)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sinkU16 = Checksum(data, 0)
	}
}

// BenchmarkChecksum1500Reference is the one-word-at-a-time sum, for
// comparison.
func BenchmarkChecksum1500Reference(b *testing.B) {
	data := newGen(12).bytes(1500)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sinkU16 = ^refSum(data)
	}
}

func BenchmarkBuildICMPError(b *testing.B) {
	orig := make([]byte, 1500)
	n := BuildUDP(orig, IPv4Fields{Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("192.0.2.1"), TTL: 1}, UDPFields{SrcPort: 1, DstPort: 2}, make([]byte, 1472))
	orig = orig[:n]
	reply := make([]byte, 576)
	src := netip.MustParseAddr("10.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		sinkInt = BuildICMPError(reply, orig, src, ICMPTimeExceeded, 0, 0)
	}
}

// BenchmarkIPv4ChecksumValid is the header check every packet pays.
func BenchmarkIPv4ChecksumValid(b *testing.B) {
	h := IPv4(newGen(13).bytes(IPv4MinSize))
	h[0] = 0x45
	h.SetChecksum(h.ComputeChecksum())
	for b.Loop() {
		sinkBool = h.ChecksumValid()
	}
}

func BenchmarkDecode6(b *testing.B) {
	udp, tcpExt, echo, ptb := testPackets6()
	for _, c := range []struct {
		name string
		pkt  []byte
	}{{"udp", udp}, {"tcpExt", tcpExt}, {"echoRequest", echo}, {"packetTooBig", ptb}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkParsedV6.Decode(c.pkt)
			}
		})
	}
}

// benchRewrite6 is benchRewrite for IPv6.
func benchRewrite6(b *testing.B, pkt []byte, fn func([]byte, *ParsedV6, netip.AddrPort), x, y netip.AddrPort) {
	pkt = bytes.Clone(pkt)
	var p ParsedV6
	p.Decode(pkt)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i&1 == 0 {
			fn(pkt, &p, x)
		} else {
			fn(pkt, &p, y)
		}
		i++
	}
	sinkParsedV6 = p
}

func BenchmarkRewriteSrc6UDP(b *testing.B) {
	udp, _, _, _ := testPackets6()
	benchRewrite6(b, udp, RewriteSrc6, ap("[2001:db8:1::1]:40000"), ap("[fd00:1::2]:5353"))
}

func BenchmarkRewriteInnerSrc6(b *testing.B) {
	_, _, _, ptb := testPackets6()
	benchRewrite6(b, ptb, RewriteInnerSrc6, ap("[2001:db8:1::1]:40000"), ap("[fd00:1::2]:5353"))
}

// BenchmarkDecodeRewriteDecHopLimit6 is the whole per-packet header work
// of a translated IPv6 UDP packet (NAT66).
func BenchmarkDecodeRewriteDecHopLimit6(b *testing.B) {
	udp, _, _, _ := testPackets6()
	to := ap("[2001:db8:1::1]:40000")
	back := ap("[fd00:1::2]:5353")
	b.ReportAllocs()
	for b.Loop() {
		var p ParsedV6
		p.Decode(udp)
		RewriteSrc6(udp, &p, to)
		IPv6(udp).DecHopLimit()
		RewriteSrc6(udp, &p, back)
		IPv6(udp).SetHopLimit(64)
	}
}

func BenchmarkBuildICMPv6Error(b *testing.B) {
	orig := make([]byte, 1500)
	f := IPv6Fields{Src: netip.MustParseAddr("fd00:1::2"), Dst: netip.MustParseAddr("2001:db8::1"), HopLimit: 1}
	orig = orig[:BuildUDP6(orig, f, UDPFields{SrcPort: 1, DstPort: 2}, make([]byte, 1452))]
	reply := make([]byte, IPv6MinMTU)
	src := netip.MustParseAddr("fd00:1::1")
	b.ReportAllocs()
	for b.Loop() {
		sinkInt = BuildICMPv6Error(reply, orig, src, ICMPv6TimeExceeded, 0, 0)
	}
}
