package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestAgainstGopacket cross-checks with an independent decoder: random
// packets, rewritten, are decoded by gopacket to the same fields, and
// gopacket recomputing every checksum gives back the same bytes.
func TestAgainstGopacket(t *testing.T) {
	g := newGen(13)
	for range 3000 {
		var b []byte
		if g.Intn(3) == 0 {
			b, _ = g.icmpError()
		} else {
			b = g.transport()
		}
		p := decode(b)
		ops := opsFor(&p)
		ops[g.Intn(len(ops))].fn(b, &p, g.addrPort())
		compareGopacket(t, b, &p)
	}
	for name, b := range goldenPackets {
		p := decode(b)
		if p.Status == OK && !p.IsFragment() {
			t.Run(name, func(t *testing.T) { compareGopacket(t, b, &p) })
		}
	}
}

func addrOf(ip []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func compareGopacket(t *testing.T, b []byte, p *Parsed) {
	t.Helper()
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.DecodeOptions{NoCopy: true})
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		t.Fatalf("gopacket found no IPv4 in %x", b)
	}
	if int(ip.IHL)*4 != p.IPHeaderLen || int(ip.Length) != p.Length || uint8(ip.Protocol) != p.IPProto ||
		ip.TTL != p.TTL || ip.Id != p.ID || ip.FragOffset*8 != p.FragOffset ||
		(ip.Flags&layers.IPv4MoreFragments != 0) != p.MoreFrags || (ip.Flags&layers.IPv4DontFragment != 0) != p.DontFrag ||
		addrOf(ip.SrcIP) != p.Src.Addr() || addrOf(ip.DstIP) != p.Dst.Addr() {
		t.Fatalf("IPv4 differs: gopacket %+v\nours %+v", ip, p)
	}
	var serial []gopacket.SerializableLayer
	var payload []byte
	switch p.IPProto {
	case ProtoUDP:
		u, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if u == nil || uint16(u.SrcPort) != p.Src.Port() || uint16(u.DstPort) != p.Dst.Port() {
			t.Fatalf("UDP differs: %v (%v)", u, pkt.ErrorLayer())
		}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		serial = []gopacket.SerializableLayer{ip, u}
		payload = u.Payload
	case ProtoTCP:
		tc, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tc == nil || uint16(tc.SrcPort) != p.Src.Port() || uint16(tc.DstPort) != p.Dst.Port() {
			t.Fatalf("TCP differs: %v", tc)
		}
		if err := tc.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		serial = []gopacket.SerializableLayer{ip, tc}
		payload = tc.Payload
	case ProtoICMP:
		ic, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if ic == nil || ic.TypeCode.Type() != p.ICMPType || ic.TypeCode.Code() != p.ICMPCode {
			t.Fatalf("ICMP differs: %v", ic)
		}
		if p.HasPorts() && (ic.Id != p.Src.Port() || ic.Id != p.Dst.Port()) {
			t.Fatalf("ICMP identifier %d, ours %v %v", ic.Id, p.Src, p.Dst)
		}
		serial = []gopacket.SerializableLayer{ip, ic}
		payload = ic.Payload
		if p.InnerOff != 0 {
			// gopacket does not decode the quote; check it as a packet
			// of its own (its header at least).
			q := gopacket.NewPacket(b[p.InnerOff:p.Length], layers.LayerTypeIPv4, gopacket.DecodeOptions{NoCopy: true})
			if qip, _ := q.Layer(layers.LayerTypeIPv4).(*layers.IPv4); qip == nil ||
				addrOf(qip.SrcIP) != p.InnerSrc.Addr() || addrOf(qip.DstIP) != p.InnerDst.Addr() || uint8(qip.Protocol) != p.InnerProto {
				t.Fatalf("quoted header differs: %v", qip)
			}
		}
	default:
		return
	}
	serial = append(serial, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, serial...); err != nil {
		t.Fatal(err)
	}
	want := buf.Bytes()
	if p.IPProto == ProtoUDP && len(want) >= p.IPHeaderLen+UDPSize {
		// gopacket neither keeps a zero ("none") UDP checksum nor sends a
		// computed 0 as 0xFFFF (RFC 768): patch both in.
		got := UDP(b[p.IPHeaderLen:]).Checksum()
		if c := UDP(want[p.IPHeaderLen:]).Checksum(); got == 0 || (got == 0xffff && c == 0) {
			binary.BigEndian.PutUint16(want[p.IPHeaderLen+udpChecksum:], got)
		}
	}
	if !bytes.Equal(b[:p.Length], want) {
		t.Fatalf("gopacket's checksums differ:\nours     %x\ngopacket %x", b[:p.Length], want)
	}
}
