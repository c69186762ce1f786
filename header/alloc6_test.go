package header

import (
	"net/netip"
	"testing"
)

var sinkParsedV6 ParsedV6

// testPackets6 are built once for the allocation tests and benchmarks: a
// UDP packet, a TCP packet behind hop-by-hop and destination options, an
// echo request, and a Packet Too Big about the UDP packet.
func testPackets6() (udp, tcpExt, echo, ptb []byte) {
	f := IPv6Fields{Src: netip.MustParseAddr("fd00:1::2"), Dst: netip.MustParseAddr("2001:db8::53"), HopLimit: 64}
	buf := make([]byte, 1500)
	udp = buf[:BuildUDP6(buf, f, UDPFields{SrcPort: 5353, DstPort: 53}, []byte("hi!!"))]
	buf = make([]byte, 1500)
	tcp := buf[:BuildTCP6(buf, f, TCPFields{SrcPort: 40000, DstPort: 443, Seq: 1, Flags: TCPSyn, Window: 65535}, nil)]
	tcpExt = withExt(tcp, ProtoHopByHop, ProtoDestinations)
	buf = make([]byte, 1500)
	echo = buf[:BuildICMPv6(buf, f, ICMPFields{Type: ICMPv6EchoRequest, Ident: 0x1234, Seq: 1}, []byte("ping"))]
	buf = make([]byte, IPv6MinMTU)
	ptb = buf[:BuildICMPv6Error(buf, udp, netip.MustParseAddr("2001:db8::1"), ICMPv6PacketTooBig, 0, 1280)]
	return udp, tcpExt, echo, ptb
}

// TestNoAllocs6: the IPv6 per-packet path allocates nothing.
func TestNoAllocs6(t *testing.T) {
	udp, tcp, echo, ptb := testPackets6()
	ext := netip.MustParseAddrPort("[2001:db8:1::1]:40000")
	internal := netip.MustParseAddrPort("[fd00:1::2]:5353")
	reply := make([]byte, IPv6MinMTU)
	n, _ := NewNPTv6(netip.MustParsePrefix("fd00:1::/48"), netip.MustParsePrefix("2001:db8:1::/48"))
	a := internal.Addr().As16()

	tests := []struct {
		name string
		fn   func()
	}{
		{"Decode", func() { sinkParsedV6.Decode(udp) }},
		{"DecodeExt", func() { sinkParsedV6.Decode(tcp) }},
		{"DecodeICMPv6Error", func() { sinkParsedV6.Decode(ptb) }},
		{"RewriteSrcUDP", func() {
			var p ParsedV6
			p.Decode(udp)
			RewriteSrc6(udp, &p, ext)
			RewriteSrc6(udp, &p, internal)
			sinkParsedV6 = p
		}},
		{"RewriteDstTCP", func() {
			var p ParsedV6
			p.Decode(tcp)
			RewriteDst6(tcp, &p, internal)
			RewriteDst6(tcp, &p, ext)
			sinkParsedV6 = p
		}},
		{"RewriteSrcEcho", func() {
			var p ParsedV6
			p.Decode(echo)
			RewriteSrc6(echo, &p, ext)
			sinkParsedV6 = p
		}},
		{"RewriteInner", func() {
			var p ParsedV6
			p.Decode(ptb)
			RewriteInnerSrc6(ptb, &p, ext)
			RewriteInnerDst6(ptb, &p, internal)
			RewriteDst6(ptb, &p, ext)
			sinkParsedV6 = p
		}},
		{"DecHopLimit", func() { IPv6(udp).DecHopLimit(); IPv6(udp).SetHopLimit(64) }},
		{"BuildICMPv6Error", func() {
			sinkInt = BuildICMPv6Error(reply, tcp, netip.MustParseAddr("fd00:1::1"), ICMPv6TimeExceeded, 0, 0)
		}},
		{"BuildUDP6", func() {
			sinkInt = BuildUDP6(reply, IPv6Fields{Src: internal.Addr(), Dst: ext.Addr(), HopLimit: 64}, UDPFields{SrcPort: 1, DstPort: 2}, udp)
		}},
		{"NPTv6", func() {
			o, _ := n.Outbound(a)
			a, _ = n.Inbound(o)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.fn); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}
