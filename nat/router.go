package nat

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonat/gonat/tun"
)

// Headroom is left in front of every packet buffer, so a backend that
// needs a header before the packet (virtio-net, 10-12 bytes) writes in
// place.
const Headroom = 16

// bufSize fits the largest IPv4 packet whatever the device MTU.
const bufSize = Headroom + 65535

// Router moves packets between the engine's ports: one goroutine per
// device reads a batch, reads the clock once, translates each packet in
// place and writes the batch on, grouped by destination port.
type Router struct {
	Engine *Engine
	// Ports are the devices by engine Port: Ports[0] is Outside,
	// Ports[i] is inside port i.
	Ports []tun.Device
	// ExpireEvery is how often lapsed mappings are swept (their lookups
	// are exact anyway; this only frees memory and reports EXPIRE).
	// 0: one second.
	ExpireEvery time.Duration
	// Logf, if set, reports device errors.
	Logf func(format string, args ...any)

	writeErrors atomic.Uint64
}

// WriteErrors counts packets the kernel refused on write.
func (r *Router) WriteErrors() uint64 { return r.writeErrors.Load() }

// Run pumps until ctx is done or a device fails. It owns the devices from
// then on: it closes them all before it returns, and waits for its
// goroutines, so nothing outlives it.
func (r *Router) Run(ctx context.Context) error {
	if len(r.Ports) < 2 {
		return errors.New("router needs an outside and at least one inside device")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(r.Ports))
	for i := range r.Ports {
		wg.Add(1)
		go func(in Port) {
			defer wg.Done()
			if err := r.pump(ctx, in); err != nil {
				errc <- err
				cancel()
			}
		}(Port(i))
	}
	every := r.ExpireEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-t.C:
			r.Engine.Expire(now)
		}
	}
	// Readers blocked in Read return once their device is closed.
	for _, d := range r.Ports {
		d.Close()
	}
	wg.Wait()
	select {
	case err = <-errc:
	default:
	}
	return err
}

func (r *Router) pump(ctx context.Context, in Port) error {
	dev := r.Ports[in]
	bs := dev.BatchSize()
	bufs := make([][]byte, bs)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, bs)
	reply := make([]byte, Headroom+1500)
	replyBatch := [][]byte{nil}
	out := make([][][]byte, len(r.Ports))
	for i := range out {
		out[i] = make([][]byte, 0, bs)
	}
	for {
		n, err := dev.Read(bufs, sizes, Headroom)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, tun.ErrClosed) {
				return nil
			}
			return err
		}
		now := time.Now()
		for i := 0; i < n; i++ {
			pkt := bufs[i][Headroom : Headroom+sizes[i]]
			res := r.Engine.Process(in, pkt, reply[Headroom:], now)
			if res.Verdict == Forward {
				out[res.Out] = append(out[res.Out], bufs[i][:Headroom+sizes[i]])
			}
			if res.ReplyLen > 0 {
				replyBatch[0] = reply[:Headroom+res.ReplyLen]
				r.write(dev, replyBatch)
			}
		}
		for p, q := range out {
			if len(q) > 0 {
				r.write(r.Ports[p], q)
				out[p] = q[:0]
			}
		}
	}
}

func (r *Router) write(dev tun.Device, q [][]byte) {
	n, err := dev.Write(q, Headroom)
	if err != nil {
		r.writeErrors.Add(uint64(len(q) - n))
		if r.Logf != nil && !errors.Is(err, tun.ErrClosed) {
			r.Logf("write %s: %v", dev.Name(), err)
		}
	}
}
