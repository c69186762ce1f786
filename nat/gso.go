package nat

import (
	"encoding/binary"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun"
)

// Packets from a device with offloads (tun.VirtioDevice) come with a
// virtio-net header that can say two things the rest of the engine never
// sees from a plain device:
//
//   - NEEDS_CSUM: the UDP or TCP checksum field holds a partial sum, the
//     folded pseudo-header sum (not inverted), and whoever delivers the
//     packet completes it over the transport header and payload, ports
//     included (the kernel's CHECKSUM_PARTIAL; skb_checksum_help). So an
//     address change, which is in the pseudo-header, updates the partial
//     sum by RFC 1624 arithmetic without the final inversion, and a port
//     change, which is in the covered bytes, changes nothing in it.
//   - GSO: the packet is a TCP (TSO) or UDP (USO) super-packet of up to
//     64 KB, to be cut into segments of GSOSize payload bytes, each with
//     a copy of the headers. Its headers are translated once, in place;
//     the header goes on unchanged, since no header length changes.
//
// Only where a packet must leave as plain packets (a device without
// offloads, or the quote of an ICMP error) is the checksum finished or
// the super-packet segmented in software.

// ProcessVirtio is Process for a packet read from a tun.VirtioDevice with
// virtio-net header h. It may change h: a partial checksum found where
// no UDP or TCP checksum sits is finished here and the flag cleared. On
// Forward, the packet goes on with h as it is now (see finishPlain for a
// device without offloads). An ICMP error the engine generates about a
// super-packet quotes its first segment, with complete checksums.
func (e *Engine) ProcessVirtio(in Port, b []byte, h *tun.VirtioHdr, reply []byte, now time.Time) Result {
	return e.q0.ProcessVirtio(in, b, h, reply, now)
}

// ProcessVirtio is Engine.ProcessVirtio through q.
func (q *Queue) ProcessVirtio(in Port, b []byte, h *tun.VirtioHdr, reply []byte, now time.Time) Result {
	e := q.e
	if h.Plain() {
		return q.Process(in, b, reply, now)
	}
	off, ok := partialCsumOffset(b, h)
	if !ok {
		if h.IsGSO() || !finishCsumAt(b, h) {
			// The kernel sends neither; nothing in it can be trusted.
			pk := packet{q: q, in: in, now: now}
			pk.p.Decode(b)
			return e.drop(&pk, DropMalformed)
		}
		h.Flags &^= tun.VirtioNeedsCsum
		return q.Process(in, b, reply, now)
	}
	partial := binary.BigEndian.Uint16(b[off:])
	src, dst := [4]byte(b[12:16]), [4]byte(b[16:20])
	segs := 1
	if in != Outside && h.IsGSO() && !header.IPv4(b).DontFragment() {
		// DF clear: the kernel numbers the segments ID, ID+1, ... from
		// the ID the engine gives the whole, so it takes a run of them,
		// out of the next datagrams' way.
		segs = NumSegments(b, h)
	}
	res := q.process(in, b, reply, now, segs)
	switch {
	case res.Verdict == Forward:
		// Process treated the field as a full checksum; put back the
		// partial sum with only the pseudo-header change in it.
		partial = partialUpdate(partial, src, [4]byte(b[12:16]))
		partial = partialUpdate(partial, dst, [4]byte(b[16:20]))
		binary.BigEndian.PutUint16(b[off:], partial)
	case res.ReplyLen > 0:
		// The engine answers before it rewrites anything, so b is the
		// packet as it came; the error must quote a packet that could
		// have been on the wire: the first segment, checksums complete.
		res.ReplyLen = requote(b, h, reply, res.ReplyLen)
	}
	return res
}

// partialUpdate adjusts partial sum p for a 4-byte pseudo-header field
// changing from old to new: p + ~old + new in one's-complement
// arithmetic, which is RFC 1624 eqn. 3 without the inversions.
func partialUpdate(p uint16, old, new [4]byte) uint16 {
	return ^header.UpdateChecksum32(^p, old, new)
}

// IPv4 header fields read here, before or without a full decode.
const (
	ipTotalLen  = 2
	ipID        = 4
	ipFlagsFrag = 6
	ipProto     = 9
	ipCsum      = 10
	tcpSeq      = 4
	tcpDataOff  = 12
	tcpFlags    = 13
	tcpCsumOff  = 16
	udpLen      = 4
	udpCsumOff  = 6
	tcpCWR      = 0x80
	ipMFOffMask = 0x3fff // MF and fragment offset
)

