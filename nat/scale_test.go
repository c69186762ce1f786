package nat

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// The scale benchmarks measure what a packet costs with 1K, 100K and 1M
// live UDP mappings. Flows are visited in a scattered order (every packet
// a different flow, uniformly: the worst case for the caches) or with
// Zipf-distributed flow popularity (a few heavy flows, a long tail: what
// traffic through a NAT looks like), in router-sized batches: Prefetch the
// batch, then Process each packet, as forward.Router's readers do.

const scaleBatch = 16 // what one read of the offload backend brings, at most

// scaleFlow is flow i's internal endpoint: 1000 ports on each of up to
// 1000 hosts 10.0.x.y (10.0.0.1 is the gateway).
func scaleFlow(i int) (netip.Addr, uint16) {
	h := i/1000 + 2
	return netip.AddrFrom4([4]byte{10, 0, byte(h >> 8), byte(h)}), uint16(1024 + i%1000)
}

type scaleEngine struct {
	e        *Engine
	external []uint64 // flow i's external endpoint, packed (addr<<16 | port)
	template []byte   // a 64-byte UDP datagram, checksum 0
}

var scaleEngines = map[int]*scaleEngine{}

func scaleSetup(b testing.TB, n int) *scaleEngine {
	if se := scaleEngines[n]; se != nil {
		return se
	}
	c, err := table.Preset("port-restricted-cone")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 32 { // 32 x ~64K ports: room for 1M mappings
		c.External = append(c.External, netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)}))
	}
	e, err := New(Config{Table: c, Inside: []InsidePort{{Hosts: scaleHosts(n), Gateway: netip.MustParseAddr("10.0.0.1")}}})
	if err != nil {
		b.Fatal(err)
	}
	se := &scaleEngine{e: e, external: make([]uint64, n)}
	se.template = udpPkt(ap(hostA, 1024), ap(srv1, 3478), 64, "0123456789012345678901234567890123456789")
	binary.BigEndian.PutUint16(se.template[header.IPv4MinSize+6:], 0) // no UDP checksum: set per flow below
	reply := make([]byte, 1500)
	buf := make([]byte, len(se.template))
	for i := range n {
		se.packet(buf, i)
		if r := e.Process(1, buf, reply, t0); r.Verdict != Forward {
			b.Fatalf("flow %d: %v", i, r.Verdict)
		}
		src := header.IPv4(buf).Src().As4()
		se.external[i] = uint64(binary.BigEndian.Uint32(src[:]))<<16 | uint64(binary.BigEndian.Uint16(buf[header.IPv4MinSize:]))
	}
	scaleEngines[n] = se
	return se
}

func scaleHosts(n int) []netip.Prefix {
	var hosts []netip.Prefix
	for i := 0; i < n; i += 1000 {
		a, _ := scaleFlow(i)
		hosts = append(hosts, netip.PrefixFrom(a, 16))
	}
	return hosts
}

// packet writes flow i's outbound datagram into buf.
func (se *scaleEngine) packet(buf []byte, i int) {
	copy(buf, se.template)
	a, port := scaleFlow(i)
	ip := header.IPv4(buf)
	ip.SetSrc(a)
	binary.BigEndian.PutUint16(buf[header.IPv4MinSize:], port)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.ComputeChecksum())
}

// reply writes the server's answer to the flow with external endpoint x
// (packed as in scaleEngine.external) into buf.
func (se *scaleEngine) reply(buf []byte, x uint64) {
	copy(buf, se.template)
	ip := header.IPv4(buf)
	ip.SetSrc(srv1)
	ip.SetDst(netip.AddrFrom4([4]byte{byte(x >> 40), byte(x >> 32), byte(x >> 24), byte(x >> 16)}))
	binary.BigEndian.PutUint16(buf[header.IPv4MinSize:], 3478)
	binary.BigEndian.PutUint16(buf[header.IPv4MinSize+2:], uint16(x))
	ip.SetChecksum(0)
	ip.SetChecksum(ip.ComputeChecksum())
}

