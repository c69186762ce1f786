package nat

import (
	"encoding/binary"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// tcpSegment reads into g what the table tracks of TCP packet b (cut to
// its IP length), decoded into p (a first fragment: its header is
// whole). A first fragment's length is its own, less than the segment's:
// the windows then lag, which only makes the check believe more. g is
// filled in place: a Segment returned by value costs a copy per packet.
func tcpSegment(g *table.Segment, b []byte, p *header.Parsed) {
	fillSegment(g, header.TCP(b[p.IPHeaderLen:]), p.TCPFlags)
}

// fillSegment is tcpSegment for TCP header and payload t with flags, in
// either IP version.
func fillSegment(g *table.Segment, t header.TCP, flags uint8) {
	_ = t[header.TCPMinSize-1] // one bounds check for the fields below
	off := t.DataOffset()
	g.Seq, g.Ack, g.Window = t.Seq(), t.Ack(), t.Window()
	g.Len = uint32(len(t) - off)
	g.Flags, g.WScale, g.HasSeq = flags, table.NoWScale, true
	if flags&header.TCPSyn != 0 {
		g.WScale = windowScale(t[header.TCPMinSize:off])
	}
}

// TCP header fields and options read here (RFC 9293 §3.1, RFC 7323 §2.2).
const (
	tcpChecksumAt = 16

	tcpOptEnd    = 0
	tcpOptNOP    = 1
	tcpOptWScale = 3
)

// windowScale returns the shift of the window scale option among TCP
// options opts, or table.NoWScale if there is none or the options are
// malformed. Only SYNs need it: kept out of line, it leaves tcpSegment
// small enough to inline.
//
//go:noinline
func windowScale(opts []byte) uint8 {
	for len(opts) > 0 {
		switch opts[0] {
		case tcpOptEnd:
			return table.NoWScale
		case tcpOptNOP:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return table.NoWScale
		}
		if opts[0] == tcpOptWScale && opts[1] == 3 {
			return opts[2]
		}
		opts = opts[opts[1]:]
	}
	return table.NoWScale
}

// tcpChecksumOK reports whether TCP packet b, decoded into p, has a
// checksum its receiver would accept. Two kinds pass unverified: a first
// fragment (the checksum covers fragments not yet seen), and a packet
// from a device with offloads whose checksum field holds the partial
// sum the kernel completes on delivery (NEEDS_CSUM, see gso.go): the
// folded pseudo-header sum, with or without the length as Linux puts it
// for a segment or a super-packet. A forger who writes that sum in
// passes here, but not the window check.
func tcpChecksumOK(b []byte, p *header.Parsed) bool {
	if p.MoreFrags {
		return true
	}
	t := b[p.IPHeaderLen:p.Length]
	src, dst := p.Src.Addr(), p.Dst.Addr()
	ph := header.PseudoHeaderSum(src, dst, header.ProtoTCP, uint16(len(t)))
	if header.Checksum(t, ph) == 0 {
		return true
	}
	field := binary.BigEndian.Uint16(t[tcpChecksumAt:])
	return field == header.Fold(ph) || field == header.Fold(header.PseudoHeaderSum(src, dst, header.ProtoTCP, 0))
}
