package forward

import (
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun/offload"
)

// Direction is which way a packet crosses a port's device.
type Direction uint8

const (
	// FromDevice: read from the device, before translation.
	FromDevice Direction = iota
	// ToDevice: written to the device, after translation.
	ToDevice
)

func (d Direction) String() string {
	if d == FromDevice {
		return "from device"
	}
	return "to device"
}

// Tap sees the packets that cross a router's ports: every packet read
// from a port's device, before it is translated, and every packet
// written to one, after (forwarded, an ICMP error the engine answers
// with, a held fragment released, a segment cut in software). pkt is the
// IP packet and h its virtio-net header, the zero value on a device
// without one. A super-packet is passed once, as the device takes or
// gives it; h.WireSegments says how many packets the wire carries.
// Datagrams the router coalesces for a device that takes UDP
// super-packets are passed one by one, before they are coalesced.
//
// It runs on the packet path, from every reader at once: it must be
// quick, safe for concurrent use, and must not keep pkt or change it.
type Tap func(port nat.Port, dir Direction, pkt []byte, h offload.VirtioHdr)

// tap passes buffer b (its packet at Headroom, the virtio-net header,
// if port's device has one, before it) to the router's Tap.
func (p *pumper) tap(port nat.Port, dir Direction, b []byte) {
	var h offload.VirtioHdr
	if p.vhdr[port] {
		h.Decode(b[Headroom-offload.VirtioHdrLen : Headroom])
	}
	p.r.Tap(port, dir, b[Headroom:], h)
}
