package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun"
	"golang.org/x/sys/unix"
)

// The per-CPU readers (ReadersPerCPU) of every Router in the process are
// one pool: for each CPU queue q, one thread pinned to CPU q waits in
// epoll_wait(2) on queue q of every port of every Router registered with
// it and reads the queues that are ready. Reader threads are as many as
// CPUs however many NATs the process runs. A Router registers its queues
// when Run starts and unregisters them before it closes its devices;
// once unregister returns, the reader never touches them again. The
// threads end when the last Router has unregistered.

// pool is the process's reader pool.
var pool readerPool

type readerPool struct {
	mu      sync.Mutex
	readers []*poolReader // by queue; nil until a Router has that queue
	members int           // registered, over all readers
}

// poolReader is the reader of queue q: its thread, its epoll set and
// what the set's events lead to.
type poolReader struct {
	q    int
	epfd int
	wake int // an eventfd in the set: readable, it ends the thread
	// timer is a timerfd in the set, armed for the earliest delayed
	// packet of the members that impair (timed); armed is its setting,
	// 0 when disarmed.
	timer  int
	armed  int64
	done   chan struct{}
	events []unix.EpollEvent

	// mu is held by the thread while it handles what one epoll_wait
	// returned, and by register and unregister while they change the set.
	mu      sync.Mutex
	slots   []poolSlot // by the index each device's events carry
	timed   []*member  // every member: its Router may delay packets (SetImpair)
	free    []int32
	scratch *pumper // batch buffers, shared by every member's pumper: one batch at a time runs here
}

// poolSlot is one registered device. An event carries its slot's index
// and generation: an event for a device unregistered since epoll_wait
// returned finds another generation and is ignored.
type poolSlot struct {
	gen  int32
	m    *member // nil: free
	port nat.Port
	dev  tun.Poller
}

// member is one Router's queue q in the reader of q.
type member struct {
	rd    *poolReader
	p     *pumper
	slots []int32 // nil once dropped
	// fail reports a read error; the Router stops with it. Called on
	// the reader's thread: it must not block.
	fail func(error)
}

// wakeSlot marks the wake-up eventfd's events, timerSlot the timerfd's.
const (
	wakeSlot  = -1
	timerSlot = -2
)

// register adds devs (queue q of each port; ports is the queue q of each
// port this member writes to) to the reader of queue q, starting it if
// need be.
func (pl *readerPool) register(q int, r *Router, devs []polled, ports []tun.Device, fail func(error)) (*member, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	rd, err := pl.reader(q)
	if err != nil {
		return nil, err
	}
	bs := 0
	for _, d := range devs {
		bs = max(bs, d.dev.BatchSize())
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.scratch == nil || len(rd.scratch.bufs) < bs {
		rd.scratch = newScratch(bs)
	}
	m := &member{rd: rd, p: r.newPumper(bs, ports, rd.scratch), fail: fail}
	for _, d := range devs {
		i := rd.alloc(m, d)
		m.slots = append(m.slots, i)
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: i, Pad: rd.slots[i].gen}
		if err := unix.EpollCtl(rd.epfd, unix.EPOLL_CTL_ADD, d.dev.PollFd(), &ev); err != nil {
			m.slots = m.slots[:len(m.slots)-1]
			rd.release(i)
			rd.drop(m)
			if pl.members == 0 {
				pl.stop()
			}
			return nil, fmt.Errorf("per-CPU readers: adding %s (queue %d) to the epoll set: %w", d.dev.Name(), q, err)
		}
	}
	// Every member is timed: impairment that delays may be set at run
	// time (Router.SetImpair); one that delays nothing costs a load.
	rd.timed = append(rd.timed, m)
	pl.members++
	return m, nil
}

// unregister removes m's devices from its reader: when it returns, the
// reader is not reading them and never will.
func (pl *readerPool) unregister(m *member) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	m.rd.mu.Lock()
	m.rd.drop(m)
	m.rd.mu.Unlock()
	if pl.members--; pl.members == 0 {
		pl.stop()
	}
}

// registered is how many members the readers hold, and how many reader
// threads run.
func (pl *readerPool) registered() (members, readers int) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, rd := range pl.readers {
		if rd != nil {
			readers++
		}
	}
	return pl.members, readers
}

// reader returns the reader of queue q, started if it was not.
func (pl *readerPool) reader(q int) (*poolReader, error) {
	for len(pl.readers) <= q {
		pl.readers = append(pl.readers, nil)
	}
	if rd := pl.readers[q]; rd != nil {
		return rd, nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("per-CPU readers: epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("per-CPU readers: eventfd: %w", err)
	}
	timer, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("per-CPU readers: timerfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev)
	if err == nil {
		ev.Fd = timerSlot
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, timer, &ev)
	}
	if err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		unix.Close(timer)
		return nil, fmt.Errorf("per-CPU readers: epoll_ctl: %w", err)
	}
	rd := &poolReader{q: q, epfd: epfd, wake: wake, timer: timer, done: make(chan struct{}), events: make([]unix.EpollEvent, 64)}
	allowed := allowedCPUs()
	go rd.run(allowed)
	pl.readers[q] = rd
	return rd, nil
}

