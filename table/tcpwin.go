package table

import "unsafe"

// TCP window tracking: which sequence numbers each end of a session may
// send, so that a RST or FIN from outside is believed only inside the
// window (RFC 5961 §3, §4; Linux conntrack's tcp_in_window, whose
// bookkeeping this follows). A RST that anyone on the path could forge
// with a random sequence number would otherwise end any idle connection.

// Segment is what the table reads of a TCP segment. Flags alone (HasSeq
// false) is enough for the state machine; with the sequence fields the
// table also tracks the windows and checks a RST or FIN from outside
// against them. UDP and ICMP packets pass the zero Segment.
type Segment struct {
	Seq, Ack uint32
	// Len is the payload length in bytes (the TCP header not counted).
	Len uint32
	// Window is the window field as sent (unscaled).
	Window uint16
	// Flags is the TCP flags byte (FlagSYN, ...).
	Flags uint8
	// WScale is the window scale option's shift of a SYN (RFC 7323
	// §2.2), NoWScale when the SYN has none; ignored on other segments.
	WScale uint8
	// HasSeq says Seq, Ack, Len, Window and WScale are set.
	HasSeq bool
}

// NoWScale is Segment.WScale for a SYN without the window scale option.
const NoWScale uint8 = 0xff

// FlagsOnly is the Segment of a TCP packet known by its flags only.
func FlagsOnly(flags uint8) Segment { return Segment{Flags: flags} }

// maxWScale is the largest shift RFC 7323 §2.3 allows; a larger one is
// taken as 14.
const maxWScale = 14

// tcpDir is what one end of a session has sent, as far as the NAT saw.
type tcpDir struct {
	end    uint32 // highest sequence number sent, plus one (conntrack td_end)
	maxEnd uint32 // right edge of the window the other end offered (td_maxend)
	maxWin uint32 // largest window this end offered, scaled (td_maxwin)
	maxAck uint32 // highest acknowledgment this end sent (td_maxack)
	scale  uint8  // window scale this end's SYN announced
	shift  uint8  // the scale its windows take once both SYNs are seen
	flags  uint8  // dirSeen...
}

const (
	dirSeen     uint8 = 1 << iota // a segment from this end has been tracked
	dirSynSeen                    // its SYN was seen: scale is known
	dirWScale                     // its SYN carried the window scale option
	dirMaxAck                     // maxAck is set
	dirAfterRst                   // it sent since the session's RST
)

// tcpWin is a session's window tracking: [0] the inside end, [1] the
// outside end.
type tcpWin [2]tcpDir

// winLine is where the first session's tcpWin lives: the cache line just
// before a TCP Mapping (tcpMapping), so that UDP and ICMP mappings do
// not carry it and a TCP packet touches that line and the Mapping's
// first, not its second.
const winLine = 64

// tcpMapping is how a TCP Mapping is allocated: 192 bytes, a size class
// whose objects start on cache lines, like the Mapping's 128.
type tcpMapping struct {
	win tcpWin
	_   [winLine - unsafe.Sizeof(tcpWin{})]byte
	m   Mapping
}

// newMapping allocates a Mapping for proto.
func newMapping(proto Protocol) *Mapping {
	if proto == TCP {
		return &(&tcpMapping{}).m
	}
	return &Mapping{}
}

// win returns the window tracking of session i of a TCP mapping made by
// newMapping.
func (m *Mapping) win(i int) *tcpWin {
	if i == 0 {
		return (*tcpWin)(unsafe.Add(unsafe.Pointer(m), -winLine))
	}
	return &m.more.win[i-1]
}

// seqBefore reports a < b in sequence space (RFC 9293 §3.4).
func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

// seqAfter reports a > b in sequence space.
func seqAfter(a, b uint32) bool { return int32(b-a) < 0 }

// end is the sequence number after the segment: SYN and FIN count one.
func (g *Segment) end() uint32 {
	e := g.Seq + g.Len
	if g.Flags&FlagSYN != 0 {
		e++
	}
	if g.Flags&FlagFIN != 0 {
		e++
	}
	return e
}

// window is the segment's window scaled as its sender's SYN set: a SYN's
// is never scaled (RFC 7323 §2.2), and scaling holds only if both SYNs
// asked for it. Before the sender's SYN has been seen its scale is not
// known and the largest is assumed: the check errs towards believing.
func (w *tcpWin) window(s int, g *Segment) uint32 {
	win := uint32(g.Window)
	if g.Flags&FlagSYN != 0 {
		return win
	}
	if d := &w[s]; d.flags&dirSynSeen != 0 {
		return win << d.shift
	}
	return win << maxWScale
}

