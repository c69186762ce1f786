// Package forward is gonat's forwarding plane: it owns a NAT's TUN
// devices, reads them in batches (ReadMode says how), runs each packet
// through the nat engine and writes what it forwards, grouped by port.
package forward

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"golang.org/x/sys/unix"
)

// Headroom is left in front of every packet buffer, so a backend that
// needs a header before the packet (virtio-net, 10-12 bytes) writes in
// place.
const Headroom = 16

// bufSize fits the largest IPv4 packet whatever the device MTU.
const bufSize = Headroom + 65535

// Router moves packets between the engine's ports: a reader (Mode says
// which) reads a batch, reads the clock once, translates each packet in
// place and writes the batch on, grouped by destination port. Per-device
// readers are a goroutine per device queue (tun.MultiQueue; one per
// device otherwise), busy-poll one goroutine per Router, and per-CPU
// readers the process's pool (pool.go), shared by every Router.
type Router struct {
	Engine *nat.Engine
	// Ports are the devices by engine Port: Ports[0] is Outside,
	// Ports[i] is inside port i.
	Ports []tun.Device
	// ExpireEvery is how often lapsed mappings are swept (their lookups
	// are exact anyway; this only frees memory and reports EXPIRE).
	// 0: one second.
	ExpireEvery time.Duration
	// Logf, if set, reports device errors.
	Logf func(format string, args ...any)
	// Mode is how the ports are read (ReadMode; its Queues is for whoever
	// makes the devices: the router reads the queues they have). The zero
	// value reads each device queue from a goroutine of its own.
	Mode ReadMode
	// Tap, if set, sees every packet read from the ports and written to
	// them (a pcap capture, traffic counters).
	Tap Tap
	// Impair, by port (nil or shorter: none), impairs the link beyond
	// each port (PortImpair), seeded by ImpairSeed: the same seed and the
	// same packets make the same decisions. Read once, by Run;
	// SetImpair changes it later.
	Impair     []PortImpair
	ImpairSeed uint64

	writeErrors atomic.Uint64
	fragmented  atomic.Uint64
	imp         atomic.Pointer[impairState] // nil: nothing impaired
	impMu       sync.Mutex                  // guards impNow, impQueues and the making of states
	impNow      []PortImpair                // the impairment in force, by port
	impQueues   []*impair.Queue             // the delay queues, once something delayed
	impKick     chan struct{}               // wakes drainLoop; nil with per-CPU readers
	impLock     sync.Mutex                  // every state's mu: guards the queues and impairers
	impairDrops [impair.NumReasons]atomic.Uint64
	links       links
}

// Validate reports what would stop Run at once: too few ports, a Mode
// that ReadMode.Validate refuses, or a port that Mode's readers cannot
// read without waiting. A caller that runs the router in the background
// checks it first, to say so while it can.
func (r *Router) Validate() error {
	_, err := r.pollers(r.queues())
	return err
}

// queues returns every port's queues (one for a device that is not a
// tun.MultiQueue), by port.
func (r *Router) queues() [][]tun.Device {
	qs := make([][]tun.Device, len(r.Ports))
	for i, d := range r.Ports {
		qs[i] = tun.QueuesOf(d)
	}
	return qs
}

// polled is one device (queue) a polling loop reads, and its port.
type polled struct {
	port nat.Port
	dev  tun.Poller
}

// pollers checks the ports and, for readers that poll, returns every
// queue of every port (queues, by port) as a Poller.
func (r *Router) pollers(queues [][]tun.Device) ([]polled, error) {
	if len(r.Ports) < 2 {
		return nil, errors.New("router needs an outside and at least one inside device")
	}
	if err := r.Mode.Validate(tun.BackendAuto); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if !r.Mode.Polled() {
		return nil, nil
	}
	var ps []polled
	for i, qs := range queues {
		for _, q := range qs {
			if !tun.CanPoll(q) {
				return nil, fmt.Errorf("router: %s: port %d (%s) cannot be read without waiting; it needs the offload TUN backend", r.Mode.Readers.name(), i, q.Name())
			}
			ps = append(ps, polled{nat.Port(i), q.(tun.Poller)})
		}
	}
	return ps, nil
}

// closing bounds how many devices the process closes at once. Closing a
// TUN queue waits for the kernel (RCU grace periods, as the device goes);
// closes made together share those waits, so a lab's NATs close in
// parallel, but each close holds an OS thread while it waits: unbounded,
// a lab of 1000 NATs took 1000 threads to go down.
//
// The bound trades threads for time (docs/performance.md, "Scale"): 1000
// NATs on 2 CPUs went down in 1.9-2.1 s with 64 at once and 70-72
// threads, 3.4-3.7 s with 24 and 30-34 threads, 4.6-5.1 s with 16 and
// 10 s with 8. 24 keeps both in the targets (down <= 5 s, threads <=
// 4 x CPUs + 32). A fixed number: the threads going down are the bound
// plus the steady ones (a reader per CPU, Go's Ms), within that target
// on any number of CPUs.
var closing = make(chan struct{}, 24)

