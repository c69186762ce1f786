package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func TestSumKnown(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want uint16 // folded sum, not inverted
	}{
		{"empty", nil, 0},
		// RFC 1071 section 3 worked example: 0001 f203 f4f5 f6f7 sums
		// to 2ddf0, folding to ddf2.
		{"rfc1071", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0xddf2},
		{"odd length pads with zero", []byte{0x12, 0x34, 0x56}, 0x1234 + 0x5600},
		{"one byte", []byte{0xab}, 0xab00},
		// -0: a non-zero sum never folds to +0.
		{"negative zero", []byte{0xff, 0xff}, 0xffff},
		{"multiple of ffff", []byte{0x80, 0x00, 0x7f, 0xff}, 0xffff},
		{"all zero", make([]byte, 64), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fold(Sum(tt.data, 0)); got != tt.want {
				t.Errorf("Fold(Sum) = %#04x, want %#04x", got, tt.want)
			}
		})
	}
}

// TestChecksumIPv4Example checks a header from the wild (the one
// Wikipedia's "Internet checksum" article works through).
func TestChecksumIPv4Example(t *testing.T) {
	h := IPv4{
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, // checksum
		0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	}
	if got := h.ComputeChecksum(); got != 0xb861 {
		t.Errorf("ComputeChecksum = %#04x, want 0xb861", got)
	}
	if !h.ChecksumValid() {
		t.Error("ChecksumValid = false")
	}
	if got := Checksum(h, 0); got != 0 {
		t.Errorf("Checksum over a valid header = %#04x, want 0", got)
	}
}

// TestSumMatchesReference compares Sum with the one-word-at-a-time
// reference for every length up to 600 and every start offset mod 8,
// with random initial values, and checks that sums over pieces chain.
func TestSumMatchesReference(t *testing.T) {
	g := newGen(1)
	data := g.bytes(1024)
	for n := 0; n <= 600; n++ {
		for off := 0; off < 8; off++ {
			b := data[off : off+n]
			if got, want := Fold(Sum(b, 0)), refSum(b); got != want {
				t.Fatalf("len %d off %d: Fold(Sum) = %#04x, want %#04x", n, off, got, want)
			}
			init := g.Uint32()
			// Adding init is the same as adding its folded value.
			want := Fold(uint32(refSum(b)) + uint32(Fold(init)))
			if got := Fold(Sum(b, init)); got != want {
				t.Fatalf("len %d initial %#x: got %#04x, want %#04x", n, init, got, want)
			}
			if n > 0 {
				cut := g.Intn(n+1) &^ 1
				if got, want := Fold(Sum(b[cut:], Sum(b[:cut], init))), Fold(Sum(b, init)); got != want {
					t.Fatalf("len %d cut %d: chained %#04x, whole %#04x", n, cut, got, want)
				}
			}
		}
	}
}

