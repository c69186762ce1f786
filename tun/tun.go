// Package tun moves IP packets between gonat and the kernels of network
// namespaces through TUN devices.
//
// The Device interface works in batches and leaves headroom in front of each
// packet (the shape wireguard-go's tun package uses), so a backend that reads
// several packets per call or needs a virtio-net header in front of each one
// (IFF_VNET_HDR with TSO/USO offload) fits behind it without changing the
// engine.
package tun

import "errors"

// Device is one TUN port.
type Device interface {
	// Read reads up to len(bufs) packets. Packet i lands in bufs[i][offset:]
	// and its length in sizes[i]. It blocks until at least one packet is
	// available, and returns ErrClosed once the device is closed; a
	// device made with Config.Polled cannot wait, and returns ErrPolled
	// instead of blocking.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// Write writes each bufs[i][offset:] as one packet and returns how many
	// were written.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the most packets one Read returns; fixed for the
	// device's life.
	BatchSize() int
	// MTU is the device's maximum packet size (without headroom).
	MTU() int
	// Name is the interface name in its namespace.
	Name() string
	// Close removes the device; its addresses and routes go with it.
	Close() error
}

// Poller is a Device that can also be read without waiting, for the
// readers that poll (forward.ReadersBusyPoll and ReadersPerCPU) instead of sleeping
// in Read until a packet comes. The offload backend is one; water is not.
type Poller interface {
	Device
	// TryRead is Read that returns (0, nil) at once when no packet waits.
	TryRead(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// PollFd is the file descriptor to wait on with poll(2), or -1 when
	// the device cannot be busy-polled (a wrapper around a device that is
	// not a Poller). It stays valid until Close.
	PollFd() int
}

// CanPoll reports whether d can be busy-polled.
func CanPoll(d Device) bool {
	p, ok := d.(Poller)
	return ok && p.PollFd() >= 0
}

// MultiQueue is a Device opened with several queues (IFF_MULTI_QUEUE):
// the kernel spreads the flows it sends over the queues by flow hash,
// and each queue is read and written on its own, so one reader per
// queue can run on each core. Every queue must be read: packets the
// kernel gives a queue nobody reads wait there.
type MultiQueue interface {
	Device
	// Queues returns the device's queues, this one first. Closing the
	// first closes them all.
	Queues() []Device
}

// MaxQueues is the kernel's limit of queues per TUN device (MAX_TAP_QUEUES).
const MaxQueues = 256

// QueuesOf returns d's queues: d alone unless it is a MultiQueue.
func QueuesOf(d Device) []Device {
	if m, ok := d.(MultiQueue); ok {
		if qs := m.Queues(); len(qs) > 0 {
			return qs
		}
	}
	return []Device{d}
}

// ErrClosed is returned by Read and Write on a closed device.
var ErrClosed = errors.New("tun: device closed")

// ErrPolled is returned by Read on an empty device created with
// Config.Polled, which cannot wait: poll it with TryRead and a Waiter.
var ErrPolled = errors.New("tun: device is polled (Config.Polled): Read cannot wait; use TryRead and a Waiter")

// DefaultMTU is the MTU of devices created without one.
const DefaultMTU = 1500
