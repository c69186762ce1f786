package nat

import (
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

func TestTokenBucket(t *testing.T) {
	b := tokenBucket{rate: 10}
	n := 0
	for range 100 {
		if b.take(t0) {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("burst at one instant: %d, want 10", n)
	}
	// A clock a little behind adds nothing; time passed adds tokens.
	if b.take(t0.Add(-time.Millisecond)) {
		t.Fatal("an earlier now gave a token")
	}
	n = 0
	for i := range 1000 { // 1 s in 1 ms steps
		if b.take(t0.Add(time.Duration(i+1) * time.Millisecond)) {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("over 1 s: %d, want 10", n)
	}
	if (&tokenBucket{}).take(t0) {
		t.Fatal("rate 0 gave a token")
	}
}

// Each limit gives its verdict and a 3/13 back, at most LimitReplyRate
// of them per second; the live mappings stay.
func TestLimitsVerdictsAndReplies(t *testing.T) {
	const rate = 5
	e := newEngine(t, "full-cone", func(c *table.Config) {
		c.LimitMappingsPerHost = 2
		c.LimitSessionsPerMapping = 3
		c.LimitReplyRate = rate
	})
	for i := range 2 {
		if r, _ := process(t, e, 1, udpPkt(ap(hostA, uint16(30000+i)), ap(srv1, 1), 64, "x"), t0); r.Verdict != Forward {
			t.Fatalf("mapping %d: %v", i, r.Verdict)
		}
	}
	replies := 0
	for i := range 20 {
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
	if replies != rate {
		t.Errorf("%d 3/13 replies at one instant, want %d", replies, rate)
	}
	// Host B is not starved.
	if r, _ := process(t, e, 2, tcpPkt(ap(hostB, 40000), ap(srv1, 80), header.TCPSyn), t0); r.Verdict != Forward {
		t.Fatalf("host B: %v", r.Verdict)
	}
	// Spoofed SYNs from outside to B's full-cone mapping: capped.
	later := t0.Add(time.Second)
	replies = 0
	for i := range 50 {
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
	if replies != rate {
		t.Errorf("%d 3/13 replies to SYNs, want %d", replies, rate)
	}
	if got := e.Count(DropLimitSessionsPerMapping); got != 48 {
		t.Errorf("limit-sessions-per-mapping counted %d, want 48", got)
	}
	// The first session still carries traffic both ways.
	if r, _ := process(t, e, Outside, tcpPkt(ap(srv1, 80), ap(ext, 40000), header.TCPSyn|header.TCPAck), later); r.Verdict != Forward {
		t.Fatalf("B's connection: %v", r.Verdict)
	}
}
