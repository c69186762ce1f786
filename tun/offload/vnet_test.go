package offload

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The header is struct virtio_net_hdr in the host's byte order (little
// endian on the machines gonat runs on).
func TestVirtioHdrRoundTrip(t *testing.T) {
	h := VirtioHdr{Flags: VirtioNeedsCsum, GSOType: GSOTCPv4, HdrLen: 66, GSOSize: 1448, CsumStart: 20, CsumOffset: 16}
	b := make([]byte, VirtioHdrLen)
	h.Encode(b)
	var g VirtioHdr
	g.Decode(b)
	if g != h {
		t.Fatalf("round trip: %+v -> %+v", h, g)
	}
	// flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
	want := []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.NativeEndian.PutUint16(want[2:], 66)
	binary.NativeEndian.PutUint16(want[4:], 1448)
	binary.NativeEndian.PutUint16(want[6:], 20)
	binary.NativeEndian.PutUint16(want[8:], 16)
	if !bytes.Equal(b, want) {
		t.Fatalf("layout %x, want %x", b, want)
	}
	if !h.IsGSO() || !h.NeedsCsum() || h.Plain() || !(&VirtioHdr{Flags: VirtioDataValid}).Plain() {
		t.Fatal("predicates")
	}
}

func TestWireSegments(t *testing.T) {
	pkt := func(proto byte, thl, payload int) []byte {
		b := make([]byte, 20+thl+payload)
		b[0], b[9] = 0x45, proto
		if proto == 6 {
			b[20+12] = byte(thl/4) << 4
		}
		return b
	}
	tcp := VirtioHdr{GSOType: GSOTCPv4, GSOSize: 1448}
	udp := VirtioHdr{GSOType: GSOUDPL4, GSOSize: 64}
	cases := []struct {
		name     string
		h        VirtioHdr
		pkt      []byte
		n, hdrLn int
	}{
		{"tcp 3 full segments", tcp, pkt(6, 32, 3*1448), 3, 52},
		{"tcp short last segment", tcp, pkt(6, 20, 2*1448+1), 3, 40},
		{"tcp one segment", tcp, pkt(6, 20, 1000), 1, 40},
		{"udp 25 datagrams", udp, pkt(17, 8, 25*64), 25, 28},
		{"not gso", VirtioHdr{}, pkt(6, 20, 5000), 1, 0},
		{"gso size 0", VirtioHdr{GSOType: GSOTCPv4}, pkt(6, 20, 5000), 1, 0},
		{"runt", tcp, []byte{0x45, 0, 0}, 1, 0},
		{"tcp header cut", tcp, pkt(6, 20, 0)[:30], 1, 0},
	}
	for _, c := range cases {
		if n, hl := c.h.WireSegments(c.pkt); n != c.n || hl != c.hdrLn {
			t.Errorf("%s: %d segments of %d header bytes, want %d of %d", c.name, n, hl, c.n, c.hdrLn)
		}
	}
}
