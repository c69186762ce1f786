package header

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// gopacketIPv6 is the gopacket layer for f.
func gopacketIPv6(f IPv6Fields, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{
		Version: 6, TrafficClass: f.TrafficClass, FlowLabel: f.FlowLabel, HopLimit: f.HopLimit,
		NextHeader: next, SrcIP: net.IP(f.Src.AsSlice()), DstIP: net.IP(f.Dst.AsSlice()),
	}
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBuilders6 compares every builder's output with gopacket's
// serialization of the same fields, byte for byte.
func TestBuilders6(t *testing.T) {
	g := newGen(29)
	buf := make([]byte, 2000)
	for range 500 {
		f := g.ip6Fields()
		payload := g.bytes(g.payloadLen())
		ip := gopacketIPv6(f, layers.IPProtocolUDP)

		u := UDPFields{SrcPort: g.port(), DstPort: g.port()}
		gu := &layers.UDP{SrcPort: layers.UDPPort(u.SrcPort), DstPort: layers.UDPPort(u.DstPort)}
		_ = gu.SetNetworkLayerForChecksum(ip)
		want := serialize(t, ip, gu, gopacket.Payload(payload))
		if binary.BigEndian.Uint16(want[IPv6Size+udpChecksum:]) == 0 {
			binary.BigEndian.PutUint16(want[IPv6Size+udpChecksum:], 0xffff) // RFC 8200 section 8.1
		}
		if got := buf[:BuildUDP6(buf, f, u, payload)]; !bytes.Equal(got, want) {
			t.Fatalf("BuildUDP6:\nours     %x\ngopacket %x", got, want)
		}

		tf := TCPFields{SrcPort: g.port(), DstPort: g.port(), Seq: g.Uint32(), Ack: g.Uint32(), Flags: uint8(g.Intn(256)), Window: uint16(g.Intn(0x10000))}
		ip = gopacketIPv6(f, layers.IPProtocolTCP)
		gt := &layers.TCP{SrcPort: layers.TCPPort(tf.SrcPort), DstPort: layers.TCPPort(tf.DstPort), Seq: tf.Seq, Ack: tf.Ack, Window: tf.Window,
			FIN: tf.Flags&TCPFin != 0, SYN: tf.Flags&TCPSyn != 0, RST: tf.Flags&TCPRst != 0, PSH: tf.Flags&TCPPsh != 0,
			ACK: tf.Flags&TCPAck != 0, URG: tf.Flags&TCPUrg != 0, ECE: tf.Flags&TCPEce != 0, CWR: tf.Flags&TCPCwr != 0}
		_ = gt.SetNetworkLayerForChecksum(ip)
		want = serialize(t, ip, gt, gopacket.Payload(payload))
		if got := buf[:BuildTCP6(buf, f, tf, payload)]; !bytes.Equal(got, want) {
			t.Fatalf("BuildTCP6:\nours     %x\ngopacket %x", got, want)
		}

		ic := ICMPFields{Type: ICMPv6EchoRequest + uint8(g.Intn(2)), Ident: g.port(), Seq: uint16(g.Intn(0x10000))}
		ip = gopacketIPv6(f, layers.IPProtocolICMPv6)
		gi := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ic.Type, 0)}
		_ = gi.SetNetworkLayerForChecksum(ip)
		want = serialize(t, ip, gi, &layers.ICMPv6Echo{Identifier: ic.Ident, SeqNumber: ic.Seq}, gopacket.Payload(payload))
		if got := buf[:BuildICMPv6(buf, f, ic, payload)]; !bytes.Equal(got, want) {
			t.Fatalf("BuildICMPv6:\nours     %x\ngopacket %x", got, want)
		}

		f.NextHeader = ProtoNoNext
		ip = gopacketIPv6(f, layers.IPProtocolNoNextHeader)
		want = serialize(t, ip, gopacket.Payload(payload))
		if got := buf[:BuildIPv6(buf, f, payload)]; len(payload) > 0 && !bytes.Equal(got, want) {
			t.Fatalf("BuildIPv6:\nours     %x\ngopacket %x", got, want)
		}
	}
}

// TestBuilders6Refuse: the builders write nothing they cannot write
// whole.
func TestBuilders6Refuse(t *testing.T) {
	f := IPv6Fields{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("2001:db8::1"), HopLimit: 1}
	v4 := f
	v4.Dst = netip.MustParseAddr("192.0.2.1")
	big := make([]byte, 70000)
	for name, n := range map[string]int{
		"too small":    BuildUDP6(make([]byte, 47), f, UDPFields{}, nil),
		"IPv4 address": BuildTCP6(make([]byte, 100), v4, TCPFields{}, nil),
		"over 65535":   BuildIPv6(big, f, big[:65536]),
		"zero address": BuildICMPv6(make([]byte, 100), IPv6Fields{}, ICMPFields{}, nil),
	} {
		if n != 0 {
			t.Errorf("%s: wrote %d bytes", name, n)
		}
	}
}

