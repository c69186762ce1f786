package tun

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

func TestHasVirtioHdr(t *testing.T) {
	c := NewChannel("c")
	v := NewVirtioChannel("v")
	if !HasVirtioHdr(v) || HasVirtioHdr(c) || v.USO() {
		t.Fatal("HasVirtioHdr / USO")
	}
}
