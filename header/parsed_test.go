package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestDecodeGolden(t *testing.T) {
	tests := []struct {
		name     string
		want     Parsed
		hasPorts bool
	}{
		{"udp", Parsed{IPProto: ProtoUDP, Src: ap("10.0.0.2:5353"), Dst: ap("192.0.2.1:53"),
			IPHeaderLen: 20, Length: 32, TTL: 64, ID: 0x1c46, DontFrag: true}, true},
		{"tcpSYN", Parsed{IPProto: ProtoTCP, Src: ap("10.0.0.2:40000"), Dst: ap("198.51.100.7:443"),
			IPHeaderLen: 20, Length: 40, TTL: 64, ID: 0x1c46, DontFrag: true, TCPFlags: TCPSyn}, true},
		{"tcpOptions", Parsed{IPProto: ProtoTCP, Src: ap("198.51.100.7:443"), Dst: ap("203.0.113.1:40000"),
			IPHeaderLen: 20, Length: 47, TTL: 57, ID: 0x1c46, DontFrag: true, TCPFlags: TCPPsh | TCPAck}, true},
		{"echoRequest", Parsed{IPProto: ProtoICMP, Src: ap("10.0.0.2:4660"), Dst: ap("203.0.113.9:4660"),
			IPHeaderLen: 20, Length: 32, TTL: 64, DontFrag: true, ICMPType: ICMPEchoRequest}, true},
		{"timestampReply", Parsed{IPProto: ProtoICMP, Src: ap("203.0.113.9:48879"), Dst: ap("203.0.113.1:48879"),
			IPHeaderLen: 20, Length: 40, TTL: 64, ID: 7, ICMPType: ICMPTimestampReply}, true},
		{"portUnreachUDP", Parsed{IPProto: ProtoICMP, Src: ap("198.51.100.7:0"), Dst: ap("203.0.113.1:0"),
			IPHeaderLen: 20, Length: 56, TTL: 64, ID: 0x0101,
			ICMPType: ICMPDestUnreachable, ICMPCode: ICMPCodePortUnreachable,
			InnerOff: 28, InnerHeaderLen: 20, InnerProto: ProtoUDP,
			InnerSrc: ap("203.0.113.1:40000"), InnerDst: ap("198.51.100.7:53")}, false},
		{"timeExceededTCP", Parsed{IPProto: ProtoICMP, Src: ap("192.0.2.254:0"), Dst: ap("203.0.113.1:0"),
			IPHeaderLen: 20, Length: 56, TTL: 64, ID: 0x0202, ICMPType: ICMPTimeExceeded,
			InnerOff: 28, InnerHeaderLen: 20, InnerProto: ProtoTCP,
			InnerSrc: ap("203.0.113.1:40001"), InnerDst: ap("198.51.100.7:80")}, false},
		{"fragNeededEcho", Parsed{IPProto: ProtoICMP, Src: ap("192.0.2.254:0"), Dst: ap("203.0.113.1:0"),
			IPHeaderLen: 20, Length: 56, TTL: 64, ID: 0x0303,
			ICMPType: ICMPDestUnreachable, ICMPCode: ICMPCodeFragNeeded,
			InnerOff: 28, InnerHeaderLen: 20, InnerProto: ProtoICMP,
			InnerSrc: ap("203.0.113.1:2989"), InnerDst: ap("198.51.100.7:2989")}, false},
		{"udpIPOptions", Parsed{IPProto: ProtoUDP, Src: ap("10.0.0.3:1"), Dst: ap("192.0.2.1:2"),
			IPHeaderLen: 24, Length: 32, TTL: 64, ID: 0x1c46, DontFrag: true}, true},
		{"udpPadded", Parsed{IPProto: ProtoUDP, Src: ap("10.0.0.2:5000"), Dst: ap("192.0.2.1:5001"),
			IPHeaderLen: 20, Length: 28, TTL: 64, ID: 0x1c46, DontFrag: true}, true},
		// Ports are never read from a fragment other than the first,
		// even when its first bytes look like a UDP header.
		{"udpNonFirstFragment", Parsed{IPProto: ProtoUDP, Src: ap("198.51.100.7:0"), Dst: ap("203.0.113.1:0"),
			IPHeaderLen: 20, Length: 28, TTL: 64, ID: 0x5555, FragOffset: 1480}, false},
		{"udpFirstFragment", Parsed{IPProto: ProtoUDP, Src: ap("10.0.0.2:4000"), Dst: ap("192.0.2.1:4001"),
			IPHeaderLen: 20, Length: 36, TTL: 64, ID: 0x6666, MoreFrags: true}, true},
		{"gre", Parsed{IPProto: 47, Src: ap("10.0.0.2:0"), Dst: ap("192.0.2.1:0"),
			IPHeaderLen: 20, Length: 24, TTL: 64, ID: 0x1c46, DontFrag: true}, false},

		// Hostile.
		{"short", Parsed{Status: Truncated}, false},
		{"version6", Parsed{Status: BadVersion}, false},
		{"ihl4", Parsed{Status: BadHeaderLen}, false},
		{"ihlPastEnd", Parsed{Status: Truncated}, false},
		{"totalLenPastEnd", Parsed{Status: Truncated}, false},
		{"totalLenBelowIHL", Parsed{Status: BadTotalLen}, false},
		{"udpShortFirstFragment", Parsed{Status: BadTransport, IPProto: ProtoUDP, Src: ap("10.0.0.2:0"), Dst: ap("192.0.2.1:0"),
			IPHeaderLen: 20, Length: 24, TTL: 64, ID: 0x1c46, MoreFrags: true}, false},
		{"tcpDataOffset4", Parsed{Status: BadTransport, IPProto: ProtoTCP, Src: ap("10.0.0.2:0"), Dst: ap("198.51.100.7:0"),
			IPHeaderLen: 20, Length: 40, TTL: 64, ID: 0x1c46, DontFrag: true}, false},
		{"tcpDataOffsetPastEnd", Parsed{Status: BadTransport, IPProto: ProtoTCP, Src: ap("10.0.0.2:0"), Dst: ap("198.51.100.7:0"),
			IPHeaderLen: 20, Length: 40, TTL: 64, ID: 0x1c46, DontFrag: true}, false},
		{"icmpShort", Parsed{Status: BadTransport, IPProto: ProtoICMP, Src: ap("10.0.0.2:0"), Dst: ap("203.0.113.9:0"),
			IPHeaderLen: 20, Length: 24, TTL: 64, ID: 0x1c46, DontFrag: true}, false},
		{"errorInnerIHL3", badInner(56), false},
		{"errorInnerShort", badInner(52), false},
		{"errorInnerOptionsShort", badInner(56), false},
		{"errorInnerVersion6", badInner(56), false},
		{"errorInnerNonFirstFragment", badInner(56), false},
		{"errorInnerICMPError", badInner(56), false},
		{"errorInnerGRE", badInner(56), false},
		// A redirect is an error, but not one the NAT translates: its
		// quote is left alone.
		{"redirect", Parsed{IPProto: ProtoICMP, Src: ap("10.0.0.1:0"), Dst: ap("10.0.0.2:0"),
			IPHeaderLen: 20, Length: 56, TTL: 64, ID: 0x1c46, ICMPType: ICMPRedirect, ICMPCode: 1}, false},
		// No ICMP header in a later fragment: ICMPType stays 0.
		{"icmpNonFirstFragment", Parsed{IPProto: ProtoICMP, Src: ap("203.0.113.9:0"), Dst: ap("203.0.113.1:0"),
			IPHeaderLen: 20, Length: 28, TTL: 64, ID: 0x7777, FragOffset: 1480}, false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen[tt.name] = true
			b, ok := goldenPackets[tt.name]
			if !ok {
				t.Fatal("no such golden packet")
			}
			orig := bytes.Clone(b)
			got := decode(b)
			if got != tt.want {
				t.Errorf("Decode:\n got %+v\nwant %+v", got, tt.want)
			}
			if !bytes.Equal(b, orig) {
				t.Error("Decode changed the packet")
			}
			if got.HasPorts() != tt.hasPorts {
				t.Errorf("HasPorts = %v, want %v", got.HasPorts(), tt.hasPorts)
			}
			if got.Status != OK {
				return
			}
			if !IPv4(b).ChecksumValid() {
				t.Error("golden packet has a bad IPv4 checksum")
			}
			if got.IPProto == ProtoICMP && !got.IsFragment() && !ICMPChecksumValid(b, &got) {
				t.Error("golden packet has a bad ICMP checksum")
			}
			if got.InnerOff != 0 && !InnerIPChecksumValid(b, &got) {
				t.Error("golden packet has a bad quoted IPv4 checksum")
			}
		})
	}
	for name := range goldenPackets {
		if !seen[name] {
			t.Errorf("golden packet %q has no test case", name)
		}
	}
}