// TestSumLarge: the result stays small enough to add to, whatever the
// input (here the worst case, all 0xFF, and a maximal initial value).
func TestSumLarge(t *testing.T) {
	b := bytes.Repeat([]byte{0xff}, 65536)
	s := Sum(b, 0xffffffff)
	if s > 0x1fffe {
		t.Errorf("Sum = %#x, want <= 0x1fffe", s)
	}
	if Fold(s) != 0xffff {
		t.Errorf("Fold = %#04x, want 0xffff", Fold(s))
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.2")
	dst := netip.MustParseAddr("192.0.2.1")
	ph := []byte{10, 0, 0, 2, 192, 0, 2, 1, 0, ProtoUDP, 0x01, 0x02}
	if got, want := Fold(PseudoHeaderSum(src, dst, ProtoUDP, 0x0102)), refSum(ph); got != want {
		t.Errorf("PseudoHeaderSum = %#04x, want %#04x", got, want)
	}
}

// TestUpdateChecksumProperty: over random data, changing one word (or a
// 4-byte field) and updating the checksum incrementally gives exactly
// the checksum a full recomputation gives (RFC 1624 eqn. 3 never yields
// the -0 a full computation cannot).
func TestUpdateChecksumProperty(t *testing.T) {
	g := newGen(2)
	full := func(b []byte) uint16 { return ^Fold(Sum(b, 0)) }
	for i := range 100000 {
		n := 2 * (2 + g.Intn(40))
		b := g.bytes(n)
		b[0] |= 0x40 // never all zero, as no IPv4 header is
		switch i % 4 {
		case 0:
			// Force edge words.
			binary.BigEndian.PutUint16(b[2:], 0xffff)
		case 1:
			binary.BigEndian.PutUint16(b[2:], 0)
		}
		c := full(b)
		w := 2 * g.Intn(n/2)
		old := binary.BigEndian.Uint16(b[w:])
		nw := uint16(g.Intn(0x10000))
		if i%5 == 0 {
			nw = 0xffff - old // makes the sum change by -old+~old
		}
		binary.BigEndian.PutUint16(b[w:], nw)
		if got, want := UpdateChecksum16(c, old, nw), full(b); got != want {
			t.Fatalf("UpdateChecksum16(%#04x, %#04x, %#04x) = %#04x, recomputed %#04x", c, old, nw, got, want)
		}
		if n >= 8 {
			c = full(b)
			w = 2 * g.Intn(n/2-1)
			o4 := [4]byte(b[w : w+4])
			n4 := [4]byte(g.bytes(4))
			copy(b[w:], n4[:])
			if got, want := UpdateChecksum32(c, o4, n4), full(b); got != want {
				t.Fatalf("UpdateChecksum32: got %#04x, recomputed %#04x", got, want)
			}
		}
	}
}

func TestDecTTL(t *testing.T) {
	g := newGen(3)
	for range 10000 {
		b := g.transport()
		want := bytes.Clone(b)
		IPv4(want).SetTTL(IPv4(want).TTL() - 1)
		IPv4(want).SetChecksum(IPv4(want).ComputeChecksum())
		IPv4(b).DecTTL()
		if !bytes.Equal(b, want) {
			t.Fatalf("DecTTL:\n got %x\nwant %x", b, want)
		}
	}
	b := g.transport()
	IPv4(b).SetTTL(0)
	IPv4(b).SetChecksum(IPv4(b).ComputeChecksum())
	want := bytes.Clone(b)
	IPv4(b).DecTTL()
	if !bytes.Equal(b, want) {
		t.Error("DecTTL changed a packet with TTL 0")
	}
}

// SetTransportChecksum computes what the builders compute, whatever the
// field held, and leaves other protocols alone.
func TestSetTransportChecksum(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("203.0.113.1")
	ip := IPv4Fields{Src: src, Dst: dst, TTL: 64}
	b := make([]byte, 1500)
	for name, n := range map[string]int{
		"udp": BuildUDP(b, ip, UDPFields{SrcPort: 5000, DstPort: 53}, []byte("query")),
		"tcp": BuildTCP(b[500:], ip, TCPFields{SrcPort: 40000, DstPort: 80, Flags: TCPSyn}, nil),
	} {
		pkt := b[:n]
		if name == "tcp" {
			pkt = b[500 : 500+n]
		}
		want := append([]byte(nil), pkt...)
		off := IPv4MinSize + UDPChecksumOffset
		if name == "tcp" {
			off = IPv4MinSize + TCPChecksumOffset
		}
		pkt[off], pkt[off+1] = 0x12, 0x34
		SetTransportChecksum(IPv4(pkt))
		if string(pkt) != string(want) {
			t.Errorf("%s: %x, want %x", name, pkt, want)
		}
	}
	icmp := make([]byte, 100)
	n := BuildICMP(icmp, IPv4Fields{Src: src, Dst: dst, TTL: 64}, ICMPFields{Type: ICMPEchoRequest, Ident: 1}, nil)
	before := string(icmp[:n])
	SetTransportChecksum(IPv4(icmp[:n]))
	if string(icmp[:n]) != before {
		t.Error("an ICMP message changed")
	}
}

// TestIPv4ChecksumValidMatchesSum checks the 20-byte fast path of
// ChecksumValid against the general sum, over random headers with a
// correct checksum, with one bit flipped, and with options.
func TestIPv4ChecksumValidMatchesSum(t *testing.T) {
	g := newGen(2)
	for i := range 20000 {
		ihl := 5
		if i%4 == 3 {
			ihl = 6 + i%10 // options
		}
		h := IPv4(g.bytes(ihl * 4))
		h[0] = 0x40 | byte(ihl)
		if i%3 == 0 {
			h.SetChecksum(h.ComputeChecksum())
			if i%6 == 0 {
				h[1+g.Intn(len(h)-1)] ^= 1 << g.Intn(8) // not byte 0: the length stays
			}
		}
		want := Checksum(h, 0) == 0
		if got := h.ChecksumValid(); got != want {
			t.Fatalf("header % x: ChecksumValid = %v, the full sum says %v", []byte(h), got, want)
		}
	}
}
