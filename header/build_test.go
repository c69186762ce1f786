package header

import (
	"bytes"
	"net/netip"
	"testing"
)

var (
	inside  = netip.MustParseAddr("10.0.0.2")
	remote  = netip.MustParseAddr("198.51.100.7")
	gateway = netip.MustParseAddr("10.0.0.1")
)

func TestBuilders(t *testing.T) {
	bufs := [4][100]byte{}
	ip := IPv4Fields{Src: inside, Dst: remote, TTL: 64, ID: 9, DontFrag: true}
	tests := []struct {
		name string
		buf  []byte
		n    int
		want Parsed
	}{
		{"udp", bufs[0][:], BuildUDP(bufs[0][:], ip, UDPFields{SrcPort: 1, DstPort: 2}, []byte("abc")),
			Parsed{IPProto: ProtoUDP, Src: netip.AddrPortFrom(inside, 1), Dst: netip.AddrPortFrom(remote, 2),
				IPHeaderLen: 20, Length: 31, TTL: 64, ID: 9, DontFrag: true}},
		{"tcp", bufs[1][:], BuildTCP(bufs[1][:], ip, TCPFields{SrcPort: 3, DstPort: 4, Seq: 5, Ack: 6, Flags: TCPSyn | TCPAck, Window: 7}, nil),
			Parsed{IPProto: ProtoTCP, Src: netip.AddrPortFrom(inside, 3), Dst: netip.AddrPortFrom(remote, 4),
				IPHeaderLen: 20, Length: 40, TTL: 64, ID: 9, DontFrag: true, TCPFlags: TCPSyn | TCPAck}},
		{"icmp", bufs[2][:], BuildICMP(bufs[2][:], ip, ICMPFields{Type: ICMPEchoRequest, Ident: 8, Seq: 1}, []byte("x")),
			Parsed{IPProto: ProtoICMP, Src: netip.AddrPortFrom(inside, 8), Dst: netip.AddrPortFrom(remote, 8),
				IPHeaderLen: 20, Length: 29, TTL: 64, ID: 9, DontFrag: true, ICMPType: ICMPEchoRequest}},
		{"fragment", bufs[3][:], BuildIPv4(bufs[3][:], IPv4Fields{Src: inside, Dst: remote, Protocol: ProtoUDP, TTL: 1, MoreFrags: true, FragOffset: 800}, []byte("12345678")),
			Parsed{IPProto: ProtoUDP, Src: netip.AddrPortFrom(inside, 0), Dst: netip.AddrPortFrom(remote, 0),
				IPHeaderLen: 20, Length: 28, TTL: 1, MoreFrags: true, FragOffset: 800}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.buf[:tt.n]
			if got := decode(b); got != tt.want {
				t.Errorf("built\n%+v\nwant\n%+v", got, tt.want)
			}
			if !bytes.Equal(b, recompute(t, b)) {
				t.Error("checksums wrong")
			}
		})
	}
}

func TestBuildersRefuse(t *testing.T) {
	small := make([]byte, 27)
	ip := IPv4Fields{Src: inside, Dst: remote}
	if BuildUDP(small, ip, UDPFields{}, nil) != 0 || BuildTCP(make([]byte, 39), ip, TCPFields{}, nil) != 0 ||
		BuildICMP(small, ip, ICMPFields{}, nil) != 0 || BuildIPv4(make([]byte, 19), ip, nil) != 0 {
		t.Error("built into too small a buffer")
	}
	big := make([]byte, 70000)
	if BuildUDP(big, ip, UDPFields{}, make([]byte, 65508)) != 0 {
		t.Error("built a packet longer than 65535 bytes")
	}
	if BuildUDP(big, ip, UDPFields{}, make([]byte, 65507)) != 65535 {
		t.Error("refused the largest packet")
	}
	if BuildUDP(big, IPv4Fields{Src: netip.MustParseAddr("2001:db8::1"), Dst: remote}, UDPFields{}, nil) != 0 ||
		BuildUDP(big, IPv4Fields{Dst: remote}, UDPFields{}, nil) != 0 {
		t.Error("built with a non-IPv4 address")
	}
}