// badInner is the decode of the errorInner* golden packets: a port
// unreachable from 198.51.100.7 whose quote is unusable.
func badInner(length int) Parsed {
	return Parsed{Status: BadInner, IPProto: ProtoICMP, Src: ap("198.51.100.7:0"), Dst: ap("203.0.113.1:0"),
		IPHeaderLen: 20, Length: length, TTL: 64, ID: 0x1c46,
		ICMPType: ICMPDestUnreachable, ICMPCode: ICMPCodePortUnreachable}
}

func TestDecodeEveryPrefix(t *testing.T) {
	// Every prefix of every golden packet decodes without panicking, and
	// a prefix shorter than the total length is Truncated (or an error
	// found before the length is looked at).
	for name, b := range goldenPackets {
		full := decode(b)
		for n := range len(b) {
			p := decode(b[:n])
			if full.Status == OK && n < full.Length && p.Status == OK {
				t.Errorf("%s[:%d]: OK, want an error", name, n)
			}
		}
	}
}

func TestViews(t *testing.T) {
	b := goldenPackets["tcpOptions"]
	ip := IPv4(b)
	if ip.HeaderLen() != 20 || ip.TotalLen() != 47 || ip.ID() != 0x1c46 || !ip.DontFragment() ||
		ip.MoreFragments() || ip.FragmentOffset() != 0 || ip.TTL() != 57 || ip.Protocol() != ProtoTCP ||
		ip.Src() != netip.MustParseAddr("198.51.100.7") || ip.Dst() != netip.MustParseAddr("203.0.113.1") ||
		len(ip.Payload()) != 27 {
		t.Errorf("IPv4 accessors disagree with the golden packet")
	}
	tcp := TCP(ip.Payload())
	if tcp.SrcPort() != 443 || tcp.DstPort() != 40000 || tcp.Seq() != 1000 || tcp.Ack() != 2 ||
		tcp.DataOffset() != 24 || tcp.Flags() != TCPPsh|TCPAck || tcp.Window() != 502 || tcp.Checksum() != 0xc992 {
		t.Errorf("TCP accessors disagree with the golden packet")
	}

	u := UDP(IPv4(goldenPackets["udp"]).Payload())
	if u.SrcPort() != 5353 || u.DstPort() != 53 || u.Length() != 12 || u.Checksum() != 0x952a {
		t.Errorf("UDP accessors disagree with the golden packet")
	}

	frag := IPv4(goldenPackets["udpNonFirstFragment"])
	if frag.FragmentOffset() != 1480 || frag.MoreFragments() || frag.DontFragment() {
		t.Errorf("fragment fields disagree with the golden packet")
	}

	ic := ICMPv4(IPv4(goldenPackets["fragNeededEcho"]).Payload())
	if ic.Type() != ICMPDestUnreachable || ic.Code() != ICMPCodeFragNeeded || ic.MTU() != 1400 || len(ic.Payload()) != 28 {
		t.Errorf("ICMP accessors disagree with the golden packet")
	}
	echo := ICMPv4(IPv4(goldenPackets["echoRequest"]).Payload())
	if echo.Ident() != 0x1234 || echo.Seq() != 1 || string(echo.Payload()) != "ping" {
		t.Errorf("echo accessors disagree with the golden packet")
	}

	// Setters write where the getters read.
	c := IPv4(bytes.Clone(b))
	c.SetTTL(9)
	c.SetID(0xabcd)
	c.SetTotalLen(40)
	c.SetSrc(netip.MustParseAddr("192.0.2.9"))
	c.SetDst(netip.MustParseAddr("10.1.2.3"))
	c.SetChecksum(0x1234)
	if c.TTL() != 9 || c.ID() != 0xabcd || c.TotalLen() != 40 || c.Checksum() != 0x1234 ||
		c.Src() != netip.MustParseAddr("192.0.2.9") || c.Dst() != netip.MustParseAddr("10.1.2.3") {
		t.Errorf("IPv4 setters")
	}
	tc := TCP(c[20:])
	tc.SetSrcPort(1)
	tc.SetDstPort(2)
	tc.SetChecksum(3)
	if tc.SrcPort() != 1 || tc.DstPort() != 2 || tc.Checksum() != 3 {
		t.Errorf("TCP setters")
	}
	uc := UDP(c[20:])
	uc.SetSrcPort(4)
	uc.SetDstPort(5)
	uc.SetLength(6)
	uc.SetChecksum(7)
	if uc.SrcPort() != 4 || uc.DstPort() != 5 || uc.Length() != 6 || uc.Checksum() != 7 {
		t.Errorf("UDP setters")
	}
	icc := ICMPv4(c[20:])
	icc.SetIdent(8)
	icc.SetChecksum(9)
	if icc.Ident() != 8 || icc.Checksum() != 9 {
		t.Errorf("ICMP setters")
	}
}

