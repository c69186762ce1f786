package table

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// checkIndex verifies an index's shape: counts, stored hashes, and that
// every entry is reachable from its home slot (no empty slot in between).
func checkIndex(t *testing.T, x *index, hash func(*Mapping) uint32) {
	t.Helper()
	total := 0
	for si := range x.shards {
		s := &x.shards[si]
		n := 0
		mask := uint32(len(s.slots) - 1)
		for i, e := range s.slots {
			if e.m == nil {
				continue
			}
			n++
			if h := hash(e.m); h != e.h {
				t.Fatalf("shard %d slot %d: stored hash %#x, key hashes to %#x", si, i, e.h, h)
			}
			if int(e.h>>(32-shardBits)) != si {
				t.Fatalf("shard %d slot %d: hash %#x belongs to shard %d", si, i, e.h, e.h>>(32-shardBits))
			}
			for j := e.h & mask; j != uint32(i); j = (j + 1) & mask {
				if s.slots[j].m == nil {
					t.Fatalf("shard %d slot %d: empty slot %d between it and its home %d", si, i, j, e.h&mask)
				}
			}
		}
		if n != s.n {
			t.Fatalf("shard %d: %d entries, counted %d", si, n, s.n)
		}
		if len(s.slots) > 0 && s.n*4 > len(s.slots)*3 {
			t.Fatalf("shard %d: %d entries in %d slots, over 3/4", si, s.n, len(s.slots))
		}
		total += n
	}
	if total != x.n {
		t.Fatalf("%d entries, counted %d", total, x.n)
	}
}

// TestIndexModel drives the index with random inserts and removes against a
// Go map, with a hash that collides often (few distinct values) so long
// probe runs, wrap-around and backward shifts all happen.
func TestIndexModel(t *testing.T) {
	for _, hashBits := range []uint{4, 10, 32} {
		rng := rand.New(rand.NewPCG(1, uint64(hashBits)))
		var x index
		model := map[*Mapping]uint32{}
		var live []*Mapping
		hashOf := func(m *Mapping) uint32 { return model[m] }
		for step := range 20000 {
			if len(live) == 0 || rng.IntN(3) != 0 {
				// Keep the shard bits varied but the rest collide.
				const shardPart uint32 = (1<<shardBits - 1) << (32 - shardBits)
				h := rng.Uint32()&shardPart | rng.Uint32()&(1<<hashBits-1)&^shardPart
				m := &Mapping{extPort: uint16(step)}
				model[m] = h
				x.insert(h, m)
				live = append(live, m)
			} else {
				i := rng.IntN(len(live))
				m := live[i]
				if !x.remove(model[m], m) {
					t.Fatalf("step %d: remove of a present entry failed", step)
				}
				if x.remove(model[m], m) {
					t.Fatalf("step %d: second remove succeeded", step)
				}
				delete(model, m)
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
			}
			if step%997 == 0 {
				checkIndex(t, &x, hashOf)
			}
		}
		checkIndex(t, &x, hashOf)
		// Every live entry is found by a probe from its home.
		for _, m := range live {
			h := model[m]
			k := extKey{port: m.extPort}
			if got := x.findExt(h, k.word()); got != m {
				t.Fatalf("hashBits %d: entry %d not found", hashBits, m.extPort)
			}
		}
		seen := 0
		x.all(func(*Mapping) bool { seen++; return true })
		if seen != len(live) || x.n != len(live) {
			t.Fatalf("all saw %d, n %d, want %d", seen, x.n, len(live))
		}
	}
}

func TestHashSpreads(t *testing.T) {
	// Sequential ports of one host must spread over every shard.
	seed := rand.Uint64()
	var perShard [indexShards]int
	for p := range 64 * 1024 {
		k := extKey{addr: [4]byte{198, 51, 100, 1}, port: uint16(p), proto: UDP}
		perShard[hashExt(k.word(), seed)>>(32-shardBits)]++
	}
	for i, n := range perShard {
		if n < 700 || n > 1400 { // 1024 expected
			t.Fatalf("shard %d holds %d of 65536 sequential keys", i, n)
		}
	}
}

// A probe is its key, word for word: key() undoes probe(), and the probe a
// lookup builds from a packet's endpoints is the probe of the key the
// mapping behaviour stores (remote fields zeroed as it ignores them).
func TestOutProbe(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var k outKey
		binary.LittleEndian.PutUint32(k.in[:], rng.Uint32())
		binary.LittleEndian.PutUint32(k.rem[:], rng.Uint32())
		k.inPort, k.remPort, k.proto = uint16(rng.Uint32()), uint16(rng.Uint32()), Protocol(rng.Uint32())
		if got := k.probe().key(); got != k {
			t.Fatalf("probe().key() = %+v, want %+v", got, k)
		}
	}
	in, rem := ep(hostA, 5000), ep(srvA1, portP1)
	for _, c := range []struct {
		b     Behavior
		proto Protocol
		want  outKey
	}{
		{EndpointIndependent, UDP, outKey{in: hostA.As4(), inPort: 5000, proto: UDP}},
		{AddressDependent, TCP, outKey{in: hostA.As4(), inPort: 5000, rem: srvA1.As4(), proto: TCP}},
		{AddressAndPortDependent, UDP, outKey{in: hostA.As4(), inPort: 5000, rem: srvA1.As4(), remPort: portP1, proto: UDP}},
		{AddressAndPortDependent, ICMP, outKey{in: hostA.As4(), inPort: 5000, proto: ICMP}}, // ICMP: always endpoint-independent
	} {
		tab := newTable(t, func(cfg *Config) { cfg.Mapping = c.b })
		if got := tab.outProbe(c.proto, in, rem); got != c.want.probe() || got.key() != c.want {
			t.Errorf("%v %v: probe %+v (key %+v), want key %+v", c.b, c.proto, got, got.key(), c.want)
		}
	}
	k := outKey{in: hostA.As4(), inPort: 5000, proto: UDP}
	r := remKeyOf(UDP, rem)
	if got, want := k.probe().forRemote(r).key(), (outKey{in: k.in, inPort: 5000, rem: r.addr, remPort: r.port, proto: UDP}); got != want {
		t.Errorf("forRemote: %+v, want %+v", got, want)
	}
}
