package observe

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun/offload"
)

// Pcap writes packets to a pcap file (LINKTYPE_RAW: IPv4 with no link
// header), which Wireshark and tshark open. One file may take packets
// from several devices at once.
type Pcap struct {
	mu sync.Mutex
	f  *os.File
	w  *pcapgo.Writer
}

// CreatePcap creates path (mode 0600; a symbolic link there is refused, a
// file replaced) and writes the file header.
func CreatePcap(path string) (*Pcap, error) {
	f, err := createCaptureFile(path)
	if err != nil {
		return nil, err
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		f.Close()
		return nil, fmt.Errorf("pcap %s: %w", path, err)
	}
	return &Pcap{f: f, w: w}, nil
}

func (p *Pcap) write(b []byte, now time.Time) {
	n := min(len(b), 65535)
	p.mu.Lock()
	p.w.WritePacket(gopacket.CaptureInfo{Timestamp: now, CaptureLength: n, Length: len(b)}, b[:n])
	p.mu.Unlock()
}

// Close flushes and closes the file.
func (p *Pcap) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.f.Close()
}

// Traffic counts packets and bytes per IP protocol in one direction.
type Traffic struct {
	packets, bytes [256]atomic.Uint64
}

// add counts packet b, which the wire sees as segs packets (a
// super-packet's segments each carry hdrLen bytes of headers).
func (t *Traffic) add(b []byte, segs, hdrLen int) {
	proto := 0
	if len(b) >= 20 {
		proto = int(b[9])
	}
	t.packets[proto].Add(uint64(segs))
	t.bytes[proto].Add(uint64(len(b) + (segs-1)*hdrLen))
}

// Each calls fn for every protocol that carried traffic.
func (t *Traffic) Each(fn func(proto uint8, packets, bytes uint64)) {
	for i := range t.packets {
		if p := t.packets[i].Load(); p > 0 {
			fn(uint8(i), p, t.bytes[i].Load())
		}
	}
}

// Tap captures and counts the packets of one side of a NAT (its outside
// port, or its inside ports): every packet goes to Pcap (if set), and
// every packet written to a device is counted in Written (if set), a
// super-packet as the segments the kernel cuts it into, as a link would
// carry them. Written to the outside port is outbound traffic, to an
// inside port inbound. A super-packet is captured as one record, as a
// capture on the TUN device itself shows it. A Tap is safe for
// concurrent use.
type Tap struct {
	Pcap    *Pcap
	Written *Traffic
}

// Packet takes one packet crossing a port, as forward.Tap passes it.
func (t *Tap) Packet(dir forward.Direction, pkt []byte, h offload.VirtioHdr) {
	if t.Pcap != nil {
		t.Pcap.write(pkt, time.Now())
	}
	if t.Written != nil && dir == forward.ToDevice {
		segs, hl := h.WireSegments(pkt)
		t.Written.add(pkt, segs, hl)
	}
}

// Sides is a forward.Tap for a NAT that hands the outside port's
// packets to outside and the inside ports' to inside; either may be nil.
func Sides(outside, inside *Tap) forward.Tap {
	return func(port nat.Port, dir forward.Direction, pkt []byte, h offload.VirtioHdr) {
		t := inside
		if port == nat.Outside {
			t = outside
		}
		if t != nil {
			t.Packet(dir, pkt, h)
		}
	}
}
