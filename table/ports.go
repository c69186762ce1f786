package table

import (
	"math/bits"
	"math/rand/v2"
)

// portPool is the port state of one (protocol, external address): one bit per
// port, set while a mapping holds it (RFC 4787 REQ-3: no port overloading;
// with PortOverloading, Table.shared counts a port's further holders).
type portPool struct {
	used [65536 / 64]uint64
	n    int       // ports in use
	last [3]uint16 // Sequential cursors: [0] ports 1-1023 (1-511 with LinuxLowPorts), [1] the high range, [2] 600-1023 (LinuxLowPorts)
}

// Parity masks over one bitmap word: bit i is port 64w+i, whose parity is i&1.
const (
	maskAll  = ^uint64(0)
	maskEven = 0x5555555555555555
	maskOdd  = 0xAAAAAAAAAAAAAAAA
)

func (p *portPool) isUsed(port uint16) bool {
	return p.used[port>>6]&(1<<(port&63)) != 0
}

func (p *portPool) set(port uint16) {
	p.used[port>>6] |= 1 << (port & 63)
	p.n++
}

func (p *portPool) clear(port uint16) {
	p.used[port>>6] &^= 1 << (port & 63)
	p.n--
}

// wordMask returns the bits of word w that fall inside [lo, hi] and mask.
func wordMask(w int, lo, hi uint16, mask uint64) uint64 {
	m := mask
	if w == int(lo>>6) {
		m &= maskAll << (lo & 63)
	}
	if w == int(hi>>6) {
		m &= maskAll >> (63 - hi&63)
	}
	return m
}

// firstFree returns the lowest free port in [lo, hi] allowed by mask.
func (p *portPool) firstFree(lo, hi uint16, mask uint64) (uint16, bool) {
	if lo > hi {
		return 0, false
	}
	for w := int(lo >> 6); w <= int(hi>>6); w++ {
		if free := ^p.used[w] & wordMask(w, lo, hi, mask); free != 0 {
			return uint16(w<<6 + bits.TrailingZeros64(free)), true
		}
	}
	return 0, false
}

// nextFree returns the first free port allowed by mask at or after from,
// wrapping around within [lo, hi].
func (p *portPool) nextFree(lo, hi, from uint16, mask uint64) (uint16, bool) {
	if from < lo || from > hi {
		from = lo
	}
	if port, ok := p.firstFree(from, hi, mask); ok {
		return port, true
	}
	if from > lo {
		return p.firstFree(lo, from-1, mask)
	}
	return 0, false
}

// countFree counts the free ports in [lo, hi] allowed by mask.
func (p *portPool) countFree(lo, hi uint16, mask uint64) int {
	n := 0
	for w := int(lo >> 6); w <= int(hi>>6); w++ {
		n += bits.OnesCount64(^p.used[w] & wordMask(w, lo, hi, mask))
	}
	return n
}

// nthFree returns the k-th (from 0) free port in [lo, hi] allowed by mask.
func (p *portPool) nthFree(lo, hi uint16, mask uint64, k int) (uint16, bool) {
	for w := int(lo >> 6); w <= int(hi>>6); w++ {
		free := ^p.used[w] & wordMask(w, lo, hi, mask)
		c := bits.OnesCount64(free)
		if k >= c {
			k -= c
			continue
		}
		for ; k > 0; k-- {
			free &= free - 1 // drop the lowest set bit
		}
		return uint16(w<<6 + bits.TrailingZeros64(free)), true
	}
	return 0, false
}

// randomProbes is how many uniform guesses random tries before it counts the
// free ports; either way the result is uniform over the free ports.
const randomProbes = 16

// random returns a uniformly random free port in [lo, hi] allowed by mask.
func (p *portPool) random(lo, hi uint16, mask uint64, rng *rand.Rand) (uint16, bool) {
	first, step := int(lo), 1
	if mask != maskAll {
		step = 2
		if (mask == maskEven) != (lo%2 == 0) {
			first++
		}
	}
	if first > int(hi) {
		return 0, false
	}
	n := (int(hi)-first)/step + 1
	for range randomProbes {
		port := uint16(first + step*rng.IntN(n))
		if !p.isUsed(port) {
			return port, true
		}
	}
	free := p.countFree(lo, hi, mask)
	if free == 0 {
		return 0, false
	}
	return p.nthFree(lo, hi, mask, rng.IntN(free))
}