// TestBuildICMPv6Error checks the error against gopacket's serialization
// and RFC 4443's rules on when not to send one.
func TestBuildICMPv6Error(t *testing.T) {
	host := netip.MustParseAddr("fd00:1::2")
	server := netip.MustParseAddr("2001:db8::53")
	router := netip.MustParseAddr("fd00:1::1")
	buf := make([]byte, 2000)
	n := BuildUDP6(buf, IPv6Fields{Src: host, Dst: server, HopLimit: 1}, UDPFields{SrcPort: 5353, DstPort: 53}, make([]byte, 1400))
	orig := bytes.Clone(buf[:n])
	reply := make([]byte, 2000)

	en := BuildICMPv6Error(reply, orig, router, ICMPv6PacketTooBig, 0, 1280)
	if en != IPv6MinMTU {
		t.Fatalf("error of %d bytes, want 1280 (RFC 4443 section 2.4(c))", en)
	}
	f := IPv6Fields{Src: router, Dst: host, HopLimit: 64}
	ip := gopacketIPv6(f, layers.IPProtocolICMPv6)
	gi := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6PacketTooBig, 0)}
	_ = gi.SetNetworkLayerForChecksum(ip)
	want := serialize(t, ip, gi, gopacket.Payload(append([]byte{0, 0, 5, 0}, orig[:1232]...)))
	if !bytes.Equal(reply[:en], want) {
		t.Fatalf("Packet Too Big:\nours     %x\ngopacket %x", reply[:en], want)
	}
	p := decode6(reply[:en])
	if p.Status != OK || p.ICMPType != ICMPv6PacketTooBig || ICMPv6(reply[IPv6Size:]).MTU() != 1280 ||
		p.InnerSrc != netip.AddrPortFrom(host, 5353) || p.InnerDst != netip.AddrPortFrom(server, 53) {
		t.Fatalf("decoded %+v", p)
	}

	// In place: the error overwrites the packet it is about.
	inPlace := bytes.Clone(orig)
	inPlace = append(inPlace, make([]byte, 100)...)
	if n := BuildICMPv6Error(inPlace, inPlace[:len(orig)], router, ICMPv6PacketTooBig, 0, 1280); !bytes.Equal(inPlace[:n], want) {
		t.Fatal("in place differs")
	}

	// A small buffer cuts the quote, but not below the headers and 8
	// bytes.
	if n := BuildICMPv6Error(reply[:100], orig, router, ICMPv6TimeExceeded, 0, 0); n != 100 {
		t.Fatalf("small buffer: %d", n)
	}
	if n := BuildICMPv6Error(reply[:IPv6Size+ICMPv6MinSize+IPv6Size+7], orig, router, ICMPv6TimeExceeded, 0, 0); n != 0 {
		t.Fatalf("too small buffer: %d", n)
	}

	mk := func(src, dst netip.Addr, ic ICMPFields) []byte {
		b := make([]byte, 200)
		return b[:BuildICMPv6(b, IPv6Fields{Src: src, Dst: dst, HopLimit: 1}, ic, []byte("0123456789abcdef0123456789abcdef0123456789abcdef"))]
	}
	refuse := map[string][]byte{
		"an error":         reply[:en],
		"a redirect":       mk(host, server, ICMPFields{Type: icmpv6Redirect}),
		"to multicast":     mk(host, netip.MustParseAddr("ff02::1"), ICMPFields{Type: ICMPv6EchoRequest}),
		"from unspecified": mk(netip.IPv6Unspecified(), server, ICMPFields{Type: ICMPv6EchoRequest}),
		"from multicast":   mk(netip.MustParseAddr("ff02::1"), server, ICMPFields{Type: ICMPv6EchoRequest}),
		"from loopback":    mk(netip.IPv6Loopback(), server, ICMPFields{Type: ICMPv6EchoRequest}),
		"truncated":        orig[:100],
		"IPv4":             goldenPackets["udp"],
	}
	for name, b := range refuse {
		if n := BuildICMPv6Error(reply, b, router, ICMPv6DestUnreachable, ICMPv6CodeNoRoute, 0); n != 0 {
			t.Errorf("%s: answered with %d bytes", name, n)
		}
	}
	if n := BuildICMPv6Error(reply, orig, netip.MustParseAddr("192.0.2.1"), ICMPv6TimeExceeded, 0, 0); n != 0 {
		t.Error("IPv4 source accepted")
	}
	// Packet Too Big is owed even to multicast (RFC 4443 section 2.4(e.3)).
	if n := BuildICMPv6Error(reply, refuse["to multicast"], router, ICMPv6PacketTooBig, 0, 1280); n == 0 {
		t.Error("Packet Too Big refused for a multicast destination")
	}
}
