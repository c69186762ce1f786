package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestAgainstGopacket6 cross-checks the IPv6 side with an independent
// decoder: random packets, rewritten, are decoded by gopacket to the same
// fields, and gopacket recomputing the upper-layer checksum gives back
// the same bytes.
func TestAgainstGopacket6(t *testing.T) {
	g := newGen(23)
	for range 3000 {
		b := g.packet6()
		p := decode6(b)
		if p.Status != OK {
			t.Fatalf("%v: %x", p.Status, b)
		}
		ops := opsFor6(&p)
		ops[g.Intn(len(ops))].fn(b, &p, g.addrPort6())
		if !compareGopacket6(t, b, &p, true) {
			t.Fatalf("gopacket did not decode %x", b)
		}
	}
	// Fragments, for the Fragment header's fields.
	buf := make([]byte, 2000)
	for range 200 {
		n := BuildUDP6(buf, g.ip6Fields(), UDPFields{SrcPort: g.port(), DstPort: g.port()}, g.bytes(100+g.Intn(500)))
		first, second := fragment6(buf[:n], 8*(1+g.Intn(12)), g.Uint32())
		for _, f := range [][]byte{first, second} {
			p := decode6(f)
			if p.Status != OK || p.FragHdrOff == 0 || !compareGopacket6(t, f, &p, false) {
				t.Fatalf("fragment %x: %+v", f, p)
			}
		}
	}
}

// compareGopacket6 checks what gopacket decodes from b against p, and the
// upper-layer checksum (when sums is set) against gopacket's. It reports false when
// gopacket does not decode the packet as far as p does.
func compareGopacket6(t *testing.T, b []byte, p *ParsedV6, sums bool) bool {
	t.Helper()
	pkt := gopacket.NewPacket(b[:p.Length], layers.LayerTypeIPv6, gopacket.DecodeOptions{NoCopy: true})
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip == nil {
		return false
	}
	v := IPv6(b)
	if ip.Version != 6 || ip.TrafficClass != v.TrafficClass() || ip.FlowLabel != v.FlowLabel() ||
		int(ip.Length)+IPv6Size != p.Length || ip.HopLimit != p.HopLimit ||
		addr6Of(ip.SrcIP) != p.Src.Addr() || addr6Of(ip.DstIP) != p.Dst.Addr() {
		t.Fatalf("IPv6 differs: gopacket %+v\nours %+v", ip, p)
	}
	// gopacket goes on into a tunnelled packet (IPv6 or IPv4 in IPv6):
	// its layers after the first IPv6 header may be the inner packet's.
	// Compare them only when the outer packet carries no other IP one.
	if p.Proto == 41 || p.Proto == 4 {
		return true
	}
	if f, _ := pkt.Layer(layers.LayerTypeIPv6Fragment).(*layers.IPv6Fragment); f != nil {
		if p.FragHdrOff == 0 || f.Identification != p.FragID || f.FragmentOffset*8 != p.FragOffset ||
			f.MoreFragments != p.MoreFrags || uint8(f.NextHeader) != b[p.FragHdrOff] {
			t.Fatalf("fragment header differs: gopacket %+v\nours %+v", f, p)
		}
		// gopacket stops at a Fragment header, atomic or not.
		return true
	}
	var tl gopacket.Layer
	switch p.Proto {
	case ProtoUDP:
		u, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if u == nil {
			return false
		}
		if uint16(u.SrcPort) != p.Src.Port() || uint16(u.DstPort) != p.Dst.Port() {
			t.Fatalf("UDP differs: %v, ours %+v", u, p)
		}
		tl = u
	case ProtoTCP:
		tc, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tc == nil {
			return false
		}
		if uint16(tc.SrcPort) != p.Src.Port() || uint16(tc.DstPort) != p.Dst.Port() || gopacketTCPFlags(tc) != p.TCPFlags {
			t.Fatalf("TCP differs: %v, ours %+v", tc, p)
		}
		tl = tc
	case ProtoICMPv6:
		ic, _ := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if ic == nil {
			return false
		}
		if ic.TypeCode.Type() != p.ICMPType || ic.TypeCode.Code() != p.ICMPCode {
			t.Fatalf("ICMPv6 differs: %v, ours %+v", ic, p)
		}
		if p.HasPorts() {
			e, _ := pkt.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
			if e == nil || e.Identifier != p.Src.Port() || e.Identifier != p.Dst.Port() {
				t.Fatalf("echo differs: %v, ours %+v", e, p)
			}
		}
		if p.InnerOff != 0 {
			// gopacket does not decode the quote; decode it as a packet
			// of its own.
			q := gopacket.NewPacket(b[p.InnerOff:p.Length], layers.LayerTypeIPv6, gopacket.DecodeOptions{NoCopy: true})
			if qip, _ := q.Layer(layers.LayerTypeIPv6).(*layers.IPv6); qip != nil &&
				(addr6Of(qip.SrcIP) != p.InnerSrc.Addr() || addr6Of(qip.DstIP) != p.InnerDst.Addr()) {
				t.Fatalf("quoted header differs: %v, ours %+v", qip, p)
			}
		}
		tl = ic
	default:
		return true
	}
	if tl.LayerContents() == nil || &tl.LayerContents()[0] != &b[p.TransportOff] {
		t.Fatalf("gopacket's upper layer is not at offset %d", p.TransportOff)
	}
	if !sums {
		return true
	}
	// gopacket's own checksum of the upper layer, over the same bytes.
	seg := bytes.Clone(b[p.TransportOff:p.Length])
	at := map[uint8]int{ProtoUDP: udpChecksum, ProtoTCP: tcpChecksum, ProtoICMPv6: icmpChecksum}[p.Proto]
	got := binary.BigEndian.Uint16(seg[at:])
	if p.Proto == ProtoUDP && got == 0 {
		return true // no checksum to compare
	}
	want := gopacketChecksum6(t, ip, p.Proto, seg, at)
	if p.Proto == ProtoUDP && want == 0 {
		want = 0xffff // gopacket does not send a computed 0 as 0xFFFF
	}
	if got != want {
		t.Fatalf("checksum %#04x, gopacket computes %#04x", got, want)
	}
	return true
}