// WriteErrors counts packets the kernel refused on write.
func (r *Router) WriteErrors() uint64 { return r.writeErrors.Load() }

// Run pumps until ctx is done or a device fails. It owns the devices from
// then on: it closes them all before it returns, and waits for its
// goroutines, so nothing outlives it.
func (r *Router) Run(ctx context.Context) error {
	queues := r.queues()
	pollers, err := r.pollers(queues)
	if err != nil {
		return err
	}
	if !r.Mode.Polled() || r.Mode.Readers == ReadersBusyPoll {
		// A drain goroutine for delayed packets: impairment may be set
		// at run time (SetImpair), so it runs whatever Impair says.
		r.impMu.Lock()
		r.impKick = make(chan struct{}, 1)
		r.impMu.Unlock()
	}
	r.setupImpair()
	// The busy-poll loop sleeps in poll(2) with no timeout; an eventfd
	// made readable at shutdown wakes it.
	wake := -1
	if r.Mode.Readers == ReadersBusyPoll {
		if wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
			return fmt.Errorf("router: eventfd for the polling loops: %w", err)
		}
		defer unix.Close(wake) // after they are gone: Run waits for them below
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// The first error is the one Run returns; readers that fail with it
	// (a device gone takes all its queues at once) must not block.
	errc := make(chan error, 1)
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				select {
				case errc <- err:
				default:
				}
				cancel()
			}
		}()
	}
	nq := 0
	for _, qs := range queues {
		nq = max(nq, len(qs))
	}
	// Reader q of every port writes to queue q of the others (or the
	// last they have): with equal queue counts, as lab.StartNAT makes
	// them, readers share no device.
	portsOf := func(q int) []tun.Device {
		ds := make([]tun.Device, len(queues))
		for i, qs := range queues {
			ds[i] = qs[min(q, len(qs)-1)]
		}
		return ds
	}
	// A failure of the process's per-CPU readers on one of this Router's
	// devices stops it as a failing reader goroutine does.
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}
	var members []*member
	switch r.Mode.Readers {
	case ReadersPerCPU:
		for q := range nq {
			var devs []polled // queue q of every port that has one (pollers checked them)
			for i, qs := range queues {
				if q < len(qs) {
					devs = append(devs, polled{nat.Port(i), qs[q].(tun.Poller)})
				}
			}
			m, err := pool.register(q, r, devs, portsOf(q), fail)
			if err != nil {
				fail(err)
				break
			}
			members = append(members, m)
		}
	case ReadersBusyPoll:
		run(func() error { return r.pollLoop(ctx, pollers, portsOf(0), r.Mode.Quiet, wake) })
	default:
		for q := range nq {
			ports := portsOf(q)
			for i, qs := range queues {
				if q < len(qs) {
					run(func() error { return r.pump(ctx, nat.Port(i), ports) })
				}
			}
		}
	}
	if r.impKick != nil {
		run(func() error { return r.drainLoop(ctx, portsOf(0)) })
	}
	every := r.ExpireEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-t.C:
			r.Engine.Expire(now)
		}
	}
	// The polling readers must be done with the devices (and the fds
	// they poll) before these are closed: the pool lets go of them in
	// unregister; the busy-poll loop, asleep, sees ctx only once woken.
	for _, m := range members {
		pool.unregister(m)
	}
	if wake >= 0 {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(wake, one[:]) // stays readable: every loop wakes, now or at its next wait
		wg.Wait()
	}
	// Readers blocked in Read return once their device is closed.
	for _, d := range r.Ports {
		closing <- struct{}{}
		d.Close()
		<-closing
	}
	wg.Wait()
	select {
	case err = <-errc:
	default:
	}
	return err
}

// pumper is one reader's state: its buffers and the queues of the batch
// it is translating. The per-device pumps have one each, the busy-poll
// loop one for all the devices it reads, and the pool's readers one per
// Router, whose batch buffers they share (one batch at a time runs on a
// reader's thread).
type pumper struct {
	r          *Router
	q          *nat.Queue   // this reader's way into the engine
	ports      []tun.Device // by port: the device (queue) this reader writes to
	vhdr, uso  []bool       // by port: carries a virtio-net header; takes UDP super-packets
	bufs       [][]byte
	sizes      []int
	views      [][]byte // the packets of a batch, for Prefetch
	reply      []byte
	replyBatch [][]byte
	held       []byte
	heldBatch  [][]byte
	out        [][][]byte // by port: packets to write at the end of the batch
	h          offload.VirtioHdr
	seg        *offload.Segmenter // for super-packets bound for a device without offloads
	frag       fragmenter         // for datagrams bound for a smaller link (fragment.go)
	due        [][]byte           // delayed packets being written (impair.go drain)
	dueSlots   []int              // their slots in the delay queue
}

