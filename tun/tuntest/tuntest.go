// Package tuntest holds fakes of tun devices for tests: devices made of
// channels, with or without a virtio-net header in front of each packet,
// a set of devices seen as one multi-queue device, and builders of the
// packets the tests send through them.
package tuntest

import (
	"sync"

	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
)

var (
	_ tun.Device       = (*Channel)(nil)
	_ tun.VirtioDevice = (*VirtioChannel)(nil)
	_ tun.MultiQueue   = QueueSet{}
)

// Channel is an in-memory tun.Device: packets sent on In are what the
// device's reader reads; packets written to the device arrive on Out.
type Channel struct {
	In   chan []byte
	Out  chan []byte
	name string
	// hdr is how many bytes of each packet on In and Out go in front of
	// the offset (the virtio-net header of a VirtioChannel), 0 for none.
	hdr int

	closeOnce sync.Once
	done      chan struct{}
}

// NewChannel returns a Channel with buffered channels.
func NewChannel(name string) *Channel {
	d := &Channel{}
	d.init(name, 0)
	return d
}

// init readies a Channel whose packets carry hdr bytes of header.
func (d *Channel) init(name string, hdr int) {
	d.In = make(chan []byte, 1024)
	d.Out = make(chan []byte, 1024)
	d.name, d.hdr = name, hdr
	d.done = make(chan struct{})
}

// put copies p into buf, its first d.hdr bytes in front of offset, and
// returns the size past offset.
func (d *Channel) put(buf []byte, offset int, p []byte) int {
	if d.hdr == 0 {
		return copy(buf[offset:], p)
	}
	if len(p) < d.hdr {
		p = make([]byte, d.hdr) // a malformed input reads as an empty packet
	}
	copy(buf[offset-d.hdr:offset], p[:d.hdr])
	return copy(buf[offset:], p[d.hdr:])
}

// Read implements tun.Device. It waits for one packet, then takes
// whatever else is already queued, up to the batch.
func (d *Channel) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-d.done:
		return 0, tun.ErrClosed
	case p := <-d.In:
		sizes[0] = d.put(bufs[0], offset, p)
	}
	n := 1
	for n < len(bufs) {
		select {
		case p := <-d.In:
			sizes[n] = d.put(bufs[n], offset, p)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Write implements tun.Device; each packet is copied, with its header
// when the device has one.
func (d *Channel) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		p := append([]byte(nil), b[offset-d.hdr:]...)
		select {
		case <-d.done:
			return i, tun.ErrClosed
		case d.Out <- p:
		}
	}
	return len(bufs), nil
}

// BatchSize implements tun.Device.
func (d *Channel) BatchSize() int { return 16 }

// MTU implements tun.Device.
func (d *Channel) MTU() int { return tun.DefaultMTU }

// Name implements tun.Device.
func (d *Channel) Name() string { return d.name }

// Close implements tun.Device.
func (d *Channel) Close() error {
	d.closeOnce.Do(func() { close(d.done) })
	return nil
}

// VirtioChannel is a Channel for a device with offloads: every packet on
// In and Out starts with its offload.VirtioHdrLen-byte virtio-net header, the
// way the offload backend reads and writes them (WithVirtioHdr makes one).
type VirtioChannel struct {
	Channel
	// TakesUSO is what USO reports.
	TakesUSO bool
}

// NewVirtioChannel returns a VirtioChannel with buffered channels.
func NewVirtioChannel(name string) *VirtioChannel {
	v := &VirtioChannel{}
	v.init(name, offload.VirtioHdrLen)
	return v
}

// VirtioHdr implements tun.VirtioDevice.
func (d *VirtioChannel) VirtioHdr() bool { return true }

// USO implements tun.VirtioDevice.
func (d *VirtioChannel) USO() bool { return d.TakesUSO }

// QueueSet is a tun.MultiQueue made of existing devices, the first
// answering for the set: a multi-queue device that repeats none of its
// queues' optional methods.
type QueueSet struct {
	tun.Device
	queues []tun.Device
}

// NewQueueSet returns the devices as one tun.MultiQueue; qs must not be
// empty.
func NewQueueSet(qs ...tun.Device) QueueSet { return QueueSet{Device: qs[0], queues: qs} }

// Queues implements tun.MultiQueue.
func (s QueueSet) Queues() []tun.Device { return s.queues }