// stop ends every reader thread and waits for them; members must be 0.
func (pl *readerPool) stop() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	for _, rd := range pl.readers {
		if rd == nil {
			continue
		}
		unix.Write(rd.wake, one[:])
		<-rd.done
		unix.Close(rd.epfd)
		unix.Close(rd.wake)
		unix.Close(rd.timer)
	}
	pl.readers = nil
}

// alloc takes a free slot for device d of m.
func (rd *poolReader) alloc(m *member, d polled) int32 {
	var i int32
	if n := len(rd.free); n > 0 {
		i, rd.free = rd.free[n-1], rd.free[:n-1]
	} else {
		i = int32(len(rd.slots))
		rd.slots = append(rd.slots, poolSlot{})
	}
	s := &rd.slots[i]
	s.m, s.port, s.dev = m, d.port, d.dev
	return i
}

// release frees slot i; events still carrying its old generation are
// ignored.
func (rd *poolReader) release(i int32) {
	s := &rd.slots[i]
	s.gen++
	s.m, s.dev = nil, nil
	rd.free = append(rd.free, i)
}

// drop takes m's devices out of the epoll set, before anyone may close
// them, and frees their slots. rd.mu is held.
func (rd *poolReader) drop(m *member) {
	for _, i := range m.slots {
		unix.EpollCtl(rd.epfd, unix.EPOLL_CTL_DEL, rd.slots[i].dev.PollFd(), nil)
		rd.release(i)
	}
	m.slots = nil
	for i, t := range rd.timed {
		if t == m {
			rd.timed = append(rd.timed[:i], rd.timed[i+1:]...)
			break
		}
	}
}

// run is the reader's thread: pinned to CPU q, it waits for any device of
// its set to have packets and reads one batch from each that has.
// Level-triggered, a device with more is reported again at once.
func (rd *poolReader) run(allowed *unix.CPUSet) {
	defer close(rd.done)
	pinThread(rd.q, allowed)
	for {
		rd.mu.Lock()
		rd.arm()
		rd.mu.Unlock()
		n, err := unix.EpollWait(rd.epfd, rd.events, -1)
		if err == unix.EINTR {
			continue
		}
		rd.mu.Lock()
		if err != nil {
			// Not expected with a valid set: every Router reading
			// here stops, with the reason.
			err = fmt.Errorf("per-CPU readers: epoll_wait: %w", err)
			for i := range rd.slots {
				if m := rd.slots[i].m; m != nil {
					rd.drop(m)
					m.fail(err)
				}
			}
			rd.mu.Unlock()
			// Wait to be stopped: the Routers unregister as they go.
			w := []unix.PollFd{{Fd: int32(rd.wake), Events: unix.POLLIN}}
			for {
				if _, err := unix.Poll(w, -1); err != unix.EINTR {
					return
				}
			}
		}
		stop := false
		for _, ev := range rd.events[:n] {
			if ev.Fd == wakeSlot {
				stop = true
				continue
			}
			if ev.Fd == timerSlot {
				var b [8]byte
				unix.Read(rd.timer, b[:])
				rd.armed = 0
				continue
			}
			if s := &rd.slots[ev.Fd]; s.m != nil && s.gen == ev.Pad {
				rd.read(s)
			}
		}
		if len(rd.timed) > 0 {
			now := monoNow()
			for _, m := range rd.timed {
				m.p.drain(m.p.r.imp.Load(), now)
			}
		}
		rd.mu.Unlock()
		if stop {
			return
		}
	}
}

// read reads one batch from slot s's device and translates it. A read
// error other than the device being closed stops the device's Router;
// either way the reader stops reading that Router's devices.
func (rd *poolReader) read(s *poolSlot) {
	m, d := s.m, s.dev
	k, err := d.TryRead(m.p.bufs[:d.BatchSize()], m.p.sizes, Headroom)
	if err != nil {
		rd.drop(m)
		if !errors.Is(err, tun.ErrClosed) {
			m.fail(err)
		}
		return
	}
	if k > 0 {
		m.p.batch(s.port, k, time.Now())
	}
}

// arm sets the timer for the earliest delayed packet of the timed
// members, or disarms it when none waits; rd.mu is held.
func (rd *poolReader) arm() {
	var due int64
	for _, m := range rd.timed {
		if d, ok := m.p.r.imp.Load().next(); ok && (due == 0 || d < due) {
			due = max(d, 1)
		}
	}
	if due == rd.armed {
		return
	}
	rd.armed = due
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(due)} // zero disarms
	unix.TimerfdSettime(rd.timer, unix.TFD_TIMER_ABSTIME, &spec, nil)
}