func TestBuildICMPError(t *testing.T) {
	udp := func(src, dst netip.Addr, payload int) []byte {
		buf := make([]byte, 2000)
		return buf[:BuildUDP(buf, IPv4Fields{Src: src, Dst: dst, TTL: 1, ID: 0x4242}, UDPFields{SrcPort: 5353, DstPort: 53}, make([]byte, payload))]
	}
	echo := func(typ uint8) []byte {
		buf := make([]byte, 100)
		return buf[:BuildICMP(buf, IPv4Fields{Src: inside, Dst: remote, TTL: 1}, ICMPFields{Type: typ, Ident: 7}, []byte("data"))]
	}
	fragment := func(off uint16) []byte {
		buf := make([]byte, 100)
		udp := make([]byte, 16)
		udp[5] = 100 // the UDP length: the whole datagram, past this fragment
		return buf[:BuildIPv4(buf, IPv4Fields{Src: inside, Dst: remote, Protocol: ProtoUDP, TTL: 1, MoreFrags: true, FragOffset: off}, udp)]
	}
	padded := append(udp(inside, remote, 10), 0xee, 0xee)

	tests := []struct {
		name      string
		orig      []byte
		src       netip.Addr
		typ, code uint8
		mtu       uint16
		dstLen    int
		wantQuote int // 0: no error may be sent
	}{
		{"time exceeded", udp(inside, remote, 10), gateway, ICMPTimeExceeded, 0, 0, 576, 38},
		{"big packet: 576 bytes in all", udp(inside, remote, 1472), gateway, ICMPDestUnreachable, ICMPCodeAdminProhibited, 0, 1500, 548},
		{"frag needed carries the MTU", udp(inside, remote, 1472), gateway, ICMPDestUnreachable, ICMPCodeFragNeeded, 1400, 576, 548},
		{"parameter problem carries the pointer", udp(inside, remote, 4), gateway, ICMPParamProblem, 0, 8, 576, 32},
		{"small dst shrinks the quote", udp(inside, remote, 100), gateway, ICMPTimeExceeded, 0, 0, 60, 32},
		{"echo request gets one", echo(ICMPEchoRequest), gateway, ICMPTimeExceeded, 0, 0, 576, 32},
		{"first fragment gets one", fragment(0), gateway, ICMPTimeExceeded, 0, 0, 576, 36},
		{"padding is not quoted", padded, gateway, ICMPTimeExceeded, 0, 0, 576, 38},

		// RFC 1122 section 3.2.2: never.
		{"about an ICMP error", goldenPackets["portUnreachUDP"], gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"about a redirect", goldenPackets["redirect"], gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"about a short ICMP", goldenPackets["icmpShort"], gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"about an error with a bad quote", goldenPackets["errorInnerGRE"], gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"about a later fragment", fragment(8), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"from 0.0.0.0", udp(netip.MustParseAddr("0.0.0.0"), remote, 1), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"from this network", udp(netip.MustParseAddr("0.1.2.3"), remote, 1), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"from loopback", udp(netip.MustParseAddr("127.0.0.1"), remote, 1), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"from multicast", udp(netip.MustParseAddr("224.0.0.1"), remote, 1), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"from class E", udp(netip.MustParseAddr("240.0.0.1"), remote, 1), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"from broadcast", udp(netip.MustParseAddr("255.255.255.255"), remote, 1), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"to multicast", udp(inside, netip.MustParseAddr("224.0.0.251"), 1), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"to broadcast", udp(inside, netip.MustParseAddr("255.255.255.255"), 1), gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		// Or cannot.
		{"truncated", goldenPackets["totalLenPastEnd"], gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"not IPv4", goldenPackets["version6"], gateway, ICMPTimeExceeded, 0, 0, 576, 0},
		{"no source", udp(inside, remote, 1), netip.Addr{}, ICMPTimeExceeded, 0, 0, 576, 0},
		{"dst too small", udp(inside, remote, 100), gateway, ICMPTimeExceeded, 0, 0, 55, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]byte, tt.dstLen)
			for i := range dst {
				dst[i] = 0xdd
			}
			n := BuildICMPError(dst, tt.orig, tt.src, tt.typ, tt.code, tt.mtu)
			if tt.wantQuote == 0 {
				if n != 0 {
					t.Fatalf("built %d bytes, want none", n)
				}
				if !bytes.Equal(dst, bytes.Repeat([]byte{0xdd}, len(dst))) {
					t.Fatal("wrote to dst")
				}
				return
			}
			if want := 28 + tt.wantQuote; n != want {
				t.Fatalf("length %d, want %d", n, want)
			}
			b := dst[:n]
			p := decode(b)
			if p.Status != OK || p.IPProto != ProtoICMP || p.ICMPType != tt.typ || p.ICMPCode != tt.code ||
				p.TTL != 64 || b[ipTOS] != 0xc0 || p.DontFrag || p.ID != IPv4(tt.orig).ID() ||
				p.Src.Addr() != tt.src || p.Dst.Addr() != IPv4(tt.orig).Src() {
				t.Errorf("decoded %+v", p)
			}
			if !IPv4(b).ChecksumValid() || !ICMPChecksumValid(b, &p) {
				t.Error("bad checksum")
			}
			if !bytes.Equal(b[28:], tt.orig[:tt.wantQuote]) {
				t.Error("quote differs from the packet")
			}
			ic := ICMPv4(b[20:])
			switch {
			case tt.typ == ICMPDestUnreachable && tt.code == ICMPCodeFragNeeded:
				if ic.MTU() != tt.mtu || ic.Ident() != 0 {
					t.Errorf("MTU %d, want %d", ic.MTU(), tt.mtu)
				}
			case tt.typ == ICMPParamProblem:
				if ic[4] != uint8(tt.mtu) || ic[5] != 0 || ic.Seq() != 0 {
					t.Errorf("pointer %d, want %d", ic[4], tt.mtu)
				}
			default:
				if ic.Ident() != 0 || ic.Seq() != 0 {
					t.Error("unused bytes not zero")
				}
			}
			if IsICMPError(tt.typ) && (p.InnerOff == 0 || p.InnerSrc.Addr() != IPv4(tt.orig).Src()) {
				t.Errorf("quote not decodable: %+v", p)
			}
		})
	}
}

// TestBuildICMPErrorInPlace: dst may be orig's own buffer.
func TestBuildICMPErrorInPlace(t *testing.T) {
	g := newGen(11)
	for range 1000 {
		orig := g.transport()
		buf := make([]byte, 1600)
		want := buf[:BuildICMPError(buf, orig, gateway, ICMPTimeExceeded, 0, 0)]
		same := make([]byte, 1600)
		copy(same, orig)
		n := BuildICMPError(same, same[:len(orig)], gateway, ICMPTimeExceeded, 0, 0)
		if !bytes.Equal(same[:n], want) {
			t.Fatalf("in place:\n got %x\nwant %x", same[:n], want)
		}
	}
}
