package observe

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/gonat/gonat/tun"
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

// Tap wraps a device: every packet read from it and written to it goes
// to Pcap (if set), and every packet written to it is counted in Written
// (if set): written to the outside port is outbound traffic, to an
// inside port inbound.
type Tap struct {
	tun.Device
	Pcap    *Pcap
	Written *Traffic
}

var (
	_ tun.VirtioDevice = (*Tap)(nil)
	_ tun.Poller       = (*Tap)(nil)
	_ tun.MultiQueue   = (*Tap)(nil)
)

// Queues implements tun.MultiQueue: t, and a Tap with t's Pcap and
// Written for each further queue of its device, so every queue a reader
// takes is captured and counted (and none is left unread).
func (t *Tap) Queues() []tun.Device {
	qs := []tun.Device{t}
	for _, q := range tun.QueuesOf(t.Device)[1:] {
		qs = append(qs, &Tap{Device: q, Pcap: t.Pcap, Written: t.Written})
	}
	return qs
}

// VirtioHdr implements tun.VirtioDevice: a Tap has the header if its
// device has. Without it, the router would take an offload device for a
// plain one behind --pcap-* or --metrics, and update partial checksums
// as if they were whole.
func (t *Tap) VirtioHdr() bool { return tun.HasVirtioHdr(t.Device) }

// USO implements tun.VirtioDevice: false, so the router writes UDP
// datagrams to a tapped device one by one rather than coalesced into
// super-packets, and the capture and the counters see each datagram.
func (t *Tap) USO() bool { return false }

// Read implements tun.Device.
func (t *Tap) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.Device.Read(bufs, sizes, offset)
	t.capture(bufs, sizes, offset, n)
	return n, err
}

// TryRead implements tun.Poller for a device that is one (PollFd says).
func (t *Tap) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	d, ok := t.Device.(tun.Poller)
	if !ok {
		return 0, errors.New("observe: Tap: device cannot be read without waiting")
	}
	n, err := d.TryRead(bufs, sizes, offset)
	t.capture(bufs, sizes, offset, n)
	return n, err
}

// PollFd implements tun.Poller: the device's, or -1.
func (t *Tap) PollFd() int {
	if d, ok := t.Device.(tun.Poller); ok {
		return d.PollFd()
	}
	return -1
}

func (t *Tap) capture(bufs [][]byte, sizes []int, offset, n int) {
	if t.Pcap != nil && n > 0 {
		now := time.Now()
		for i := 0; i < n; i++ {
			t.Pcap.write(bufs[i][offset:offset+sizes[i]], now)
		}
	}
}

// Write implements tun.Device.
func (t *Tap) Write(bufs [][]byte, offset int) (int, error) {
	var now time.Time
	if t.Pcap != nil {
		now = time.Now()
	}
	// Super-packets count as the segments the kernel cuts them into,
	// as a link would carry them.
	vhdr := offset >= tun.VirtioHdrLen && t.VirtioHdr()
	var h tun.VirtioHdr
	for _, b := range bufs {
		p := b[offset:]
		if t.Pcap != nil {
			t.Pcap.write(p, now)
		}
		if t.Written != nil {
			segs, hl := 1, 0
			if vhdr {
				h.Decode(b[offset-tun.VirtioHdrLen : offset])
				segs, hl = h.WireSegments(p)
			}
			t.Written.add(p, segs, hl)
		}
	}
	return t.Device.Write(bufs, offset)
}
