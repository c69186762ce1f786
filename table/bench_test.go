package table

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// benchExternal returns n external addresses 198.51.100.1, .2, ...
func benchExternal(n int) []netip.Addr {
	var ext []netip.Addr
	for i := range n {
		ext = append(ext, netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)}))
	}
	return ext
}

// benchInternal is flow i's internal endpoint: 1000 ports per host, hosts
// counted up through 10.0.0.0/8.
func benchInternal(i int) netip.AddrPort {
	h := i/1000 + 1
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)}), uint16(1024+i%1000))
}

var benchRemote = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, 1}), 3478)

// benchTable is a table of n live UDP mappings (one session each), built once
// per size and shared by the benchmarks.
type benchTable struct {
	tab *Table
	// visit is the external endpoints in the order the inbound benchmarks
	// look them up (flow spread(k, n) at k), so they read it sequentially:
	// a random read of it per lookup would be a cache miss of the
	// benchmark's own at 1M (measured: ~40 ns).
	visit      []netip.AddrPort
	perMapping float64 // heap bytes per mapping
}

var benchTables = map[int]*benchTable{}

func benchSetup(b *testing.B, n int) *benchTable {
	if bt := benchTables[n]; bt != nil {
		return bt
	}
	b.Helper()
	bt := &benchTable{visit: make([]netip.AddrPort, n)}
	externals := make([]netip.AddrPort, n)
	ext := benchExternal(32) // 32 x ~64K ports: room for 1M mappings
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tab, err := New(Config{External: ext})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		m, _, err := tab.Outbound(UDP, benchInternal(i), benchRemote, 0, t0)
		if err != nil {
			b.Fatalf("mapping %d: %v", i, err)
		}
		externals[i] = m.External()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Measured while externals (allocated before) is alive: freed in
	// between, it would be subtracted from the table's bytes.
	bt.perMapping = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	for k := range bt.visit {
		bt.visit[k] = externals[spread(k, n)]
	}
	bt.tab = tab
	benchTables[n] = bt
	return bt
}

var benchSizes = []struct {
	name string
	n    int
}{{"1K", 1000}, {"100K", 100_000}, {"1M", 1_000_000}}

// spread visits the n flows in a scattered order, so big tables miss the
// caches as real traffic would.
func spread(i, n int) int { return int(uint64(i) * 2654435761 % uint64(n)) }

func BenchmarkOutboundHit(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			bt := benchSetup(b, sz.n)
			now := t0.Add(time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				m, created, err := bt.tab.Outbound(UDP, benchInternal(spread(i, sz.n)), benchRemote, 0, now)
				if err != nil || created {
					b.Fatal("miss", err)
				}
				sinkMapping = m
			}
			b.ReportMetric(bt.perMapping, "B/mapping")
		})
	}
}

func BenchmarkInboundHit(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			bt := benchSetup(b, sz.n)
			now := t0.Add(time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				m, v := bt.tab.Inbound(UDP, bt.visit[i%sz.n], benchRemote, 0, now)
				if v != Accept {
					b.Fatal(v)
				}
				sinkMapping = m
			}
			b.ReportMetric(bt.perMapping, "B/mapping")
		})
	}
}

func BenchmarkOutboundNew(b *testing.B) {
	const perTable = 1_000_000
	ext := benchExternal(32)
	tab, _ := New(Config{External: ext})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%perTable == 0 {
			b.StopTimer()
			tab, _ = New(Config{External: ext})
			b.StartTimer()
		}
		m, created, err := tab.Outbound(UDP, benchInternal(i%perTable), benchRemote, 0, t0)
		if err != nil || !created {
			b.Fatal("not new", err)
		}
		sinkMapping = m
	}
}

// BenchmarkExpire measures removing lapsed mappings through the expiry heap:
// each iteration builds 10K mappings (untimed) and expires them all.
func BenchmarkExpire(b *testing.B) {
	const n = 10_000
	tab, _ := New(Config{External: benchExternal(1)})
	removed := 0
	for b.Loop() {
		b.StopTimer()
		for j := range n {
			tab.Outbound(UDP, benchInternal(j), benchRemote, 0, t0.Add(time.Duration(j)*time.Millisecond))
		}
		b.StartTimer()
		removed += tab.Expire(t0.Add(time.Hour), nil)
	}
	if removed != b.N*n {
		b.Fatalf("removed %d, want %d", removed, b.N*n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(removed), "ns/mapping")
}

// benchBatch is how many packets the batch benchmarks look up together:
// what one read from the TUN device brings.
const benchBatch = 32

// BenchmarkOutboundHitBatch is BenchmarkOutboundHit as the router does it:
// a batch's lookups prefetched together, then made one by one. ns/op is
// per packet.
func BenchmarkOutboundHitBatch(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			bt := benchSetup(b, sz.n)
			now := t0.Add(time.Second)
			keys := make([]LookupKey, benchBatch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i += benchBatch {
				for j := range keys {
					keys[j] = LookupKey{Proto: UDP, Outbound: true, Local: benchInternal(spread(i+j, sz.n)), Remote: benchRemote}
				}
				bt.tab.prefetchBatch(keys)
				for j := range keys {
					m, created, err := bt.tab.Outbound(UDP, keys[j].Local, benchRemote, 0, now)
					if err != nil || created {
						b.Fatal("miss", err)
					}
					sinkMapping = m
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/packet")
			b.ReportMetric(bt.perMapping, "B/mapping")
		})
	}
}

// BenchmarkInboundHitBatch is BenchmarkInboundHit in prefetched batches.
func BenchmarkInboundHitBatch(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			bt := benchSetup(b, sz.n)
			now := t0.Add(time.Second)
			keys := make([]LookupKey, benchBatch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i += benchBatch {
				for j := range keys {
					keys[j] = LookupKey{Proto: UDP, Local: bt.visit[(i+j)%sz.n]}
				}
				bt.tab.prefetchBatch(keys)
				for j := range keys {
					m, v := bt.tab.Inbound(UDP, keys[j].Local, benchRemote, 0, now)
					if v != Accept {
						b.Fatal(v)
					}
					sinkMapping = m
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/packet")
			b.ReportMetric(bt.perMapping, "B/mapping")
		})
	}
}