// gopacketChecksum6 has gopacket compute the checksum of upper-layer
// segment seg (its checksum at offset at) under ip's pseudo-header.
func gopacketChecksum6(t *testing.T, ip *layers.IPv6, proto uint8, seg []byte, at int) uint16 {
	t.Helper()
	var l interface {
		gopacket.SerializableLayer
		SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
	}
	var hl int
	switch proto {
	case ProtoUDP:
		l, hl = &layers.UDP{SrcPort: layers.UDPPort(UDP(seg).SrcPort()), DstPort: layers.UDPPort(UDP(seg).DstPort()), Length: UDP(seg).Length()}, UDPSize
	case ProtoTCP:
		// Decoded by gopacket, to be written back with its options.
		tc := &layers.TCP{}
		if err := tc.DecodeFromBytes(seg, gopacket.NilDecodeFeedback); err != nil {
			t.Fatal(err)
		}
		l, hl = tc, len(tc.Contents)
	case ProtoICMPv6:
		l, hl = &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(seg[0], seg[1])}, 4
	}
	if err := l.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, l, gopacket.Payload(seg[hl:])); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint16(buf.Bytes()[at:])
}

func gopacketTCPFlags(tc *layers.TCP) uint8 {
	var f uint8
	for i, set := range []bool{tc.FIN, tc.SYN, tc.RST, tc.PSH, tc.ACK, tc.URG, tc.ECE, tc.CWR} {
		if set {
			f |= 1 << i
		}
	}
	return f
}

// addr6Of is an IPv6 address as gopacket holds it, kept as IPv6: an
// IPv4-mapped one (::ffff:a.b.c.d) is an IPv6 address in an IPv6 header.
func addr6Of(ip []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a
}
