//go:build linux

package forward

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
	"golang.org/x/sys/unix"
)

// seqPkt is a datagram from host A carrying sequence number i.
func seqPkt(i int) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(i))
	return tuntest.UDP(ap(hostA, 5000), ap(srv1, 3478), b[:])
}

// seqOf reads the sequence number of a datagram seqPkt made.
func seqOf(t *testing.T, pkt []byte) int {
	var p header.Parsed
	p.Decode(pkt)
	if len(pkt) < 4 {
		t.Fatalf("short packet %x", pkt)
	}
	return int(binary.BigEndian.Uint32(pkt[len(pkt)-4:]))
}

// lossRun sends n datagrams out through a Router whose outside link
// loses 10% and returns the sequence numbers that arrived.
func lossRun(t *testing.T, seed uint64, n int) (got map[int]bool, r *Router) {
	e := newEngine(t, "full-cone", hostA)
	out, a := tuntest.NewChannel("out"), tuntest.NewChannel("a")
	r = &Router{Engine: e, Ports: []tun.Device{out, a}, ImpairSeed: seed,
		Impair: []PortImpair{{Out: impair.MustParse("loss=10%")}}}
	r.setupImpair()
	p := r.newPumper(16, r.Ports, nil)
	got = map[int]bool{}
	for i := 0; i < n; i += 16 {
		k := min(16, n-i)
		for j := range k {
			p.sizes[j] = copy(p.bufs[j][Headroom:], seqPkt(i+j))
		}
		p.batch(1, k, t0())
		for len(out.Out) > 0 {
			got[seqOf(t, <-out.Out)] = true
		}
	}
	return got, r
}

// Loss drops its share, counted by reason, and the same seed loses the
// same packets; another seed, others.
func TestImpairLossSeeded(t *testing.T) {
	const n = 20000
	a, ra := lossRun(t, 7, n)
	lost := n - len(a)
	if f := float64(lost) / n; f < 0.09 || f > 0.11 {
		t.Errorf("lost %.3f, want 0.10 +- 0.01", f)
	}
	if d := ra.ImpairDrops(impair.Loss); d != uint64(lost) {
		t.Errorf("counted %d impair-loss drops, %d lost", d, lost)
	}
	b, _ := lossRun(t, 7, n)
	c, _ := lossRun(t, 8, n)
	sameB, sameC := true, true
	for i := range n {
		sameB = sameB && a[i] == b[i]
		sameC = sameC && a[i] == c[i]
	}
	if !sameB || sameC {
		t.Errorf("same seed lost the same packets: %v (want true); another seed: %v (want false)", sameB, sameC)
	}
}

// A super-packet bound for an impaired link is cut into segments, each
// decided alone: what arrives and what is dropped add up to the segments.
func TestImpairSegments(t *testing.T) {
	e := newEngine(t, "full-cone", hostA)
	out, a := tuntest.NewVirtioChannel("out"), tuntest.NewVirtioChannel("a")
	r := &Router{Engine: e, Ports: []tun.Device{out, a}, ImpairSeed: 1,
		Impair: []PortImpair{{Out: impair.MustParse("loss=30%")}}}
	r.setupImpair()
	p := r.newPumper(16, r.Ports, nil)
	syn, sh := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), nil, header.TCPSyn)
	e.ProcessVirtio(1, syn, &sh, make([]byte, 1500), t0())
	tso, th := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), make([]byte, 40*mss), header.TCPAck)
	th.Encode(p.bufs[0][Headroom-offload.VirtioHdrLen:])
	p.sizes[0] = copy(p.bufs[0][Headroom:], tso)
	p.batch(1, 1, t0())
	arrived := len(out.Out)
	for range arrived {
		pkt := <-out.Out
		var h offload.VirtioHdr
		h.Decode(pkt[:offload.VirtioHdrLen])
		if h.IsGSO() || len(pkt)-offload.VirtioHdrLen > 1500 {
			t.Fatalf("a super-packet reached an impaired link")
		}
		checkSums(t, pkt[offload.VirtioHdrLen:])
	}
	if dropped := int(r.ImpairDrops(impair.Loss)); arrived+dropped != 40 || dropped == 0 {
		t.Errorf("%d segments arrived, %d dropped; want 40 in all, some dropped", arrived, dropped)
	}
}

