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
	// Devices with offloads (tun.VirtioDevice) carry a virtio-net header
	// in the headroom, just before the packet.
	vin := tun.HasVirtioHdr(dev)
	vout := make([]bool, len(r.Ports))
	uso := make([]bool, len(r.Ports)) // takes UDP super-packets: coalesce datagrams
	for i, d := range r.Ports {
		vout[i] = tun.HasVirtioHdr(d)
		if v, ok := d.(tun.VirtioDevice); ok && vout[i] {
			uso[i] = v.USO()
		}
	}
	bs := dev.BatchSize()
	bufs := make([][]byte, bs)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, bs)
	views := make([][]byte, bs) // the packets of a batch, for Prefetch
	reply := make([]byte, Headroom+1500)
	replyBatch := [][]byte{nil}
	held := make([]byte, Headroom+heldMaxSize)
	heldBatch := [][]byte{nil}
	out := make([][][]byte, len(r.Ports))
	for i := range out {
		out[i] = make([][]byte, 0, bs)
	}
	flush := func(p int) {
		q := out[p]
		if uso[p] && len(q) > 1 {
			q = coalesceUDP(q, Headroom)
		}
		r.write(r.Ports[p], q)
		out[p] = out[p][:0]
	}
	var (
		h   tun.VirtioHdr
		seg *segmenter // for super-packets bound for a device without offloads
	)
	const hdrAt = Headroom - tun.VirtioHdrLen
	for {
		n, err := dev.Read(bufs, sizes, Headroom)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, tun.ErrClosed) {
				return nil
			}
			return err
		}
		now := time.Now()
		for i := range n {
			views[i] = bufs[i][Headroom : Headroom+sizes[i]]
		}
		r.Engine.Prefetch(in, views[:n])
		for i := 0; i < n; i++ {
			pkt := bufs[i][Headroom : Headroom+sizes[i]]
			var res Result
			if vin {
				h.Decode(bufs[i][hdrAt:Headroom])
				res = r.Engine.ProcessVirtio(in, pkt, &h, reply[Headroom:], now)
			} else {
				res = r.Engine.Process(in, pkt, reply[Headroom:], now)
			}
			if res.Verdict == Forward {
				to := res.Out
				switch {
				case vout[to] && vin:
					h.Encode(bufs[i][hdrAt:Headroom]) // ProcessVirtio may have changed it
				case vout[to]:
					clear(bufs[i][hdrAt:Headroom]) // a plain packet
				case vin && h.IsGSO():
					// Segments follow what is queued for that port.
					if seg == nil {
						seg = newSegmenter(64, r.maxMTU(), Headroom)
					}
					flush(int(to))
					for k, nseg := 0, numSegments(pkt, &h); k < nseg; {
						q, next, lost := seg.split(pkt, &h, k)
						r.writeErrors.Add(uint64(lost))
						r.write(r.Ports[to], q)
						k = next
					}
					continue
				case vin && h.NeedsCsum():
					finishCsum(pkt)
				}
				out[to] = append(out[to], bufs[i][:Headroom+sizes[i]])
			}
			if res.ReplyLen > 0 {
				if vin {
					clear(reply[hdrAt:Headroom])
				}
				replyBatch[0] = reply[:Headroom+res.ReplyLen]
				r.write(dev, replyBatch)
			}
		}
		for p := range out {
			flush(p)
		}
		// Fragments that waited for their first fragment, which has
		// just gone out with this batch.
		for r.Engine.HeldReady() {
			n, to, ok := r.Engine.NextHeld(held[Headroom:])
			if !ok {
				break
			}
			clear(held[:Headroom]) // a plain packet for devices with a virtio header
			heldBatch[0] = held[:Headroom+n]
			r.write(r.Ports[to], heldBatch)
		}
	}
}

// maxMTU is the largest MTU among the ports, at least the default: the
// largest segment a super-packet is cut into.
func (r *Router) maxMTU() int {
	m := tun.DefaultMTU
	for _, d := range r.Ports {
		m = max(m, d.MTU())
	}
	return m
}

func (r *Router) write(dev tun.Device, q [][]byte) {
	if len(q) == 0 {
		return
	}
	n, err := dev.Write(q, Headroom)
	if err != nil {
		r.writeErrors.Add(uint64(len(q) - n))
		if r.Logf != nil && !errors.Is(err, tun.ErrClosed) {
			r.Logf("write %s: %v", dev.Name(), err)
		}
	}
}
