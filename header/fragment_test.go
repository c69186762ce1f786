package header

import (
	"bytes"
	"net/netip"
	"testing"
)

// fragmentAll cuts b with FragmentIPv4 for mtu, each fragment a new slice.
func fragmentAll(t *testing.T, b []byte, mtu int) [][]byte {
	t.Helper()
	var out [][]byte
	pl := len(IPv4(b).Payload())
	for from := 0; from < pl || from == 0 && len(out) == 0; {
		dst := make([]byte, mtu)
		n, next := FragmentIPv4(dst, b, mtu, from)
		if n == 0 {
			t.Fatalf("FragmentIPv4 from %d at mtu %d wrote nothing", from, mtu)
		}
		out = append(out, dst[:n])
		from = next
	}
	return out
}

func TestFragmentIPv4(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 87) // 1392 bytes + 8 UDP
	buf := make([]byte, 1500)
	src, dst := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("203.0.113.10")
	n := BuildUDP(buf, IPv4Fields{Src: src, Dst: dst, TTL: 64, ID: 99}, UDPFields{SrcPort: 5000, DstPort: 7}, payload)
	whole := buf[:n]
	for _, tc := range []struct {
		name  string
		mtu   int
		frags int
	}{
		{"fits", 1500, 1},
		{"576 link", 576, 3},        // 552 payload bytes a fragment
		{"minimum 68 link", 68, 30}, // 48 payload bytes a fragment
		{"1280 link", 1280, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := fragmentAll(t, whole, tc.mtu)
			if len(fs) != tc.frags {
				t.Fatalf("%d fragments, want %d", len(fs), tc.frags)
			}
			var joined []byte
			for i, f := range fs {
				var p Parsed
				p.Decode(f)
				if p.Status != OK || !IPv4(f).ChecksumValid() || p.ID != 99 || len(f) > tc.mtu {
					t.Fatalf("fragment %d: %v, checksum valid %v, id %d, %d bytes", i, p.Status, IPv4(f).ChecksumValid(), p.ID, len(f))
				}
				if int(p.FragOffset) != len(joined) || p.MoreFrags != (i < len(fs)-1) {
					t.Errorf("fragment %d: offset %d (want %d) more %v", i, p.FragOffset, len(joined), p.MoreFrags)
				}
				if i < len(fs)-1 && len(IPv4(f).Payload())%8 != 0 {
					t.Errorf("fragment %d carries %d bytes, not a multiple of 8", i, len(IPv4(f).Payload()))
				}
				joined = append(joined, IPv4(f).Payload()...)
			}
			if !bytes.Equal(joined, IPv4(whole).Payload()) {
				t.Error("fragments do not put the datagram back together")
			}
		})
	}
}

// A fragment cut again keeps its place in the datagram: offsets from its
// own, More Fragments on its last piece only if it had it.
func TestFragmentIPv4OfAFragment(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 2000)
	buf := make([]byte, 2100)
	n := BuildUDP(buf, IPv4Fields{Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("203.0.113.10"), TTL: 64, ID: 5}, UDPFields{SrcPort: 1, DstPort: 2}, payload)
	first := Fragments(buf[:n], 1480) // 1480 payload bytes, then 528
	var joined []byte
	for _, f := range first {
		for _, g := range fragmentAll(t, f, 576) {
			var p Parsed
			p.Decode(g)
			if int(p.FragOffset) != len(joined) {
				t.Fatalf("offset %d, want %d", p.FragOffset, len(joined))
			}
			joined = append(joined, IPv4(g).Payload()...)
			last := len(joined) == len(IPv4(buf[:n]).Payload())
			if p.MoreFrags == last {
				t.Errorf("fragment at %d: more fragments %v at the datagram's end %v", p.FragOffset, p.MoreFrags, last)
			}
		}
	}
	if !bytes.Equal(joined, IPv4(buf[:n]).Payload()) {
		t.Error("the pieces do not put the datagram back together")
	}
}