// rescale sets both ends' shifts after a SYN: an end's scale holds only
// if both SYNs carried the option (RFC 7323 §2.2).
func (w *tcpWin) rescale() {
	both := w[0].flags&w[1].flags&dirWScale != 0
	for s := range w {
		w[s].shift = 0
		if both {
			w[s].shift = w[s].scale
		}
	}
}

// maxAckWindow is how far behind the other end's highest sequence number
// an acknowledgment from s may be (conntrack's MAXACKWINDOW).
func (w *tcpWin) maxAckWindow(s int) uint32 { return max(w[s].maxWin, 66000) }

// ok reports whether segment g from end s (0: inside) lies in the window
// (conntrack's four tcp_in_window bounds): not past what the receiver
// offered, not older than one window behind what the sender sent, and an
// acknowledgment of something the receiver sent, not long ago. A RST
// must also not be behind what the receiver has acknowledged (RFC 5961
// §3.2 wants exactly that point; the window allows for data in flight).
// Nothing can be judged before both ends have been tracked, except the
// acknowledgment of a segment answering the other end's SYN.
func (w *tcpWin) ok(s int, g *Segment) bool {
	if !g.HasSeq {
		return true
	}
	snd, rcv := &w[s], &w[1-s]
	if rcv.flags&dirSeen != 0 && g.Flags&FlagACK != 0 &&
		(seqAfter(g.Ack, rcv.end) || seqBefore(g.Ack, rcv.end-w.maxAckWindow(s))) {
		return false
	}
	if snd.flags&dirSeen == 0 || rcv.flags&dirSeen == 0 {
		if snd.flags&dirSeen == 0 && rcv.flags&dirSeen != 0 && g.Flags&(FlagRST|FlagFIN) != 0 {
			// The first word from this end ends the session: only an
			// answer to the other end's SYN may (RFC 9293 §3.10.7.3:
			// in SYN-SENT a RST counts only if it acknowledges the SYN).
			return g.Flags&FlagACK != 0
		}
		return true
	}
	seq, end := g.Seq, g.end()
	if seqAfter(seq, snd.maxEnd) || seqBefore(end, snd.end-rcv.maxWin) {
		return false
	}
	if g.Flags&FlagRST != 0 && rcv.flags&dirMaxAck != 0 && seqBefore(seq, rcv.maxAck) {
		return false
	}
	return true
}

// track records segment g from end s, which ok accepted.
func (w *tcpWin) track(s int, g *Segment) {
	if !g.HasSeq {
		return
	}
	snd, rcv := &w[s], &w[1-s]
	end := g.end()
	if g.Flags&FlagSYN != 0 && snd.flags&dirSynSeen == 0 {
		snd.flags |= dirSynSeen
		if g.WScale != NoWScale {
			snd.flags |= dirWScale
			snd.scale = min(g.WScale, maxWScale)
		}
		w.rescale()
	}
	win := w.window(s, g)
	if snd.flags&dirSeen == 0 {
		snd.flags |= dirSeen
		snd.end = end
		snd.maxWin = max(win, 1)
		// No window offered to it seen yet: its SYN is the edge so far;
		// picked up mid-stream, its own window stands in for the other
		// end's, as conntrack does.
		snd.maxEnd = end
		if g.Flags&FlagSYN == 0 {
			snd.maxEnd += win
		}
	}
	if seqAfter(end, snd.end) {
		snd.end = end
		if seqAfter(end, snd.maxEnd) {
			// It sent past the window seen (an update the NAT missed,
			// a probe): the window was larger. (maxEnd is at least
			// end once tracked, so only a new end can pass it.)
			rcv.maxWin += end - snd.maxEnd
			snd.maxEnd = end
		}
	}
	snd.maxWin = max(snd.maxWin, win)
	if g.Flags&FlagACK != 0 {
		if snd.flags&dirMaxAck == 0 || seqAfter(g.Ack, snd.maxAck) {
			snd.maxAck = g.Ack
			snd.flags |= dirMaxAck
		}
		edge := g.Ack + max(win, 1)
		if rcv.flags&dirSeen == 0 {
			// An answer to a SYN not seen (picked up mid-stream): the
			// other end has sent up to the acknowledgment.
			rcv.flags |= dirSeen
			rcv.end, rcv.maxEnd, rcv.maxWin = g.Ack, edge, 1
		} else if seqAfter(edge, rcv.maxEnd) {
			rcv.maxEnd = edge
		}
	}
}
