package offload

import "github.com/gonat/gonat/header"

// Segments is how many packets super-packet b (header h, checked by
// PartialCsumOffset) stands for.
func (h *VirtioHdr) Segments(b []byte) int {
	l, _ := layoutOf(b)
	return h.segments(l.total - l.hdrLen())
}

// Segment writes segment i of super-packet b (header h, checked by
// PartialCsumOffset) into dst as a plain packet with every checksum
// complete, and returns its length, or 0 when it does not fit in dst.
// Segment i carries payload bytes [i*GSOSize, (i+1)*GSOSize) behind a
// copy of the headers, with the IPv4 total length, identification (+i,
// as the kernel's segmentation does) and checksum, the TCP sequence
// number, or the UDP length, set for it; TCP's FIN and PSH stay on the
// last segment only and CWR on the first (as tcp_gso_segment does).
func Segment(dst, b []byte, h *VirtioHdr, i int) int {
	l, _ := layoutOf(b)
	return segment(dst, b, l, h, i)
}

// segment is Segment for b of layout l.
func segment(dst, b []byte, l layout, h *VirtioHdr, i int) int {
	hl := l.hdrLen()
	start, end := hl, l.total
	if h.IsGSO() {
		start = hl + i*int(h.GSOSize)
		end = min(start+int(h.GSOSize), l.total)
	}
	n := hl + end - start
	if n > len(dst) || start > end {
		return 0
	}
	copy(dst, b[:hl])
	copy(dst[hl:], b[start:end])
	ip := header.IPv4(dst[:n])
	ip.SetTotalLen(uint16(n))
	ip.SetID(header.IPv4(b).ID() + uint16(i))
	setIPv4Checksum(ip, l.ihl)
	switch l.proto {
	case header.ProtoTCP:
		t := header.TCP(dst[l.ihl:n])
		t.SetSeq(header.TCP(b[l.ihl:]).Seq() + uint32(start-hl))
		if end < l.total {
			t.SetFlags(t.Flags() &^ (header.TCPFin | header.TCPPsh))
		}
		if i > 0 {
			t.SetFlags(t.Flags() &^ header.TCPCwr)
		}
	case header.ProtoUDP:
		header.UDP(dst[l.ihl:n]).SetLength(uint16(n - l.ihl))
	}
	header.SetTransportChecksum(ip)
	return n
}

// Segmenter holds the buffers super-packets are cut into on their way
// to a device without offloads. A router makes one on first use: with
// devices of one kind on every port, it never does.
type Segmenter struct {
	bufs   [][]byte // each offset + the largest segment
	out    [][]byte
	offset int
}

// NewSegmenter makes a Segmenter that cuts up to n segments of up to
// size bytes at a time, each at offset in its buffer.
func NewSegmenter(n, size, offset int) *Segmenter {
	s := &Segmenter{bufs: make([][]byte, n), out: make([][]byte, 0, n), offset: offset}
	for i := range s.bufs {
		s.bufs[i] = make([]byte, offset+size)
	}
	return s
}

// Split cuts super-packet b (header h) from segment from on into as
// many plain packets as its buffers hold, and returns them (each from
// its buffer's start, the packet at offset), the index of the next
// segment (h.Segments(b) when done), and how many segments were too
// large for a buffer and left out.
func (s *Segmenter) Split(b []byte, h *VirtioHdr, from int) (q [][]byte, next, lost int) {
	l, _ := layoutOf(b)
	n := h.segments(l.total - l.hdrLen())
	q = s.out[:0]
	i := from
	for ; i < n && len(q) < len(s.bufs); i++ {
		buf := s.bufs[len(q)]
		size := segment(buf[s.offset:], b, l, h, i)
		if size == 0 {
			lost++
			continue
		}
		q = append(q, buf[:s.offset+size])
	}
	return q, i, lost
}

// setIPv4Checksum computes and sets the checksum of ip's header of ihl
// bytes.
func setIPv4Checksum(ip header.IPv4, ihl int) {
	ip.SetChecksum(0)
	ip.SetChecksum(header.Checksum(ip[:ihl], 0))
}
