package header

import (
	"bytes"
	"net/netip"
	"testing"
)

// Package-level sinks keep the compiler from optimising the work away.
var (
	sinkParsed Parsed
	sinkInt    int
	sinkU16    uint16
	sinkBool   bool
)

// TestNoAllocs: the per-packet path allocates nothing.
func TestNoAllocs(t *testing.T) {
	udp := bytes.Clone(goldenPackets["udp"])
	tcp := bytes.Clone(goldenPackets["tcpOptions"])
	echo := bytes.Clone(goldenPackets["echoRequest"])
	icmpErr := bytes.Clone(goldenPackets["portUnreachUDP"])
	ext := netip.MustParseAddrPort("203.0.113.1:40000")
	internal := netip.MustParseAddrPort("10.0.0.2:5353")
	reply := make([]byte, 576)

	tests := []struct {
		name string
		fn   func()
	}{
		{"Decode", func() { sinkParsed.Decode(udp) }},
		{"DecodeICMPError", func() { sinkParsed.Decode(icmpErr) }},
		{"RewriteSrcUDP", func() {
			var p Parsed
			p.Decode(udp)
			RewriteSrc(udp, &p, ext)
			RewriteSrc(udp, &p, internal)
			sinkParsed = p
		}},
		{"RewriteDstTCP", func() {
			var p Parsed
			p.Decode(tcp)
			RewriteDst(tcp, &p, internal)
			RewriteDst(tcp, &p, ext)
			sinkParsed = p
		}},
		{"RewriteSrcICMP", func() {
			var p Parsed
			p.Decode(echo)
			RewriteSrc(echo, &p, ext)
			sinkParsed = p
		}},
		{"RewriteInner", func() {
			var p Parsed
			p.Decode(icmpErr)
			RewriteInnerSrc(icmpErr, &p, internal)
			RewriteInnerDst(icmpErr, &p, ext)
			RewriteDst(icmpErr, &p, internal)
			sinkParsed = p
		}},
		{"ChecksumValid", func() {
			var p Parsed
			p.Decode(icmpErr)
			sinkBool = ICMPChecksumValid(icmpErr, &p) && InnerIPChecksumValid(icmpErr, &p) && IPv4(icmpErr).ChecksumValid()
		}},
		{"DecTTL", func() { IPv4(udp).DecTTL(); IPv4(udp).SetTTL(64) }},
		{"Checksum", func() { sinkU16 = Checksum(tcp, 0) }},
		{"BuildICMPError", func() {
			sinkInt = BuildICMPError(reply, tcp, netip.MustParseAddr("10.0.0.1"), ICMPTimeExceeded, 0, 0)
		}},
		{"BuildUDP", func() {
			sinkInt = BuildUDP(reply, IPv4Fields{Src: internal.Addr(), Dst: ext.Addr(), TTL: 64}, UDPFields{SrcPort: 1, DstPort: 2}, udp)
		}},
		{"StatusString", func() { sinkInt = len(BadInner.String()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.fn); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}