func TestStatusString(t *testing.T) {
	for s := OK; s <= BadInner; s++ {
		if s.String() == "unknown-status" || s.String() == "" {
			t.Errorf("Status(%d) has no name", s)
		}
	}
	if Status(200).String() != "unknown-status" {
		t.Errorf("Status(200).String() = %q", Status(200).String())
	}
}

func TestICMPClasses(t *testing.T) {
	for typ := range 256 {
		typ := uint8(typ)
		wantErr := typ == 3 || typ == 11 || typ == 12
		wantQuery := typ == 0 || typ == 8 || typ == 13 || typ == 14
		if IsICMPError(typ) != wantErr || IsICMPQuery(typ) != wantQuery {
			t.Errorf("type %d: IsICMPError %v IsICMPQuery %v", typ, IsICMPError(typ), IsICMPQuery(typ))
		}
	}
}

func TestFragmentPredicates(t *testing.T) {
	tests := []struct {
		name         string
		first, isFrg bool
	}{
		{"udp", true, false},
		{"udpFirstFragment", true, true},
		{"udpNonFirstFragment", false, true},
	}
	for _, tt := range tests {
		p := decode(goldenPackets[tt.name])
		if p.IsFirstFragment() != tt.first || p.IsFragment() != tt.isFrg {
			t.Errorf("%s: IsFirstFragment %v IsFragment %v", tt.name, p.IsFirstFragment(), p.IsFragment())
		}
	}
}