// A batch through a delaying, duplicating, lossy link allocates nothing:
// packets are copied into the queue's slots, drained by later batches.
func TestImpairBatchNoAllocs(t *testing.T) {
	e := newEngine(t, "full-cone", hostA)
	ports := []tun.Device{sinkDevice{tuntest.NewChannel("o")}, sinkDevice{tuntest.NewChannel("a")}}
	r := &Router{Engine: e, Ports: ports, ImpairSeed: 3,
		Impair: []PortImpair{{Out: impair.MustParse("delay=20us jitter=10us loss=5% duplicate=10% corrupt=1%")}}}
	r.setupImpair()
	p := r.newPumper(16, ports, nil)
	udp := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "datagram")
	load := func() {
		for i := range 8 {
			p.sizes[i] = copy(p.bufs[i][Headroom:], udp)
		}
	}
	load()
	p.batch(1, 8, t0()) // the mapping
	allocs := testing.AllocsPerRun(200, func() {
		load()
		p.batch(1, 8, t0())
		for end := monoNow() + 40_000; monoNow() < end; { // the batch's packets fall due
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per batch with a delay queue", allocs)
	}
	if r.imp.Load().queues[0].Len() > 64 {
		t.Errorf("%d packets still queued: the batches do not drain", r.imp.Load().queues[0].Len())
	}
	if r.ImpairDrops(impair.Loss) == 0 || r.ImpairDrops(impair.QueueOverflow) != 0 {
		t.Errorf("drops: %d loss, %d overflow", r.ImpairDrops(impair.Loss), r.ImpairDrops(impair.QueueOverflow))
	}
}

// eventDevice is a Channel that can be polled: an eventfd, written when
// a packet is put on In (Put), readable while In may hold one.
type eventDevice struct {
	*tuntest.Channel
	fd int
}

func newEventDevice(t *testing.T, name string) *eventDevice {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &eventDevice{Channel: tuntest.NewChannel(name), fd: fd}
}

func (d *eventDevice) Put(pkt []byte) {
	d.In <- pkt
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(d.fd, one[:])
}

func (d *eventDevice) PollFd() int { return d.fd }

// TryRead resets the eventfd first: a packet Put after that makes it
// readable again.
func (d *eventDevice) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	var b [8]byte
	unix.Read(d.fd, b[:])
	n := 0
	for n < len(bufs) {
		select {
		case p := <-d.In:
			sizes[n] = copy(bufs[n][offset:], p)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Delayed packets leave when due, with every kind of reader: the
// per-device readers' drain goroutine and the per-CPU readers' timerfd.
func TestImpairDelayReaders(t *testing.T) {
	for _, mode := range []ReadMode{{Readers: ReadersPerDevice}, {Readers: ReadersPerCPU}, {Readers: ReadersBusyPoll, Quiet: time.Millisecond}} {
		t.Run(mode.Readers.String(), func(t *testing.T) {
			out, a := newEventDevice(t, "out"), newEventDevice(t, "a")
			r := &Router{Engine: newEngine(t, "full-cone", hostA), Ports: []tun.Device{out, a}, Mode: mode,
				Impair: []PortImpair{{Out: impair.MustParse("delay=30ms"), In: impair.MustParse("delay=20ms")}}}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			defer cancelAndWait(t, cancel, done, "with a delay queue")
			for i := range 5 {
				sent := time.Now()
				a.Put(seqPkt(i))
				select {
				case pkt := <-out.Out:
					took := time.Since(sent)
					t.Logf("out after %v", took)
					// Never early; late only by what a loaded machine
					// adds (a reader that waited for other traffic, or
					// for a poll timeout, would be seconds late).
					if seqOf(t, pkt) != i || took < 30*time.Millisecond || took > 530*time.Millisecond {
						t.Errorf("packet %d (sent %d) out after %v, want 30-530ms", seqOf(t, pkt), i, took)
					}
				case <-time.After(2 * time.Second):
					t.Fatal("a delayed packet never left")
				}
				sent = time.Now()
				out.Put(udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, fmt.Sprint(i)))
				select {
				case <-a.Out:
					if took := time.Since(sent); took < 20*time.Millisecond || took > 520*time.Millisecond {
						t.Errorf("reply in after %v, want 20-520ms", took)
					}
				case <-time.After(2 * time.Second):
					t.Fatal("a delayed reply never arrived")
				}
			}
		})
	}
}

// The cost of the hook: a batch of 8 datagrams with no impairment, with
// an impairer that decides but drops almost nothing, through a 20 µs
// delay queue (copied in, drained by the next batches), and into a 50 ms
// one (held: once its slots are full, the rest overflow).
func BenchmarkImpairBatch(b *testing.B) {
	for _, c := range []struct{ name, spec string }{{"off", ""}, {"loss=0.01%", "loss=0.01%"}, {"delay=20us", "delay=20us"}, {"delay=50ms", "delay=50ms"}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEngine(b, "full-cone", hostA)
			ports := []tun.Device{sinkDevice{tuntest.NewChannel("o")}, sinkDevice{tuntest.NewChannel("a")}}
			r := &Router{Engine: e, Ports: ports, Impair: []PortImpair{{Out: impair.MustParse(c.spec)}}}
			r.setupImpair()
			p := r.newPumper(16, ports, nil)
			udp := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "datagram")
			b.ReportAllocs()
			for b.Loop() {
				for i := range 8 {
					p.sizes[i] = copy(p.bufs[i][Headroom:], udp)
				}
				p.batch(1, 8, t0())
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8), "ns/packet")
		})
	}
}