// newScratch allocates the batch buffers of a pumper for batches of up
// to bs packets.
func newScratch(bs int) *pumper {
	p := &pumper{
		bufs:       make([][]byte, bs),
		sizes:      make([]int, bs),
		views:      make([][]byte, bs),
		reply:      make([]byte, Headroom+1500),
		replyBatch: [][]byte{nil},
		held:       make([]byte, Headroom+nat.HeldMaxSize),
		heldBatch:  [][]byte{nil},
	}
	for i := range p.bufs {
		p.bufs[i] = make([]byte, bufSize)
	}
	return p
}

// newPumper sizes a pumper for batches of up to bs packets, once. Its
// batch buffers are scratch's (newScratch, for as many packets), or its
// own if scratch is nil.
func (r *Router) newPumper(bs int, ports []tun.Device, scratch *pumper) *pumper {
	if scratch == nil {
		scratch = newScratch(bs)
	}
	p := &pumper{
		r:          r,
		q:          r.Engine.NewQueue(),
		ports:      ports,
		vhdr:       make([]bool, len(r.Ports)),
		uso:        make([]bool, len(r.Ports)),
		bufs:       scratch.bufs,
		sizes:      scratch.sizes,
		views:      scratch.views,
		reply:      scratch.reply,
		replyBatch: scratch.replyBatch,
		held:       scratch.held,
		heldBatch:  scratch.heldBatch,
		out:        make([][][]byte, len(r.Ports)),
		due:        make([][]byte, 0, drainBatch),
		dueSlots:   make([]int, 0, drainBatch),
	}
	// Devices with offloads (tun.VirtioDevice) carry a virtio-net header
	// in the headroom, just before the packet. Asked of the queues this
	// reader uses (a device's queues are alike).
	for i, d := range ports {
		p.vhdr[i] = tun.HasVirtioHdr(d)
		if v, ok := d.(tun.VirtioDevice); ok && p.vhdr[i] {
			p.uso[i] = v.USO()
		}
	}
	for i := range p.out {
		p.out[i] = make([][]byte, 0, bs)
	}
	return p
}

// pump reads port in's queue ports[in] and translates what it reads.
func (r *Router) pump(ctx context.Context, in nat.Port, ports []tun.Device) error {
	dev := ports[in]
	p := r.newPumper(dev.BatchSize(), ports, nil)
	for {
		n, err := dev.Read(p.bufs, p.sizes, Headroom)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, tun.ErrClosed) {
				return nil
			}
			return err
		}
		p.batch(in, n, time.Now())
	}
}

// pollLoop reads devs (ReadersBusyPoll: every queue of every port) from
// one goroutine, trying each without waiting and translating what it
// gets. It yields the processor between empty rounds and sleeps in
// poll(2) only once the devices have been quiet for spin; with spin 0 it
// would sleep after the first empty round.
func (r *Router) pollLoop(ctx context.Context, devs []polled, ports []tun.Device, spin time.Duration, wake int) error {
	bs := 0
	ws := make([]tun.Poller, len(devs))
	for i, d := range devs {
		bs = max(bs, d.dev.BatchSize())
		ws[i] = d.dev
	}
	p := r.newPumper(bs, ports, nil)
	w := tun.NewWaiter(ws, wake)
	done := ctx.Done()
	last := time.Now() // of the last packet
	for empty := 0; ; {
		got := false
		for _, pd := range devs {
			d := pd.dev
			n, err := d.TryRead(p.bufs[:d.BatchSize()], p.sizes, Headroom)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, tun.ErrClosed) {
					return nil
				}
				return err
			}
			if n > 0 {
				got = true
				last = time.Now()
				p.batch(pd.port, n, last)
			}
		}
		// ctx every round, busy or not: Run waits for this loop before
		// it closes the devices, so nothing else can stop it.
		select {
		case <-done:
			return nil
		default:
		}
		if got {
			empty = 0
			continue
		}
		// Look at the clock every 64 empty rounds, not each.
		if empty++; spin > 0 && empty%64 != 0 {
			runtime.Gosched()
			continue
		}
		if time.Since(last) < spin {
			runtime.Gosched()
			continue
		}
		ready, err := w.Wait(-1)
		if err != nil {
			return fmt.Errorf("polling the devices: wait: %w", err)
		}
		if ready {
			last = time.Now() // traffic again: spin before the next sleep
		}
	}
}