// ipLayout reads an IPv4 packet's header length and total length, and
// checks it is a whole, unfragmented packet within b.
func ipLayout(b []byte) (ihl, total int, ok bool) {
	if len(b) < header.IPv4MinSize || b[0]>>4 != 4 {
		return 0, 0, false
	}
	ihl = int(b[0]&0x0f) << 2
	total = int(binary.BigEndian.Uint16(b[ipTotalLen:]))
	if ihl < header.IPv4MinSize || total < ihl || total > len(b) ||
		binary.BigEndian.Uint16(b[ipFlagsFrag:])&ipMFOffMask != 0 {
		return 0, 0, false
	}
	return ihl, total, true
}

// transportLayout returns the transport header length of a TCP or UDP
// packet whose IPv4 header is ihl bytes, and the checksum field's offset
// in that header.
func transportLayout(b []byte, ihl, total int) (thl, csumOff int, ok bool) {
	switch b[ipProto] {
	case header.ProtoTCP:
		if total < ihl+header.TCPMinSize {
			return 0, 0, false
		}
		thl = int(b[ihl+tcpDataOff]>>4) << 2
		if thl < header.TCPMinSize || ihl+thl > total {
			return 0, 0, false
		}
		return thl, tcpCsumOff, true
	case header.ProtoUDP:
		if total < ihl+header.UDPSize {
			return 0, 0, false
		}
		return header.UDPSize, udpCsumOff, true
	}
	return 0, 0, false
}

// partialCsumOffset checks that h's partial checksum is the UDP or TCP
// checksum of the unfragmented IPv4 packet b, and that a GSO type fits
// the protocol, and returns the checksum field's offset in b.
func partialCsumOffset(b []byte, h *tun.VirtioHdr) (int, bool) {
	if !h.NeedsCsum() {
		return 0, false
	}
	ihl, total, ok := ipLayout(b)
	if !ok {
		return 0, false
	}
	_, csumOff, ok := transportLayout(b, ihl, total)
	if !ok || int(h.CsumStart) != ihl || int(h.CsumOffset) != csumOff {
		return 0, false
	}
	switch h.GSOType &^ tun.GSOECN {
	case tun.GSONone:
	case tun.GSOTCPv4:
		if b[ipProto] != header.ProtoTCP || h.GSOSize == 0 {
			return 0, false
		}
	case tun.GSOUDPL4:
		if b[ipProto] != header.ProtoUDP || h.GSOSize == 0 || h.GSOType&tun.GSOECN != 0 {
			return 0, false
		}
	default:
		return 0, false
	}
	return ihl + csumOff, true
}

// finishCsumAt completes a partial checksum wherever h puts it, the way
// the kernel does for a device without checksum offload: the checksum
// of everything from CsumStart on, field included, goes in the field.
// It reports false when that is not within b.
func finishCsumAt(b []byte, h *tun.VirtioHdr) bool {
	start, off := int(h.CsumStart), int(h.CsumStart)+int(h.CsumOffset)
	if off+2 > len(b) || start > off {
		return false
	}
	binary.BigEndian.PutUint16(b[off:], header.Checksum(b[start:], 0))
	return true
}

// transportChecksum computes the full UDP or TCP checksum of the packet
// in b[:total] (the field is overwritten), as the sender would.
func transportChecksum(b []byte, ihl, total, csumOff int) {
	t := b[ihl:total]
	binary.BigEndian.PutUint16(t[csumOff:], 0)
	ip := header.IPv4(b)
	c := header.Checksum(t, header.PseudoHeaderSum(ip.Src(), ip.Dst(), b[ipProto], uint16(len(t))))
	if c == 0 && b[ipProto] == header.ProtoUDP {
		c = 0xffff // RFC 768: a computed 0 is sent as all ones
	}
	binary.BigEndian.PutUint16(t[csumOff:], c)
}

func setIPChecksum(b []byte, ihl int) {
	binary.BigEndian.PutUint16(b[ipCsum:], 0)
	binary.BigEndian.PutUint16(b[ipCsum:], header.Checksum(b[:ihl], 0))
}

// NumSegments is how many packets super-packet b (header h, validated by
// partialCsumOffset) stands for.
func NumSegments(b []byte, h *tun.VirtioHdr) int {
	ihl, total, _ := ipLayout(b)
	thl, _, _ := transportLayout(b, ihl, total)
	payload := total - ihl - thl
	if !h.IsGSO() || payload <= int(h.GSOSize) {
		return 1
	}
	return (payload + int(h.GSOSize) - 1) / int(h.GSOSize)
}

