//go:build linux

package forward

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/tuntest"
)

// floodDevice is a tun.Poller that always has a packet: what a busy-poll
// loop sees under unending traffic. Writes are counted and dropped.
type floodDevice struct {
	*tuntest.Channel
	pkt     []byte
	fd      int // a pipe's read end: valid for poll(2), never readable
	written atomic.Int64
}

func newFloodDevice(t *testing.T, name string, pkt []byte) *floodDevice {
	return &floodDevice{Channel: tuntest.NewChannel(name), pkt: pkt, fd: neverReadable(t)}
}

// neverReadable is a pipe's read end, closed with the test: valid for
// poll(2), never readable.
func neverReadable(t *testing.T) int {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(p[0]); syscall.Close(p[1]) })
	return p[0]
}

// cancelAndWait ends Run's context and wants Run (reporting on done)
// back without error within 5 s; what says what was going on.
func cancelAndWait(t *testing.T, cancel context.CancelFunc, done <-chan error, what string) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Run still going 5 s after its context ended, %s", what)
	}
}

func (d *floodDevice) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	sizes[0] = copy(bufs[0][offset:], d.pkt)
	return 1, nil
}

func (d *floodDevice) PollFd() int { return d.fd }

func (d *floodDevice) Write(bufs [][]byte, offset int) (int, error) {
	d.written.Add(int64(len(bufs)))
	return len(bufs), nil
}

// Run must return soon after ctx ends even while packets never stop
// coming: the busy-poll loop is the one thing that can end itself.
func TestBusyPollStopsUnderTraffic(t *testing.T) {
	e := newEngine(t, "full-cone")
	out := newFloodDevice(t, "out0", nil)
	in := newFloodDevice(t, "in0", udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "flood"))
	out.pkt = udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "back") // answers the mapping in's packets make
	r := &Router{Engine: e, Ports: []tun.Device{out, in}, Mode: ReadMode{Readers: ReadersBusyPoll, Quiet: time.Second}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for out.written.Load() < 100 || in.written.Load() < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("no traffic through the busy-poll loop: %d out, %d in", out.written.Load(), in.written.Load())
		}
		time.Sleep(time.Millisecond)
	}
	cancelAndWait(t, cancel, done, "with traffic flowing")
}

// idleDevice is a tun.Poller that never has a packet: a polling loop
// over it sleeps in poll(2) for good.
type idleDevice struct {
	*tuntest.Channel
	fd int // a pipe's read end: valid for poll(2), never readable
}

func newIdleDevice(t *testing.T, name string) *idleDevice {
	return &idleDevice{Channel: tuntest.NewChannel(name), fd: neverReadable(t)}
}

func (d *idleDevice) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) { return 0, nil }
func (d *idleDevice) PollFd() int                                                 { return d.fd }

// Polling loops asleep with nothing to read (poll(2) without a timeout)
// are woken when Run's context ends, busy-poll and per-CPU alike: Run
// returns at once rather than never.
func TestPollLoopsWakeAtShutdown(t *testing.T) {
	for _, r := range []*Router{{Mode: ReadMode{Readers: ReadersBusyPoll, Quiet: time.Millisecond}}, {Mode: ReadMode{Readers: ReadersPerCPU}}} {
		r.Engine = newEngine(t, "full-cone")
		r.Ports = []tun.Device{newIdleDevice(t, "out0"), newIdleDevice(t, "in0")}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(100 * time.Millisecond) // past the quiet time: asleep
		cancelAndWait(t, cancel, done, fmt.Sprintf("idle, %v readers", r.Mode.Readers))
	}
}
