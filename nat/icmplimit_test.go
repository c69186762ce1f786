package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// ICMP errors the NAT makes are rate-limited per destination (a burst of
// 6, then one per interval) and in all (a burst of 50, then rate per
// second); the TTL=1 reflector is limited the same way. Every packet
// keeps the verdict it was dropped for; the errors held back are counted
// apart.
func TestICMPErrorRateLimit(t *testing.T) {
	probe := func(src netip.Addr) []byte { return udpPkt(ap(src, 4000), ap(ext, 33434), 1, "probe") }
	count := func(t *testing.T, e *Engine, srcs func(i int) netip.Addr, n int, now func(i int) time.Time) (sent int) {
		for i := range n {
			r, _ := process(t, e, Outside, probe(srcs(i)), now(i))
			switch {
			case r.Verdict == DropTTLExceeded && r.ReplyLen > 0:
				sent++
			case r.Verdict != DropTTLExceeded:
				t.Fatalf("probe %d: %v", i, r.Verdict)
			}
		}
		return sent
	}
	at := func(time.Time) func(int) time.Time { return func(int) time.Time { return t0 } }(t0)
	one := func(int) netip.Addr { return srv1 }
	many := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{203, 0, byte(113 + i/250), byte(1 + i%250)}) }

	t.Run("per destination", func(t *testing.T) {
		e := newEngine(t, "full-cone")
		if n := count(t, e, one, 2000, at); n != 6 {
			t.Fatalf("2000 probes at once from one source: %d answers, want 6", n)
		}
		// 2000 more over 10 s: one answer a second.
		if n := count(t, e, one, 2000, func(i int) time.Time { return t0.Add(time.Duration(i+1) * 5 * time.Millisecond) }); n != 10 {
			t.Fatalf("2000 probes over 10 s: %d answers, want 10", n)
		}
		if c := e.Count(DropTTLExceeded); c != 4000 {
			t.Fatalf("ttl-exceeded counted %d, want 4000", c)
		}
		if c := e.ICMPErrorsLimited(); c != 4000-16 {
			t.Fatalf("%d errors held back, want %d", c, 4000-16)
		}
	})
	t.Run("in all", func(t *testing.T) {
		e := newEngine(t, "full-cone", func(c *table.Config) { c.ICMPRate = 100 })
		if n := count(t, e, many, 2000, at); n != 50 {
			t.Fatalf("2000 probes at once from 2000 sources: %d answers, want the burst of 50", n)
		}
		// Over the next second: 100 more.
		if n := count(t, e, many, 2000, func(i int) time.Time { return t0.Add(time.Duration(i+1) * 500 * time.Microsecond) }); n != 100 {
			t.Fatalf("2000 probes over 1 s: %d answers, want 100", n)
		}
	})
	t.Run("no limit", func(t *testing.T) {
		e := newEngine(t, "full-cone", func(c *table.Config) { c.ICMPRate, c.ICMPInterval = 0, 0 })
		if n := count(t, e, one, 500, at); n != 500 {
			t.Fatalf("%d answers of 500", n)
		}
	})
	t.Run("ports exhausted", func(t *testing.T) {
		e := newEngine(t, "symmetric", func(c *table.Config) { c.PortLo, c.PortHi = 2000, 2000 })
		process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "takes the port"), t0)
		sent := 0
		for i := range 100 {
			r, _ := process(t, e, 1, udpPkt(ap(hostA, uint16(6000+i)), ap(srv1, 9), 64, "x"), t0)
			switch {
			case r.Verdict == DropPoolExhausted && r.ReplyLen > 0:
				sent++
			case r.Verdict != DropPoolExhausted:
				t.Fatalf("flow %d: %v", i, r.Verdict)
			}
		}
		if sent != 6 {
			t.Fatalf("%d ICMP 3/13 to one host, want 6", sent)
		}
		if c := e.ICMPErrorsLimited(); c != 100-6 {
			t.Fatalf("%d errors held back, want %d", c, 100-6)
		}
	})
	// Time Exceeded and 3/13 draw on the same buckets: a remote that used
	// its burst on TTL=1 probes gets no 3/13 for a SYN a limit refuses.
	t.Run("one limiter for all errors", func(t *testing.T) {
		e := newEngine(t, "full-cone", func(c *table.Config) { c.LimitSessionsPerMapping = 1 })
		process(t, e, 1, tcpPkt(ap(hostA, 5000), ap(srv1, 80), header.TCPSyn), t0)
		if n := count(t, e, func(int) netip.Addr { return srv2 }, icmpDestBurst, at); n != icmpDestBurst {
			t.Fatalf("%d answers to the first probes, want %d", n, icmpDestBurst)
		}
		r, _ := process(t, e, Outside, tcpPkt(ap(srv2, 1), ap(ext, 5000), header.TCPSyn), t0)
		if r.Verdict != DropLimitSessionsPerMapping || r.ReplyLen != 0 {
			t.Fatalf("refused SYN: %v, reply of %d bytes; want %v and none", r.Verdict, r.ReplyLen, DropLimitSessionsPerMapping)
		}
		if c := e.ICMPErrorsLimited(); c != 1 {
			t.Fatalf("%d errors held back, want 1", c)
		}
	})
}

// SetTableConfig applies new limits.
func TestICMPRateLimitReconfigured(t *testing.T) {
	e := newEngine(t, "full-cone")
	c := e.Config().Table
	c.ICMPInterval = 0
	if err := e.SetTableConfig(c); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for range 20 {
		if r, _ := process(t, e, Outside, udpPkt(ap(srv1, 4000), ap(ext, 33434), 1, "p"), t0); r.ReplyLen > 0 {
			sent++
		}
	}
	if sent != 20 {
		t.Fatalf("%d answers of 20 with no per-destination limit", sent)
	}
}