// segment writes segment i of super-packet b (header h, validated by
// partialCsumOffset) into dst as a plain packet with every checksum
// complete, and returns its length, or 0 when it does not fit in dst.
// Segment i carries payload bytes [i*GSOSize, (i+1)*GSOSize) behind a
// copy of the headers, with the IPv4 total length, identification (+i,
// as the kernel's segmentation does) and checksum, the TCP sequence
// number, or the UDP length, set for it; TCP's FIN and PSH stay on the
// last segment only and CWR on the first (as tcp_gso_segment does).
func segment(dst, b []byte, h *tun.VirtioHdr, i int) int {
	ihl, total, _ := ipLayout(b)
	thl, csumOff, _ := transportLayout(b, ihl, total)
	hl := ihl + thl
	start, end := hl, total
	if h.IsGSO() {
		start = hl + i*int(h.GSOSize)
		end = min(start+int(h.GSOSize), total)
	}
	n := hl + end - start
	if n > len(dst) || start > end {
		return 0
	}
	copy(dst, b[:hl])
	copy(dst[hl:], b[start:end])
	s := dst[:n]
	binary.BigEndian.PutUint16(s[ipTotalLen:], uint16(n))
	binary.BigEndian.PutUint16(s[ipID:], binary.BigEndian.Uint16(b[ipID:])+uint16(i))
	setIPChecksum(s, ihl)
	t := s[ihl:]
	switch s[ipProto] {
	case header.ProtoTCP:
		binary.BigEndian.PutUint32(t[tcpSeq:], binary.BigEndian.Uint32(b[ihl+tcpSeq:])+uint32(start-hl))
		if end < total {
			t[tcpFlags] &^= header.TCPFin | header.TCPPsh
		}
		if i > 0 {
			t[tcpFlags] &^= tcpCWR
		}
	case header.ProtoUDP:
		binary.BigEndian.PutUint16(t[udpLen:], uint16(n-ihl))
	}
	transportChecksum(s, ihl, n, csumOff)
	return n
}

// requote rebuilds the ICMP error in reply[:n], which quotes b as it was
// read (partial checksum, and for a super-packet a total length no wire
// ever carried), so that it quotes b's first segment with complete
// checksums instead. b is turned into that segment in place: the packet
// is being dropped. It returns the error's new length.
func requote(b []byte, h *tun.VirtioHdr, reply []byte, n int) int {
	if n < header.IPv4MinSize+header.ICMPv4MinSize {
		return n
	}
	seg := segment(b, b, h, 0) // segment 0 starts where b does: in place
	if seg == 0 {
		return n
	}
	src := header.IPv4(reply).Src()
	m := header.ICMPv4(reply[header.IPv4MinSize:n])
	var mtu uint16
	switch {
	case m.Type() == header.ICMPDestUnreachable && m.Code() == header.ICMPCodeFragNeeded:
		mtu = m.MTU()
	case m.Type() == header.ICMPParamProblem:
		mtu = uint16(m[4])
	}
	typ, code := m.Type(), m.Code()
	if k := header.BuildICMPError(reply, b[:seg], src, typ, code, mtu); k > 0 {
		return k
	}
	return n
}

// FinishCsum completes the partial checksum of a packet that is not a
// super-packet (validated by partialCsumOffset), in place, for a device
// without offloads.
func FinishCsum(b []byte) {
	ihl, total, _ := ipLayout(b)
	_, csumOff, _ := transportLayout(b, ihl, total)
	transportChecksum(b, ihl, total, csumOff)
}

// Segmenter holds the buffers super-packets are cut into on their way
// to a device without offloads. The router makes one on first use: with
// devices of one kind on every port, it never does.
type Segmenter struct {
	bufs   [][]byte // each offset + the largest segment
	out    [][]byte
	offset int
}

func NewSegmenter(n, size, offset int) *Segmenter {
	s := &Segmenter{bufs: make([][]byte, n), out: make([][]byte, 0, n), offset: offset}
	for i := range s.bufs {
		s.bufs[i] = make([]byte, offset+size)
	}
	return s
}

// split cuts super-packet b (header h) from segment from on into as
// many plain packets as its buffers hold, and returns them (each from
// its buffer's start, the packet at offset), the index of the next
// segment (NumSegments when done), and how many segments were too large
// for a buffer and left out.
func (s *Segmenter) Split(b []byte, h *tun.VirtioHdr, from int) (q [][]byte, next, lost int) {
	n := NumSegments(b, h)
	q = s.out[:0]
	i := from
	for ; i < n && len(q) < len(s.bufs); i++ {
		buf := s.bufs[len(q)]
		l := segment(buf[s.offset:], b, h, i)
		if l == 0 {
			lost++
			continue
		}
		q = append(q, buf[:s.offset+l])
	}
	return q, i, lost
}
