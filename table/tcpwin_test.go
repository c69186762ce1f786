package table

import (
	"testing"
	"time"
)

// conn is a TCP connection through a table, each end with its own
// sequence numbers: the inside end from isnIn, the outside end from
// isnOut, both offering window 512 scaled by 7 (64 KB).
type conn struct {
	t      *testing.T
	tab    *Table
	m      *Mapping
	now    time.Time
	nxtIn  uint32 // the inside end's next sequence number
	nxtOut uint32 // the outside end's
	wscale uint8
}

const connWin = 512

func newConn(t *testing.T, isnIn, isnOut uint32) *conn {
	c := &conn{t: t, tab: newTable(t, nil), now: t0, nxtIn: isnIn, nxtOut: isnOut, wscale: 7}
	c.send(true, FlagSYN, 0)
	c.send(false, FlagSYN|FlagACK, 0)
	c.send(true, FlagACK, 0)
	if got := c.state(); got != "ESTABLISHED" {
		t.Fatalf("after the handshake: %s", got)
	}
	return c
}

// seg builds the segment the inside end (out) or the outside end sends
// next with flags and n bytes of data, without sending it.
func (c *conn) seg(out bool, flags uint8, n uint32) Segment {
	g := Segment{Flags: flags, Len: n, Window: connWin, WScale: NoWScale, HasSeq: true}
	if flags&FlagSYN != 0 {
		g.Window = 65535
		g.WScale = c.wscale
	}
	if out {
		g.Seq, g.Ack = c.nxtIn, c.nxtOut
	} else {
		g.Seq, g.Ack = c.nxtOut, c.nxtIn
	}
	return g
}

// send sends the next segment of one end and checks the table takes it.
func (c *conn) send(out bool, flags uint8, n uint32) {
	c.t.Helper()
	g := c.seg(out, flags, n)
	if v := c.deliver(out, g); v != Accept {
		c.t.Fatalf("segment %+v from %s: %v", g, side(out), v)
	}
	adv := n
	if flags&(FlagSYN|FlagFIN) != 0 {
		adv++
	}
	if out {
		c.nxtIn += adv
	} else {
		c.nxtOut += adv
	}
}

// deliver passes g through the table (the full path) and returns the
// verdict (Accept for an outbound one that passed).
func (c *conn) deliver(out bool, g Segment) Verdict {
	c.t.Helper()
	c.now = c.now.Add(time.Millisecond)
	a, r := ep(hostA, 40000), ep(srvA1, 443)
	if out {
		m, _, err := c.tab.OutboundSeg(TCP, a, r, g, c.now)
		if err != nil {
			c.t.Fatal(err)
		}
		c.m = m
		return Accept
	}
	_, v := c.tab.InboundSeg(TCP, c.m.External(), r, g, c.now)
	return v
}

func (c *conn) state() string {
	var st string
	c.m.Sessions(func(s SessionInfo) bool { st = s.State; return false })
	return st
}

// life is how long the session has left.
func (c *conn) life() time.Duration {
	var e time.Time
	c.m.Sessions(func(s SessionInfo) bool { e = s.Expires; return false })
	return e.Sub(c.now)
}

func side(out bool) string {
	if out {
		return "inside"
	}
	return "outside"
}

// A RST or FIN from outside counts only in the window of its session;
// one outside it is dropped as DropOutOfWindow and changes nothing: not
// the state, not the timer, not the counters.
func TestTCPWindowRejectsForgedTeardown(t *testing.T) {
	const est = 7440 * time.Second
	for _, isn := range []struct {
		name        string
		isnIn, isnO uint32
	}{
		{"low sequence numbers", 1000, 5000},
		{"wrapping past 2^32", 1<<32 - 300, 1<<32 - 100},
	} {
		t.Run(isn.name, func(t *testing.T) {
			c := newConn(t, isn.isnIn, isn.isnO)
			c.send(false, FlagACK|FlagPSH, 1000)
			c.send(true, FlagACK, 0)
			c.send(true, FlagACK|FlagPSH, 300)
			c.send(false, FlagACK, 0)
			win := uint32(connWin) << 7
			forged := []struct {
				name string
				g    Segment
			}{
				{"RST half the sequence space away", func() Segment { g := c.seg(false, FlagRST, 0); g.Seq += 1 << 31; return g }()},
				{"RST past the window", func() Segment { g := c.seg(false, FlagRST, 0); g.Seq += win + 1; return g }()},
				{"RST behind what the host acknowledged", func() Segment { g := c.seg(false, FlagRST, 0); g.Seq -= 1; return g }()},
				{"RST+ACK acknowledging data never sent", func() Segment {
					g := c.seg(false, FlagRST|FlagACK, 0)
					g.Ack += 1 << 20
					return g
				}()},
				{"FIN half the sequence space away", func() Segment { g := c.seg(false, FlagFIN|FlagACK, 0); g.Seq += 1 << 31; return g }()},
				{"FIN a window behind", func() Segment { g := c.seg(false, FlagFIN|FlagACK, 0); g.Seq -= win + 2000; return g }()},
			}
			for _, f := range forged {
				pkts, life := c.m.PacketsIn(), c.life()
				if v := c.deliver(false, f.g); v != DropOutOfWindow {
					t.Errorf("%s: %v, want %v", f.name, v, DropOutOfWindow)
				}
				if st := c.state(); st != "ESTABLISHED" {
					t.Errorf("%s: state %s, want ESTABLISHED", f.name, st)
				}
				if c.m.PacketsIn() != pkts || c.life() > life {
					t.Errorf("%s: counted or refreshed (packets %d -> %d, life %v -> %v)", f.name, pkts, c.m.PacketsIn(), life, c.life())
				}
			}
			// The connection's own FIN, a window's worth ahead of the last
			// acknowledgment (data in flight), still counts.
			c.send(false, FlagFIN|FlagACK, 0)
			if st := c.state(); st != "CLOSE_WAIT" {
				t.Errorf("after the real FIN: %s, want CLOSE_WAIT", st)
			}
			if c.life() >= est {
				t.Errorf("after the real FIN: life %v, want the transitory timeout", c.life())
			}
		})
	}
}