// Later fragments carry only the copied options (RFC 791): here a
// loose source route (0x83, copied) is kept and a record route (0x07,
// not copied) left to the first fragment.
func TestFragmentIPv4Options(t *testing.T) {
	opts := []byte{
		0x07, 7, 4, 0, 0, 0, 0, // record route, one slot: not copied
		0x83, 7, 4, 192, 0, 2, 1, // loose source route: copied
		0, 0, // end of list, padding
	}
	payload := bytes.Repeat([]byte("y"), 600)
	b := make([]byte, IPv4MinSize+len(opts)+len(payload))
	copy(b[IPv4MinSize+len(opts):], payload)
	ip := IPv4(b)
	b[0] = 4<<4 | uint8((IPv4MinSize+len(opts))>>2)
	ip.SetTotalLen(uint16(len(b)))
	b[8], b[9] = 64, ProtoUDP
	ip.SetSrc(netip.MustParseAddr("10.0.0.2"))
	ip.SetDst(netip.MustParseAddr("203.0.113.10"))
	copy(b[IPv4MinSize:], opts)
	ip.SetChecksum(ip.ComputeChecksum())
	fs := fragmentAll(t, b, 300)
	if got := IPv4(fs[0]).HeaderLen(); got != IPv4MinSize+len(opts) {
		t.Errorf("first fragment header %d bytes, want %d", got, IPv4MinSize+len(opts))
	}
	for _, f := range fs[1:] {
		if got := IPv4(f).HeaderLen(); got != 28 || !bytes.Equal(f[20:27], opts[7:14]) || f[27] != 0 {
			t.Errorf("later fragment header %d bytes, options % x; want 28 with the source route only", got, f[20:28])
		}
		if !IPv4(f).ChecksumValid() {
			t.Error("later fragment's checksum is wrong")
		}
	}
}

func TestFragmentIPv4Refuses(t *testing.T) {
	buf := make([]byte, 1500)
	n := BuildUDP(buf, IPv4Fields{Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("203.0.113.10"), TTL: 64}, UDPFields{SrcPort: 1, DstPort: 2}, make([]byte, 1000))
	if k, _ := FragmentIPv4(make([]byte, 100), buf[:n], 576, 0); k != 0 {
		t.Errorf("wrote %d bytes into a 100-byte buffer for a 576-byte fragment", k)
	}
	if k, _ := FragmentIPv4(make([]byte, 100), buf[:n], 27, 0); k != 0 {
		t.Errorf("wrote %d bytes for an MTU with no room for 8 payload bytes", k)
	}
	if k, _ := FragmentIPv4(make([]byte, 100), buf[:10], 576, 0); k != 0 {
		t.Errorf("wrote %d bytes from a cut header", k)
	}
}

func TestFragmentIPv4NoAllocs(t *testing.T) {
	buf := make([]byte, 1500)
	n := BuildUDP(buf, IPv4Fields{Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("203.0.113.10"), TTL: 64}, UDPFields{SrcPort: 1, DstPort: 2}, make([]byte, 1400))
	dst := make([]byte, 1500)
	allocs := testing.AllocsPerRun(100, func() {
		for from := 0; from < n-IPv4MinSize; {
			_, from = FragmentIPv4(dst, buf[:n], 576, from)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per datagram cut, want 0", allocs)
	}
}

// FuzzFragmentIPv4: for any packet that decodes and any MTU, the
// fragments stay within the MTU and their buffer, each header checksum
// is right, and their payloads put the packet's back together.
func FuzzFragmentIPv4(f *testing.F) {
	// A small seed keeps the minimizing of what the fuzzer finds short.
	buf := make([]byte, 200)
	n := BuildUDP(buf, IPv4Fields{Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("203.0.113.10"), TTL: 64}, UDPFields{SrcPort: 1, DstPort: 2}, make([]byte, 100))
	f.Add(buf[:n], uint16(68))
	f.Add(buf[:n], uint16(44))
	f.Fuzz(func(t *testing.T, b []byte, mtu uint16) {
		var p Parsed
		p.Decode(b)
		if p.Status != OK {
			return
		}
		b = b[:p.Length]
		pl := IPv4(b).Payload()
		dst := make([]byte, 2000)
		var joined []byte
		for from := 0; from < len(pl); {
			k, next := FragmentIPv4(dst, b, int(mtu), from)
			if k == 0 {
				return // refused: no room for 8 bytes, or dst too small
			}
			if k > int(mtu) || next <= from || !IPv4(dst[:k]).ChecksumValid() {
				t.Fatalf("fragment from %d: %d bytes for MTU %d, next %d, checksum valid %v", from, k, mtu, next, IPv4(dst[:k]).ChecksumValid())
			}
			joined = append(joined, IPv4(dst[:k]).Payload()...)
			from = next
		}
		if !bytes.Equal(joined, pl) {
			t.Fatal("the fragments do not put the payload back together")
		}
	})
}
