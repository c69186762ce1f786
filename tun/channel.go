package tun

import (
	"sync"
)

// ChannelDevice is an in-memory Device for unit tests: packets sent on In
// are what the engine reads; packets the engine writes arrive on Out.
type ChannelDevice struct {
	In   chan []byte
	Out  chan []byte
	name string
	mtu  int

	closeOnce sync.Once
	done      chan struct{}
}

var _ Device = (*ChannelDevice)(nil)

// NewChannel returns a ChannelDevice with buffered channels.
func NewChannel(name string) *ChannelDevice {
	return &ChannelDevice{
		In:   make(chan []byte, 1024),
		Out:  make(chan []byte, 1024),
		name: name,
		mtu:  DefaultMTU,
		done: make(chan struct{}),
	}
}

// Read implements Device. It waits for one packet, then takes whatever
// else is already queued, up to the batch.
func (d *ChannelDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-d.done:
		return 0, ErrClosed
	case p := <-d.In:
		sizes[0] = copy(bufs[0][offset:], p)
	}
	n := 1
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

// Write implements Device; each packet is copied.
func (d *ChannelDevice) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		p := append([]byte(nil), b[offset:]...)
		select {
		case <-d.done:
			return i, ErrClosed
		case d.Out <- p:
		}
	}
	return len(bufs), nil
}

// BatchSize implements Device.
func (d *ChannelDevice) BatchSize() int { return 16 }

// MTU implements Device.
func (d *ChannelDevice) MTU() int { return d.mtu }

// Name implements Device.
func (d *ChannelDevice) Name() string { return d.name }

// Close implements Device.
func (d *ChannelDevice) Close() error {
	d.closeOnce.Do(func() { close(d.done) })
	return nil
}

// QueueSet is a MultiQueue made of existing devices, the first answering
// for the set (a fake multi-queue device for tests, or a wrapper's).
type QueueSet struct {
	Device
	queues []Device
}

// NewQueueSet returns the devices as one MultiQueue; qs must not be empty.
func NewQueueSet(qs ...Device) QueueSet { return QueueSet{Device: qs[0], queues: qs} }

// Queues implements MultiQueue.
func (s QueueSet) Queues() []Device { return s.queues }