// A RST in the window closes the session after the transitory timeout
// (RFC 7857 §2.2), not at once; if both ends then go on, it was not the
// end of the connection and the session is established again.
func TestTCPRstTolerance(t *testing.T) {
	const est, tr = 7440 * time.Second, 240 * time.Second
	t.Run("the RST ends it", func(t *testing.T) {
		c := newConn(t, 1000, 5000)
		c.send(false, FlagACK|FlagPSH, 100)
		c.send(true, FlagACK, 0)
		// In the window, a little past the exact point: data the host
		// has not seen yet.
		g := c.seg(false, FlagRST, 0)
		g.Seq += 10
		if v := c.deliver(false, g); v != Accept {
			t.Fatalf("in-window RST: %v", v)
		}
		if st, life := c.state(), c.life(); st != "CLOSED" || life != tr {
			t.Fatalf("after the RST: %s for %v, want CLOSED for %v", st, life, tr)
		}
		// A straggler from inside does not bring it back.
		c.send(true, FlagACK|FlagPSH, 10)
		if st := c.state(); st != "CLOSED" {
			t.Errorf("after a straggler from inside: %s, want CLOSED", st)
		}
		if _, v := c.tab.Inbound(TCP, c.m.External(), ep(srvA1, 443), FlagACK, c.now.Add(tr)); v != DropNoMapping {
			t.Errorf("after the transitory timeout: %v, want the session gone", v)
		}
	})
	t.Run("the connection goes on", func(t *testing.T) {
		c := newConn(t, 1000, 5000)
		c.send(true, FlagRST|FlagACK, 0) // which the other end ignored
		if st := c.state(); st != "CLOSED" {
			t.Fatalf("after the RST: %s", st)
		}
		c.send(false, FlagACK|FlagPSH, 100)
		if st := c.state(); st != "CLOSED" {
			t.Errorf("one end sent since: %s, want still CLOSED", st)
		}
		c.send(true, FlagACK, 0)
		if st, life := c.state(), c.life(); st != "ESTABLISHED" || life != est {
			t.Errorf("both ends sent since: %s for %v, want ESTABLISHED for %v", st, life, est)
		}
	})
}

// Before the outside end has answered, a RST from it counts only if it
// acknowledges the SYN (RFC 9293 §3.10.7.3), as a refused connection's.
func TestTCPRstAnsweringSyn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint8
		ack   int64 // added to the acknowledgment of the SYN
		want  Verdict
	}{
		{"RST+ACK of the SYN", FlagRST | FlagACK, 0, Accept},
		{"RST+ACK of something else", FlagRST | FlagACK, 1 << 20, DropOutOfWindow},
		{"RST without ACK", FlagRST, 0, DropOutOfWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{t: t, tab: newTable(t, nil), now: t0, nxtIn: 1000, nxtOut: 0, wscale: 7}
			c.send(true, FlagSYN, 0)
			g := c.seg(false, tc.flags, 0)
			g.Ack += uint32(tc.ack)
			if v := c.deliver(false, g); v != tc.want {
				t.Fatalf("%v, want %v", v, tc.want)
			}
			want := "SYN_SENT"
			if tc.want == Accept {
				want = "CLOSED"
			}
			if st := c.state(); st != want {
				t.Errorf("state %s, want %s", st, want)
			}
		})
	}
}

