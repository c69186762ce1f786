package tun

import "sync"

// VirtioChannelDevice is ChannelDevice for a device with offloads: every
// packet on In and Out starts with its VirtioHdrLen-byte virtio-net
// header, the way the offload backend reads and writes them.
type VirtioChannelDevice struct {
	In  chan []byte
	Out chan []byte
	// TakesUSO is what USO reports.
	TakesUSO bool
	name     string
	mtu      int

	closeOnce sync.Once
	done      chan struct{}
}

var _ VirtioDevice = (*VirtioChannelDevice)(nil)

// NewVirtioChannel returns a VirtioChannelDevice with buffered channels.
func NewVirtioChannel(name string) *VirtioChannelDevice {
	return &VirtioChannelDevice{
		In:   make(chan []byte, 1024),
		Out:  make(chan []byte, 1024),
		name: name,
		mtu:  DefaultMTU,
		done: make(chan struct{}),
	}
}

func (d *VirtioChannelDevice) put(buf []byte, offset int, p []byte) int {
	if len(p) < VirtioHdrLen {
		p = make([]byte, VirtioHdrLen) // a malformed input reads as an empty packet
	}
	copy(buf[offset-VirtioHdrLen:offset], p[:VirtioHdrLen])
	return copy(buf[offset:], p[VirtioHdrLen:])
}

// Read implements Device: it waits for one packet, then takes whatever
// else is queued, up to the batch.
func (d *VirtioChannelDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-d.done:
		return 0, ErrClosed
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

// Write implements Device; each packet is copied with its header.
func (d *VirtioChannelDevice) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		p := append([]byte(nil), b[offset-VirtioHdrLen:]...)
		select {
		case <-d.done:
			return i, ErrClosed
		case d.Out <- p:
		}
	}
	return len(bufs), nil
}

// VirtioHdr implements VirtioDevice.
func (d *VirtioChannelDevice) VirtioHdr() bool { return true }

// USO implements VirtioDevice.
func (d *VirtioChannelDevice) USO() bool { return d.TakesUSO }

// BatchSize implements Device.
func (d *VirtioChannelDevice) BatchSize() int { return 16 }

// MTU implements Device.
func (d *VirtioChannelDevice) MTU() int { return d.mtu }

// Name implements Device.
func (d *VirtioChannelDevice) Name() string { return d.name }

// Close implements Device.
func (d *VirtioChannelDevice) Close() error {
	d.closeOnce.Do(func() { close(d.done) })
	return nil
}
