package nat

import (
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// Each limit gives its verdict to every packet it refuses, and a 3/13
// back within the ICMP error limits (per destination, then in all); the
// errors held back are counted apart and noted in the trace; the live
// mappings stay.
func TestLimitsVerdictsAndReplies(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rate     int
		interval time.Duration
		// 3/13 sent: to host A at one instant; to one remote a second later
		flows, syns int
	}{
		{"per destination", table.DefaultICMPRate, table.DefaultICMPInterval, icmpDestBurst, icmpDestBurst},
		{"in all", 1, 0, icmpBurst, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, "full-cone", func(c *table.Config) {
				c.LimitMappingsPerHost = 2
				c.LimitSessionsPerMapping = 3
				c.ICMPRate, c.ICMPInterval = tc.rate, tc.interval
			})
			var limitedLines, sentLines int
			e.SetObserver(func(ev Event) {
				if ev.Kind != EventDrop {
					return
				}
				if strings.HasSuffix(ev.String(), "  (ICMP error rate-limited)") {
					limitedLines++
				} else {
					sentLines++
				}
			})
			e.SetTracing(true)
			for i := range 2 {
				if r, _ := process(t, e, 1, udpPkt(ap(hostA, uint16(30000+i)), ap(srv1, 1), 64, "x"), t0); r.Verdict != Forward {
					t.Fatalf("mapping %d: %v", i, r.Verdict)
				}
			}
			replies := 0
			for i := range 60 {
				r, p := process(t, e, 1, udpPkt(ap(hostA, uint16(31000+i)), ap(srv1, 1), 64, "x"), t0)
				if r.Verdict != DropLimitMappingsPerHost {
					t.Fatalf("new flow %d: %v, want %v", i, r.Verdict, DropLimitMappingsPerHost)
				}
				if r.ReplyLen > 0 {
					replies++
					if p.ICMPType != header.ICMPDestUnreachable || p.ICMPCode != header.ICMPCodeAdminProhibited || p.Src.Addr() != gw {
						t.Fatalf("reply type %d code %d from %s", p.ICMPType, p.ICMPCode, p.Src.Addr())
					}
				}
			}
			if replies != tc.flows {
				t.Errorf("%d 3/13 replies at one instant, want %d", replies, tc.flows)
			}
			if got := e.Count(DropLimitMappingsPerHost); got != 60 {
				t.Errorf("limit-mappings-per-host counted %d, want 60", got)
			}
			if got := e.ICMPErrorsLimited(); got != uint64(60-tc.flows) {
				t.Errorf("%d errors held back, want %d", got, 60-tc.flows)
			}
			// Host B is not starved.
			if r, _ := process(t, e, 2, tcpPkt(ap(hostB, 40000), ap(srv1, 80), header.TCPSyn), t0); r.Verdict != Forward {
				t.Fatalf("host B: %v", r.Verdict)
			}
			// Spoofed SYNs from outside to B's full-cone mapping: capped.
			later := t0.Add(time.Second)
			replies = 0
			for i := range 80 {
				src := ap(srv2, uint16(1000+i))
				r, p := process(t, e, Outside, tcpPkt(src, ap(ext, 40000), header.TCPSyn), later)
				want := DropLimitSessionsPerMapping
				if i < 2 {
					want = Forward
				}
				if r.Verdict != want {
					t.Fatalf("SYN %d: %v, want %v", i, r.Verdict, want)
				}
				if r.ReplyLen > 0 {
					replies++
					if p.Src.Addr() != ext || p.Dst.Addr() != srv2 || p.ICMPCode != header.ICMPCodeAdminProhibited {
						t.Fatalf("reply %s -> %s code %d", p.Src, p.Dst, p.ICMPCode)
					}
				}
			}
			if replies != tc.syns {
				t.Errorf("%d 3/13 replies to SYNs, want %d", replies, tc.syns)
			}
			if got := e.Count(DropLimitSessionsPerMapping); got != 78 {
				t.Errorf("limit-sessions-per-mapping counted %d, want 78", got)
			}
			held := uint64(60 - tc.flows + 78 - tc.syns)
			if got := e.ICMPErrorsLimited(); got != held {
				t.Errorf("%d errors held back, want %d", got, held)
			}
			if uint64(limitedLines) != held || sentLines != tc.flows+tc.syns {
				t.Errorf("trace: %d drops noted rate-limited, %d not; want %d and %d", limitedLines, sentLines, held, tc.flows+tc.syns)
			}
			// The first session still carries traffic both ways.
			if r, _ := process(t, e, Outside, tcpPkt(ap(srv1, 80), ap(ext, 40000), header.TCPSyn|header.TCPAck), later); r.Verdict != Forward {
				t.Fatalf("B's connection: %v", r.Verdict)
			}
		})
	}
}
