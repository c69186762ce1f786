package table

import (
	"encoding/binary"
	"math/bits"
)

// index finds mappings by a key hash. It is what Go's map would be for
// map[key]*Mapping, cut down to what a NAT needs at a million entries:
//
//   - A slot is a pointer and the key's 32-bit hash (16 bytes). A probe
//     compares hashes in the slot array and dereferences a Mapping only
//     when they match, so a hit costs one miss in the index and one in the
//     Mapping; the key itself lives in the Mapping (no copy).
//   - Linear probing with backward-shift deletion: no tombstones, so a
//     table that churns through short flows does not rot.
//   - 64 shards, each growing on its own (at 3/4 full, from the stored
//     hashes, no Mapping touched), so one growth step moves 1/64th of the
//     entries: a short pause, not one the size of the table.
//   - The hash is seeded per table, so inside hosts cannot aim their
//     ports at one probe run.
type index struct {
	shards [indexShards]shard
	n      int
}

const (
	indexShards   = 64
	shardBits     = 6
	minShardSlots = 8
)

type slot struct {
	m *Mapping
	h uint32
}

type shard struct {
	slots []slot // len is a power of two, or 0
	n     int
}

// mix is a seeded 64-to-32-bit hash: two multiplies, and every key bit
// reaches the high bits that pick the shard and the slot. Seeded per
// table; not a cryptographic hash.
func mix(x, seed uint64) uint32 {
	x = (x ^ seed) * 0x9e3779b97f4a7c15
	x ^= x >> 29
	return uint32(x * 0xbf58476d1ce4e5b9 >> 32)
}

// endpointWord is an endpoint (and protocol) as one word, addr |
// port<<32 | proto<<48: what lookups hash and compare, built in registers
// from the packet's fields. A key struct built on the stack and read back
// with wider loads than it was written with stalls store forwarding (as
// outProbe explains). An extKey is one such word, an outProbe two.
func endpointWord(proto Protocol, addr [4]byte, port uint16) uint64 {
	return uint64(binary.LittleEndian.Uint32(addr[:])) | uint64(port)<<32 | uint64(proto)<<48
}

func (k extKey) word() uint64 { return endpointWord(k.proto, k.addr, k.port) }

// extWord is the mapping's external endpoint as a word.
func (m *Mapping) extWord() uint64 { return endpointWord(m.okey.proto, m.extAddr, m.extPort) }

func hashExt(w, seed uint64) uint32 { return mix(w, seed) }

// outProbe is an outKey as two endpoint words: a the internal endpoint
// with the protocol, b the remote part (no protocol). Lookups build, hash
// and compare it in registers.
// The 14-byte outKey, built field by field on the stack and then copied
// and hashed with wide loads, stalls store forwarding: three such loads
// take ~40% of Outbound's time at 1K mappings (perf annotate).
type outProbe struct{ a, b uint64 }

func probeOf(proto Protocol, in [4]byte, inPort uint16, rem [4]byte, remPort uint16) outProbe {
	return outProbe{a: endpointWord(proto, in, inPort), b: endpointWord(0, rem, remPort)}
}

func (k *outKey) probe() outProbe { return probeOf(k.proto, k.in, k.inPort, k.rem, k.remPort) }

// key is the outKey p stands for (the stored form, for a new mapping).
func (p outProbe) key() outKey {
	k := outKey{inPort: uint16(p.a >> 32), proto: Protocol(p.a >> 48), remPort: uint16(p.b >> 32)}
	binary.LittleEndian.PutUint32(k.in[:], uint32(p.a))
	binary.LittleEndian.PutUint32(k.rem[:], uint32(p.b))
	return k
}

// forRemote is p narrowed to remote r: the key of a mapping made for r
// alone on a port clash (PortOverloading).
func (p outProbe) forRemote(r remKey) outProbe {
	p.b = endpointWord(0, r.addr, r.port)
	return p
}

func hashOut(p outProbe, seed uint64) uint32 {
	return mix(p.a^bits.RotateLeft64(p.b, 23)*0xd6e8feb86659fd93, seed)
}

func (x *index) shard(h uint32) *shard { return &x.shards[h>>(32-shardBits)] }

// insert adds m under hash h. The key must not be present.
func (x *index) insert(h uint32, m *Mapping) {
	s := x.shard(h)
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint32(len(s.slots) - 1)
	i := h & mask
	for s.slots[i].m != nil {
		i = (i + 1) & mask
	}
	s.slots[i] = slot{m: m, h: h}
	s.n++
	x.n++
}

func (s *shard) grow() {
	old := s.slots
	s.slots = make([]slot, max(2*len(old), minShardSlots))
	mask := uint32(len(s.slots) - 1)
	for _, e := range old {
		if e.m == nil {
			continue
		}
		i := e.h & mask
		for s.slots[i].m != nil {
			i = (i + 1) & mask
		}
		s.slots[i] = e
	}
}

// remove takes m (held under hash h) out; it reports whether m was there.
func (x *index) remove(h uint32, m *Mapping) bool {
	s := x.shard(h)
	if len(s.slots) == 0 {
		return false
	}
	mask := uint32(len(s.slots) - 1)
	i := h & mask
	for {
		e := s.slots[i].m
		if e == nil {
			return false
		}
		if e == m {
			break
		}
		i = (i + 1) & mask
	}
	// Backward shift: pull later entries of the run into the hole unless
	// that would move one before its home slot.
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		e := s.slots[j]
		if e.m == nil {
			break
		}
		if (j-e.h&mask)&mask >= (j-i)&mask {
			s.slots[i] = e
			i = j
		}
	}
	s.slots[i] = slot{}
	s.n--
	x.n--
	return true
}

// all calls fn for each mapping until fn returns false.
func (x *index) all(fn func(*Mapping) bool) {
	for si := range x.shards {
		for _, e := range x.shards[si].slots {
			if e.m != nil && !fn(e.m) {
				return
			}
		}
	}
}

// reset empties the index.
func (x *index) reset() { *x = index{} }

// The typed lookups: the probe loop is the same, the key comparison is
// not, and a closure per lookup would cost more than the loop.

func (x *index) findOut(h uint32, p outProbe) *Mapping {
	s := x.shard(h)
	if len(s.slots) == 0 {
		return nil
	}
	mask := uint32(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := &s.slots[i]
		if e.m == nil {
			return nil
		}
		if e.h == h && e.m.okey.probe() == p {
			return e.m
		}
	}
}

func (x *index) findExt(h uint32, w uint64) *Mapping {
	s := x.shard(h)
	if len(s.slots) == 0 {
		return nil
	}
	mask := uint32(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := &s.slots[i]
		if e.m == nil {
			return nil
		}
		if e.h == h && e.m.extWord() == w {
			return e.m
		}
	}
}

// eachExt yields every mapping held under extWord w (hash h): one, or
// several with PortOverloading. The index must not change while it runs.
func (x *index) eachExt(h uint32, w uint64) func(yield func(*Mapping) bool) {
	return func(yield func(*Mapping) bool) {
		s := x.shard(h)
		if len(s.slots) == 0 {
			return
		}
		mask := uint32(len(s.slots) - 1)
		for i := h & mask; ; i = (i + 1) & mask {
			e := &s.slots[i]
			if e.m == nil {
				return
			}
			if e.h == h && e.m.extWord() == w && !yield(e.m) {
				return
			}
		}
	}
}

// home returns the address of h's first slot, for prefetching (nil when
// the shard is empty).
func (x *index) home(h uint32) *slot {
	s := x.shard(h)
	if len(s.slots) == 0 {
		return nil
	}
	return &s.slots[h&uint32(len(s.slots)-1)]
}