// SetImpair changes a port's impairment between batches: all lost, then
// delayed, then none; packets delayed before the impairment was cleared
// still leave when due.
func TestSetImpairAtRunTime(t *testing.T) {
	e := newEngine(t, "full-cone", hostA)
	out, a := tuntest.NewChannel("out"), tuntest.NewChannel("a")
	r := &Router{Engine: e, Ports: []tun.Device{out, a}, ImpairSeed: 1}
	r.setupImpair()
	if r.imp.Load() != nil {
		t.Fatal("an unimpaired Router has impairment state")
	}
	p := r.newPumper(16, r.Ports, nil)
	send := func(seq int) int {
		p.sizes[0] = copy(p.bufs[0][Headroom:], seqPkt(seq))
		p.batch(1, 1, t0())
		return len(out.Out)
	}
	if n := send(0); n != 1 {
		t.Fatalf("unimpaired: %d packets out, want 1", n)
	}
	<-out.Out
	if err := r.SetImpair(0, PortImpair{Out: impair.MustParse("loss=100%")}); err != nil {
		t.Fatal(err)
	}
	if n := send(1); n != 0 || r.ImpairDrops(impair.Loss) != 1 {
		t.Fatalf("loss=100%%: %d out, %d lost", n, r.ImpairDrops(impair.Loss))
	}
	if err := r.SetImpair(0, PortImpair{Out: impair.MustParse("delay=30ms")}); err != nil {
		t.Fatal(err)
	}
	if n := send(2); n != 0 {
		t.Fatalf("delay=30ms: %d out at once", n)
	}
	if err := r.SetImpair(0, PortImpair{}); err != nil {
		t.Fatal(err)
	}
	if got := r.ImpairOf(0); !got.Out.IsZero() {
		t.Fatalf("ImpairOf after clearing: %+v", got)
	}
	if n := send(3); n != 1 || seqOf(t, <-out.Out) != 3 {
		t.Fatalf("cleared: %d out", n)
	}
	time.Sleep(40 * time.Millisecond)
	send(4)
	var got []int
	for len(out.Out) > 0 {
		got = append(got, seqOf(t, <-out.Out))
	}
	if len(got) != 2 || got[0] != 2 || got[1] != 4 {
		t.Fatalf("after the delay: %v, want the delayed 2 and then 4", got)
	}
	if err := r.SetImpair(2, PortImpair{}); err == nil {
		t.Error("SetImpair of a port the Router lacks: no error")
	}
}

// A link impaired for one family (family=) decides only that family's
// packets; the other's pass at once, as if nothing were set.
func TestImpairOneFamily(t *testing.T) {
	const now = int64(1e9)
	st := &impairState{in: make([]*impair.Impairer, 2), out: []*impair.Impairer{impair.New(impair.MustParse("family=ipv6 loss=100%"), 1, 0), nil}}
	if d := st.decide(1, 0, now, 6, 100); d.Drop != impair.Loss {
		t.Errorf("IPv6 under family=ipv6 loss=100%%: %+v, want lost", d)
	}
	if d := st.decide(1, 0, now, 4, 100); d.Drop != impair.Pass || d.Due != now {
		t.Errorf("IPv4 under family=ipv6 loss=100%%: %+v, want passed at once", d)
	}
	st.in[1] = impair.New(impair.MustParse("family=ipv4 delay=10ms"), 1, 1)
	if d := st.decide(1, 0, now, 4, 100); d.Drop != impair.Pass || d.Due != now+int64(10*time.Millisecond) {
		t.Errorf("IPv4 in under family=ipv4 delay=10ms, out under family=ipv6: %+v, want delayed 10 ms", d)
	}
}
