package header

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestFragments(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20) // 320 bytes + 8 UDP
	buf := make([]byte, 1500)
	n := BuildUDP(buf, IPv4Fields{Src: netip.MustParseAddr("203.0.113.1"), Dst: netip.MustParseAddr("10.0.0.2"), Protocol: ProtoUDP, TTL: 64, ID: 7},
		UDPFields{SrcPort: 3478, DstPort: 5000}, payload)
	whole := buf[:n]
	frags := Fragments(whole, 100) // rounded down to 96
	if len(frags) != 4 {
		t.Fatalf("%d fragments, want 4 (328 bytes in 96-byte pieces)", len(frags))
	}
	var joined []byte
	for i, f := range frags {
		var p Parsed
		p.Decode(f)
		if p.Status != OK || !IPv4(f).ChecksumValid() || p.ID != 7 {
			t.Fatalf("fragment %d: %v, checksum valid %v, id %d", i, p.Status, IPv4(f).ChecksumValid(), p.ID)
		}
		if int(p.FragOffset) != i*96 || p.MoreFrags != (i < 3) || p.HasPorts() != (i == 0) {
			t.Errorf("fragment %d: offset %d more %v ports %v", i, p.FragOffset, p.MoreFrags, p.HasPorts())
		}
		joined = append(joined, IPv4(f).Payload()...)
	}
	if !bytes.Equal(joined, IPv4(whole).Payload()) {
		t.Error("fragments do not put the datagram back together")
	}
	if Fragments(whole, 4) != nil || Fragments(nil, 96) != nil {
		t.Error("a size under 8 bytes or no datagram must give nothing")
	}
}
