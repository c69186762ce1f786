package nat

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// addrIndex maps IPv4 addresses to small numbers: inside hosts to their
// inside port, external addresses to their position. Every packet reads
// it (an outbound one up to three times), and with a million mappings
// the packets' own Mapping lines keep pushing it out of the near caches.
// A Go map takes several dependent loads per lookup (header, directory,
// group control word, slot) and a slice scanned in order takes one
// compare per element, 16 on average for a pool of 32 external
// addresses; this takes one multiply and almost always one load from
// one slice of words. Built once by New, read-only after.
type addrIndex struct {
	slots []uint64 // addr<<32 | value+1; 0 when empty
	shift uint     // 32 - log2(len(slots))
}

// newAddrIndex builds the index over m, its slots at most half full so
// that a probe ends soon at an empty one.
func newAddrIndex(m map[netip.Addr]uint32) addrIndex {
	n := 4
	for n < 2*len(m) {
		n <<= 1
	}
	x := addrIndex{slots: make([]uint64, n), shift: uint(32 - bits.TrailingZeros(uint(n)))}
	for a, v := range m {
		k := addrKey(a)
		i := x.home(k)
		for x.slots[i] != 0 {
			i = (i + 1) & (n - 1)
		}
		x.slots[i] = uint64(k)<<32 | uint64(v+1)
	}
	return x
}

func addrKey(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// home is key k's first slot: Fibonacci hashing takes the product's top
// bits, so addresses numbered consecutively land apart.
func (x *addrIndex) home(k uint32) int {
	return int((k * 0x9e3779b1) >> x.shift)
}

// lookup returns the value of address a.
func (x *addrIndex) lookup(a netip.Addr) (uint32, bool) {
	if !a.Is4() {
		return 0, false // IPv6 or 4-in-6: As4 would panic, and none is in the index
	}
	k := addrKey(a)
	mask := len(x.slots) - 1
	for i := x.home(k); ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == k {
			return uint32(s) - 1, true
		}
	}
}