// Picked up mid-stream (no SYN seen, as after a restart) the window
// scale is unknown and the largest is assumed, but a RST half the
// sequence space away is still refused.
func TestTCPWindowMidStream(t *testing.T) {
	c := &conn{t: t, tab: newTable(t, nil), now: t0, nxtIn: 70000, nxtOut: 900000}
	c.send(true, FlagACK|FlagPSH, 100)
	c.send(false, FlagACK|FlagPSH, 100)
	c.send(true, FlagACK, 0)
	if st := c.state(); st != "ESTABLISHED" {
		t.Fatalf("picked up: %s", st)
	}
	g := c.seg(false, FlagRST, 0)
	g.Seq += 1 << 31
	if v := c.deliver(false, g); v != DropOutOfWindow {
		t.Errorf("far RST: %v, want %v", v, DropOutOfWindow)
	}
	g = c.seg(false, FlagRST, 0)
	if v := c.deliver(false, g); v != Accept {
		t.Errorf("exact RST: %v, want Accept", v)
	}
}

// The hit path tracks the windows as the full path does and leaves every
// RST and FIN to it.
func TestTCPWindowHitPath(t *testing.T) {
	c := newConn(t, 1000, 5000)
	r := ep(srvA1, 443)
	h := Hits{c.tab}
	for range 100 {
		g := c.seg(false, FlagACK|FlagPSH, 1400)
		if _, v, ok := h.InboundHitSeg(TCP, c.m.External(), r, &g, 1400, c.now); !ok || v != Accept {
			t.Fatalf("inbound data on the hit path: %v %v", ok, v)
		}
		c.nxtOut += 1400
		g = c.seg(true, FlagACK, 0)
		if h.OutboundHitSeg(TCP, ep(hostA, 40000), r, &g, 60, c.now) == nil {
			t.Fatal("outbound ACK not a hit")
		}
	}
	for _, flags := range []uint8{FlagRST, FlagFIN | FlagACK} {
		g := c.seg(false, flags, 0)
		if _, _, ok := h.InboundHitSeg(TCP, c.m.External(), r, &g, 40, c.now); ok {
			t.Errorf("flags %#x: a hit", flags)
		}
	}
	// The windows moved with the hits: the RST at the connection's
	// point now, 140 KB past the handshake's window, counts.
	g := c.seg(false, FlagRST, 0)
	g.Seq -= 1 << 31
	if v := c.deliver(false, g); v != DropOutOfWindow {
		t.Errorf("far RST: %v", v)
	}
	if v := c.deliver(false, c.seg(false, FlagRST, 0)); v != Accept {
		t.Errorf("RST at the point the hits reached: %v, want Accept", v)
	}
}

// Each session of a mapping has windows of its own, which stay with it
// when lapsed sessions are pruned away.
func TestTCPWindowPerSession(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.TCPTransitoryTimeout = time.Minute })
	a := ep(hostA, 40000)
	now := t0
	const n = 2 * indexThreshold
	isn := func(k int) uint32 { return uint32(k) << 24 }
	var m *Mapping
	// Session 0 stays half open and lapses; the others are established.
	for k := range n {
		r := ep(srvA1, uint16(1000+k))
		var err error
		m, _, err = tab.OutboundSeg(TCP, a, r, Segment{Seq: 7, Flags: FlagSYN, Window: 100, WScale: NoWScale, HasSeq: true}, now)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			continue
		}
		if _, v := tab.InboundSeg(TCP, m.External(), r, Segment{Seq: isn(k), Ack: 8, Flags: FlagSYN | FlagACK, Window: 100, WScale: NoWScale, HasSeq: true}, now); v != Accept {
			t.Fatalf("SYN-ACK %d: %v", k, v)
		}
		tab.OutboundSeg(TCP, a, r, Segment{Seq: 8, Ack: isn(k) + 1, Flags: FlagACK, Window: 100, HasSeq: true}, now)
	}
	now = now.Add(2 * time.Minute)
	m.prune(now.Sub(tab.epoch))
	if m.nsess != n-1 {
		t.Fatalf("%d sessions after pruning, want %d", m.nsess, n-1)
	}
	for k := 1; k < n; k++ {
		r := ep(srvA1, uint16(1000+k))
		other := isn(k%(n-1) + 1) // the next session's
		if _, v := tab.InboundSeg(TCP, m.External(), r, Segment{Seq: other + 1, Flags: FlagRST, HasSeq: true}, now); v != DropOutOfWindow {
			t.Errorf("session %d: a RST in session %d's window: %v", k, k%(n-1)+1, v)
		}
		if _, v := tab.InboundSeg(TCP, m.External(), r, Segment{Seq: isn(k) + 1, Flags: FlagRST, HasSeq: true}, now); v != Accept {
			t.Errorf("session %d: its own RST: %v", k, v)
		}
	}
}
