//go:build linux

package forward

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/tuntest"
)

// pipeDevice is a tun.Poller readable when its pipe holds a byte (the
// test writes one), with nothing to read: it counts the reads tried.
type pipeDevice struct {
	*tuntest.Channel
	r, w  int
	tries atomic.Int64
}

func newPipeDevice(t *testing.T, name string) *pipeDevice {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(p[0]); syscall.Close(p[1]) })
	return &pipeDevice{Channel: tuntest.NewChannel(name), r: p[0], w: p[1]}
}

func (d *pipeDevice) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.tries.Add(1)
	return 0, nil
}

func (d *pipeDevice) PollFd() int { return d.r }

// pooledRouter is a per-CPU Router with two ports of two queues each,
// running until stop is called.
type pooledRouter struct {
	queues []*pipeDevice
	stop   func()
}

func startPooled(t *testing.T) *pooledRouter {
	t.Helper()
	pr := &pooledRouter{}
	var ports []tun.Device
	for _, name := range []string{"out", "in"} {
		a, b := newPipeDevice(t, name+"0"), newPipeDevice(t, name+"1")
		pr.queues = append(pr.queues, a, b)
		ports = append(ports, tuntest.NewQueueSet(a, b))
	}
	r := &Router{Engine: newEngine(t, "full-cone", hostA), Ports: ports, Mode: ReadMode{Readers: ReadersPerCPU}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	pr.stop = func() { cancelAndWait(t, cancel, done, "a pooled router") }
	return pr
}

// waitRegistered waits until the pool holds members members and readers
// reader threads.
func waitRegistered(t *testing.T, members, readers int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, r := pool.registered()
		if m == members && r == readers {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool holds %d members on %d readers, want %d on %d", m, r, members, readers)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func threads(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Routers read per CPU share the process's readers: a second and a third
// add members, not threads; closing one takes its queues out of the
// epoll sets before its devices close (a byte made readable after that
// is never read); the last one out ends the reader threads.
func TestPoolSharedByRouters(t *testing.T) {
	waitRegistered(t, 0, 0)
	first := startPooled(t)
	waitRegistered(t, 2, 2) // queue 0 and 1 of router 1, a reader each
	time.Sleep(50 * time.Millisecond)
	base := threads(t)
	second, third := startPooled(t), startPooled(t)
	waitRegistered(t, 6, 2)
	time.Sleep(50 * time.Millisecond)
	// Two NATs more read per CPU used to bring two pinned threads each.
	if n := threads(t); n > base+1 {
		t.Errorf("%d threads with three routers, %d with one: the readers are not shared", n, base)
	}

	// A device of the second router becomes readable: read (level
	// triggered, at least once).
	d := second.queues[1]
	syscall.Write(d.w, []byte{1})
	deadline := time.Now().Add(5 * time.Second)
	for d.tries.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a readable queue was never read")
		}
		time.Sleep(time.Millisecond)
	}
	second.stop()
	waitRegistered(t, 4, 2)
	after := d.tries.Load()
	for _, q := range second.queues {
		syscall.Write(q.w, []byte{1})
	}
	time.Sleep(100 * time.Millisecond)
	if n := d.tries.Load(); n != after {
		t.Errorf("%d reads tried on a closed router's queue", n-after)
	}
	for _, q := range second.queues {
		if n := q.tries.Load(); q != d && n != 0 {
			t.Errorf("%s: %d reads tried after its router closed", q.Name(), n)
		}
	}

	first.stop()
	third.stop()
	waitRegistered(t, 0, 0)
}

// A pool reader's read of a ready queue, translation and write included,
// allocates nothing once the mapping exists.
func TestPoolReadAllocs(t *testing.T) {
	e := newEngine(t, "full-cone", hostA)
	out := newFloodDevice(t, "out0", udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "back"))
	in := newFloodDevice(t, "in0", udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "req"))
	r := &Router{Engine: e, Ports: []tun.Device{out, in}}
	bs := max(in.BatchSize(), out.BatchSize())
	rd := &poolReader{}
	m := &member{rd: rd, p: r.newPumper(bs, r.Ports, newScratch(bs)), fail: func(err error) { t.Error(err) }}
	fromIn, fromOut := rd.alloc(m, polled{1, in}), rd.alloc(m, polled{0, out})
	m.slots = []int32{fromIn, fromOut}
	both := func() {
		rd.read(&rd.slots[fromIn])
		rd.read(&rd.slots[fromOut])
	}
	both() // the mapping
	if n := testing.AllocsPerRun(1000, both); n != 0 {
		t.Errorf("%.1f allocations per read of each port", n)
	}
	if out.written.Load() < 1000 || in.written.Load() < 1000 {
		t.Errorf("written: %d out, %d in; want every packet through", out.written.Load(), in.written.Load())
	}
}