// send writes q (buffers with their packet at Headroom) to port to's
// device, past the Tap, as UDP super-packets where the device takes
// them.
func (p *pumper) send(to nat.Port, q [][]byte) {
	if len(q) == 0 || p.r.linkDropped(to, len(q)) {
		return
	}
	if p.r.Tap != nil {
		for _, b := range q {
			p.tap(to, ToDevice, b)
		}
	}
	if p.uso[to] && len(q) > 1 {
		q = offload.CoalesceUDP(q, Headroom)
	}
	p.r.write(p.ports[to], q)
}

// flush sends what the batch queued for port to.
func (p *pumper) flush(to nat.Port) {
	p.send(to, p.out[to])
	p.out[to] = p.out[to][:0]
}

// batch translates the n packets just read from port in (in p.bufs) and
// writes them on, grouped by destination port; now is read once per
// batch.
func (p *pumper) batch(in nat.Port, n int, now time.Time) {
	r := p.r
	if r.linkDropped(in, n) {
		return // the packets never reached the NAT
	}
	vin := p.vhdr[in]
	bufs, sizes, h := p.bufs, p.sizes, &p.h
	const hdrAt = Headroom - offload.VirtioHdrLen
	// Impairment: delayed packets now due go first, ahead of this batch.
	st := r.imp.Load()
	var mono int64
	if st != nil {
		mono = monoNow()
		p.drain(st, mono)
	}
	for i := range n {
		p.views[i] = bufs[i][Headroom : Headroom+sizes[i]]
		if r.Tap != nil {
			p.tap(in, FromDevice, bufs[i][:Headroom+sizes[i]])
		}
	}
	p.q.Prefetch(in, p.views[:n])
	for i := 0; i < n; i++ {
		pkt := bufs[i][Headroom : Headroom+sizes[i]]
		var res nat.Result
		if vin {
			h.Decode(bufs[i][hdrAt:Headroom])
			res = p.q.ProcessVirtio(in, pkt, h, p.reply[Headroom:], now)
		} else {
			res = p.q.Process(in, pkt, p.reply[Headroom:], now)
		}
		if res.Verdict == nat.Forward {
			if res.Len > 0 {
				// NAT64 changed the header's size; the packet still
				// starts at Headroom.
				sizes[i] = res.Len
				pkt = bufs[i][Headroom : Headroom+res.Len]
			}
			to := res.Out
			impaired := st != nil && st.applies(in, to, pkt[0]>>4)
			switch {
			case vin && h.IsGSO() && (impaired || !p.vhdr[to]) && header.IPv4(pkt).Version() != 4:
				// An IPv6 super-packet (routed and NPTv6 pass them on
				// whole) to be cut in software: the segmenter cuts IPv4
				// only. Lost, and counted so.
				r.writeErrors.Add(1)
				continue
			case res.FragMTU > 0:
				// Larger than the link it leaves by, DF clear: cut.
				p.sendCut(st, in, to, pkt, vin, h, int(res.FragMTU), mono)
				continue
			case vin && h.IsGSO() && (impaired || !p.vhdr[to]):
				// Cut in software for a device without offloads, and
				// for an impaired link, whose decisions are per packet
				// on the wire. Segments follow what is queued for that
				// port.
				if p.seg == nil {
					p.seg = offload.NewSegmenter(64, r.maxMTU(), Headroom)
				}
				p.flush(to)
				for k, nseg := 0, h.Segments(pkt); k < nseg; {
					q, next, lost := p.seg.Split(pkt, h, k)
					r.writeErrors.Add(uint64(lost))
					if impaired {
						q = p.impairSegments(st, in, to, q, mono)
					}
					p.send(to, q)
					k = next
				}
				continue
			case p.vhdr[to] && vin:
				h.Encode(bufs[i][hdrAt:Headroom]) // ProcessVirtio may have changed it
			case p.vhdr[to]:
				clear(bufs[i][hdrAt:Headroom]) // a plain packet
			case vin && h.NeedsCsum():
				offload.FinishCsum(pkt)
			}
			if impaired && !p.impair(st, in, to, bufs[i][:Headroom+sizes[i]], mono) {
				continue
			}
			p.out[to] = append(p.out[to], bufs[i][:Headroom+sizes[i]])
		}
		if res.ReplyLen > 0 {
			if vin {
				clear(p.reply[hdrAt:Headroom])
			}
			p.replyBatch[0] = p.reply[:Headroom+res.ReplyLen]
			p.send(in, p.replyBatch)
		}
	}
	for to := range p.out {
		p.flush(nat.Port(to))
	}
	if st != nil {
		p.drain(st, mono) // duplicates, due with their packets
	}
	// Fragments that waited for their first fragment, which has just
	// gone out with this batch.
	for r.Engine.HeldReady() {
		n, to, ok := r.Engine.NextHeld(p.held[Headroom:])
		if !ok {
			break
		}
		clear(p.held[:Headroom]) // a plain packet for devices with a virtio header
		p.heldBatch[0] = p.held[:Headroom+n]
		p.send(to, p.heldBatch)
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
