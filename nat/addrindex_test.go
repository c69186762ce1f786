package nat

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func addrOf(k uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], k)
	return netip.AddrFrom4(b)
}

// The index answers as the map it was built from does, for hosts in it
// and for addresses near and far from them, at sizes that fill its
// slots to the brim (a power of two hosts) and just past one.
func TestAddrIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 64, 255, 1000, 4096, 4097} {
		for _, layout := range []string{"consecutive", "random", "stride256"} {
			want := make(map[uint32]uint32, n)
			for i := 0; len(want) < n; i++ {
				var k uint32
				switch layout {
				case "consecutive":
					k = 0x0a000002 + uint32(i)
				case "random":
					k = rng.Uint32()
				case "stride256":
					k = 0x0a000002 + uint32(i)<<8 // the same last byte: one host per /24
				}
				want[k] = uint32(rng.IntN(300))
			}
			want[0] = 0 // 0.0.0.0 with value 0 still looks up (its slot is not 0)
			m := make(map[netip.Addr]uint32, len(want))
			for k, v := range want {
				m[addrOf(k)] = v
			}
			h := newAddrIndex(m)
			if used := len(want); 2*used > len(h.slots) {
				t.Fatalf("%d %s: %d hosts in %d slots", n, layout, used, len(h.slots))
			}
			for k, p := range want {
				if got, ok := h.lookup(addrOf(k)); !ok || got != p {
					t.Fatalf("%d %s: lookup(%s) = %d, %v; want %d", n, layout, addrOf(k), got, ok, p)
				}
				for _, d := range []uint32{1, 1 << 8, 1 << 16, 1 << 24} {
					if _, in := want[k+d]; in {
						continue
					}
					if got, ok := h.lookup(addrOf(k + d)); ok {
						t.Fatalf("%d %s: lookup(%s) = %d, found; not a host", n, layout, addrOf(k+d), got)
					}
				}
			}
		}
	}
}

// A lookup allocates nothing and finds no IPv6 address.
func TestAddrIndexLookup(t *testing.T) {
	a := addrOf(0x0a000002)
	h := newAddrIndex(map[netip.Addr]uint32{a: 1})
	if allocs := testing.AllocsPerRun(100, func() { h.lookup(a) }); allocs != 0 {
		t.Errorf("lookup: %v allocs", allocs)
	}
	if _, ok := h.lookup(netip.AddrFrom16(a.As16())); ok {
		t.Error("4-in-6 form of a host found")
	}
}
