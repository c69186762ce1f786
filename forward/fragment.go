package forward

import (
	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun/offload"
)

// Fragmentation: the engine forwards an IPv4 datagram with DF clear that
// is larger than the link it leaves by whole, translated, with the
// link's MTU in nat.Result.FragMTU; the reader cuts it here
// (header.FragmentIPv4) into buffers of its own, as a router fragments
// on its way out (RFC 1812 section 5.2.6). A super-packet is cut into
// its segments first, and each segment that is still too large into
// fragments.

// fragBatch is how many fragments are cut before they are written: a
// datagram of 64 KB over a link of 1280 bytes is 52 of them.
const fragBatch = 64

// fragmenter holds the buffers a reader cuts datagrams into. They are
// made by the first datagram that needs them and remade only for a
// larger MTU than before, so a steady stream of cuts allocates nothing.
type fragmenter struct {
	bufs [][]byte // each Headroom + mtu bytes
	out  [][]byte
	mtu  int
}

// buffers returns fragBatch buffers of at least Headroom+mtu bytes.
func (f *fragmenter) buffers(mtu int) [][]byte {
	if f.mtu < mtu {
		f.bufs = make([][]byte, fragBatch)
		for i := range f.bufs {
			f.bufs[i] = make([]byte, Headroom+mtu)
		}
		f.out = make([][]byte, 0, fragBatch)
		f.mtu = mtu
	}
	return f.bufs
}

// Fragmented counts the datagrams (or segments) the router cut into
// fragments for a smaller link.
func (r *Router) Fragmented() uint64 { return r.fragmented.Load() }

// sendCut writes packet pkt (read from port in, virtio-net header h
// when vin) to port to in pieces that fit mtu: its segments for a
// super-packet, and fragments of whatever is still too large.
func (p *pumper) sendCut(st *impairState, in, to nat.Port, pkt []byte, vin bool, h *offload.VirtioHdr, mtu int, mono int64) {
	p.flush(to) // what was queued before it goes first
	if !vin || !h.IsGSO() {
		if vin && h.NeedsCsum() {
			offload.FinishCsum(pkt) // a fragment's checksum cannot be finished later
		}
		p.cut(st, in, to, pkt, mtu, mono)
		return
	}
	if p.seg == nil {
		p.seg = offload.NewSegmenter(64, p.r.maxMTU(), Headroom)
	}
	for k, nseg := 0, h.Segments(pkt); k < nseg; {
		q, next, lost := p.seg.Split(pkt, h, k)
		p.r.writeErrors.Add(uint64(lost))
		for _, s := range q {
			p.cut(st, in, to, s[Headroom:], mtu, mono)
		}
		k = next
	}
}

// cut writes plain IPv4 packet pkt to port to, in fragments of at most
// mtu bytes if it is larger.
func (p *pumper) cut(st *impairState, in, to nat.Port, pkt []byte, mtu int, mono int64) {
	f := &p.frag
	bufs := f.buffers(mtu)
	q := f.out[:0]
	if len(pkt) <= mtu {
		b := bufs[0][:Headroom+len(pkt)]
		copy(b[Headroom:], pkt)
		q = append(q, b)
	} else {
		p.r.fragmented.Add(1)
		pl := len(header.IPv4(pkt).Payload())
		for from := 0; from < pl; {
			if len(q) == len(bufs) {
				p.sendPieces(st, in, to, q, mono)
				q = q[:0]
			}
			b := bufs[len(q)]
			n, next := header.FragmentIPv4(b[Headroom:], pkt, mtu, from)
			if n == 0 {
				p.r.writeErrors.Add(1)
				return
			}
			q = append(q, b[:Headroom+n])
			from = next
		}
	}
	p.sendPieces(st, in, to, q, mono)
}

// sendPieces writes plain IPv4 packets q (cut by cut) to port to: with
// an empty virtio-net header for a device that takes one, through the
// link's impairment if it has one for IPv4.
func (p *pumper) sendPieces(st *impairState, in, to nat.Port, q [][]byte, mono int64) {
	if st != nil && st.applies(in, to, 4) {
		q = p.impairSegments(st, in, to, q, mono) // clears the headers too
	} else if p.vhdr[to] {
		const hdrAt = Headroom - offload.VirtioHdrLen
		for _, b := range q {
			clear(b[hdrAt:Headroom])
		}
	}
	p.send(to, q)
}