// TestDecodeRandom: Decode agrees with the fields the builders wrote.
func TestDecodeRandom(t *testing.T) {
	g := newGen(4)
	for range 10000 {
		b := g.packet()
		p := decode(b)
		if p.Status != OK {
			t.Fatalf("%v on a built packet %x", p.Status, b)
		}
		checkParsed(t, b, &p)
		if p.IPProto == ProtoICMP && IsICMPError(p.ICMPType) && p.InnerOff == 0 {
			t.Fatalf("error without a quote: %x", b)
		}
	}
}

// A UDP length under 8, or past the packet when no later fragment holds
// the rest, makes the packet malformed; shorter than the packet is
// padding.
func TestDecodeUDPLength(t *testing.T) {
	b := make([]byte, 100)
	n := BuildUDP(b, IPv4Fields{Src: netip.MustParseAddr("203.0.113.1"), Dst: netip.MustParseAddr("198.51.100.1"), TTL: 64},
		UDPFields{SrcPort: 3478, DstPort: 5000}, []byte("0123456789"))
	for _, c := range []struct {
		length uint16
		mf     bool
		want   Status
	}{
		{18, false, OK}, {8, false, OK}, {10, false, OK},
		{0, false, BadTransport}, {7, false, BadTransport}, {19, false, BadTransport}, {1000, false, BadTransport},
		{1000, true, OK}, {7, true, BadTransport},
	} {
		pkt := append([]byte(nil), b[:n]...)
		binary.BigEndian.PutUint16(pkt[IPv4MinSize+4:], c.length)
		if c.mf {
			pkt[6] |= 0x20
		}
		var p Parsed
		p.Decode(pkt)
		if p.Status != c.want {
			t.Errorf("UDP length %d (MF %v): %v, want %v", c.length, c.mf, p.Status, c.want)
		}
	}
}