// zipf returns a flow order drawn from a Zipf distribution (s = 1.1) over
// n flows, with flow ranks scattered over the table.
func zipfOrder(n, count int) []int32 {
	z := newZipf(n)
	order := make([]int32, count)
	for i := range order {
		order[i] = int32(spread(z.next(), n))
	}
	return order
}

func spread(i, n int) int { return int(uint64(i) * 2654435761 % uint64(n)) }

func BenchmarkTranslateScale(b *testing.B) {
	for _, sz := range []struct {
		name string
		n    int
	}{{"1K", 1000}, {"100K", 100_000}, {"1M", 1_000_000}} {
		for _, dir := range []string{"outbound", "inbound"} {
			for _, pattern := range []string{"scattered", "zipf"} {
				b.Run(sz.name+"/"+dir+"/"+pattern, func(b *testing.B) {
					se := scaleSetup(b, sz.n)
					var order []int32
					if pattern == "zipf" {
						order = zipfOrder(sz.n, 1<<16)
					}
					// An inbound packet's flow is named by its external
					// endpoint, which (unlike the internal one) cannot be
					// computed from the flow number: look them up before
					// the clock runs, in visiting order, so the loop reads
					// them sequentially. A random read of se.external per
					// packet would be a cache miss of the benchmark's own
					// at 1M (measured: ~40 ns per packet).
					var exts []uint64
					if dir == "inbound" {
						if order != nil {
							exts = make([]uint64, len(order))
							for k, f := range order {
								exts[k] = se.external[f]
							}
						} else {
							exts = make([]uint64, sz.n)
							for k := range exts {
								exts[k] = se.external[spread(k, sz.n)]
							}
						}
					}
					bufs := make([][]byte, scaleBatch)
					for i := range bufs {
						bufs[i] = make([]byte, len(se.template))
					}
					reply := make([]byte, 1500)
					port := Port(1)
					if dir == "inbound" {
						port = Outside
					}
					now := t0.Add(time.Second)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; b.Loop(); i += scaleBatch {
						for j, buf := range bufs {
							switch {
							case exts != nil:
								se.reply(buf, exts[(i+j)%len(exts)])
							case order != nil:
								se.packet(buf, int(order[(i+j)&(len(order)-1)]))
							default:
								se.packet(buf, spread(i+j, sz.n))
							}
						}
						se.e.Prefetch(port, bufs)
						for _, buf := range bufs {
							if r := se.e.Process(port, buf, reply, now); r.Verdict != Forward {
								b.Fatal(r.Verdict)
							}
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*scaleBatch), "ns/packet")
				})
			}
		}
	}
}

// BenchmarkTranslateScaleBuild is what the scale benchmarks spend making
// their packets (the same at every table size): subtract it to get the
// engine's own cost.
func BenchmarkTranslateScaleBuild(b *testing.B) {
	se := scaleSetup(b, 1000)
	buf := make([]byte, len(se.template))
	for i := 0; b.Loop(); i++ {
		se.packet(buf, spread(i, 1000))
	}
}

// With a table big enough for Prefetch to work, a prefetched batch
// allocates nothing and translates as it would without it.
func TestPrefetchBatch(t *testing.T) {
	se := scaleSetup(t, 20_000)
	if !se.e.tab.PrefetchHelps() {
		t.Fatal("20K mappings: prefetch off")
	}
	bufs := make([][]byte, scaleBatch)
	for i := range bufs {
		bufs[i] = make([]byte, len(se.template))
		se.reply(bufs[i], se.external[i*977])
	}
	bufs[3] = bufs[3][:10] // a runt: skipped, not a panic
	if a := testing.AllocsPerRun(50, func() { se.e.Prefetch(Outside, bufs) }); a != 0 {
		t.Errorf("Prefetch: %v allocs", a)
	}
	reply := make([]byte, 1500)
	for i, buf := range bufs {
		if i == 3 {
			continue
		}
		r := se.e.Process(Outside, buf, reply, t0.Add(time.Second))
		want, _ := scaleFlow(i * 977)
		if r.Verdict != Forward || header.IPv4(buf).Dst() != want {
			t.Fatalf("packet %d: %v to %s, want %s", i, r.Verdict, header.IPv4(buf).Dst(), want)
		}
	}
}
