package tests

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The linux preset's UDP timers, shortened: a mapping nothing has come
// back on lapses after --udp-unreplied-timeout; one that got an answer
// lives on for --udp-timeout (Linux conntrack's udp_timeout 30 s and
// udp_timeout_stream 120 s).
func TestLinuxUDPUnreplied(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--preset", "linux", "--udp-unreplied-timeout", "1s", "--udp-timeout", "6s")
	silent := udp(t, tp.A, ":5000")
	// Nobody listens there: the port unreachable that comes back is an
	// ICMP error, not an answer.
	if _, err := silent.WriteToUDPAddrPort([]byte("anyone?"), netip.AddrPortFrom(srv1, 9)); err != nil {
		t.Fatal(err)
	}
	answered := udp(t, tp.A, ":5001")
	m1 := mapped(t, answered, stunServer)
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	for !tp.stdout.contains("EXPIRE udp 10.0.0.2:5000") {
		if time.Now().After(deadline) {
			t.Fatalf("the unanswered mapping did not lapse within 5s of a 1s unreplied timer:\n%s", tp.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("the unanswered mapping lapsed %v after its packet; want about 1s", d)
	}
	time.Sleep(time.Until(start.Add(2 * time.Second)))
	if tp.stdout.contains("EXPIRE udp 10.0.0.2:5001") {
		t.Fatal("the answered mapping lapsed after 2s; want the 6s udp-timeout")
	}
	if m2 := mapped(t, answered, stunServer); m2 != m1 {
		t.Errorf("answered mapping moved from %s to %s", m1, m2)
	}
}

// Port overloading in the linux preset, with real kernels at both ends: A
// and B both bind port 5000; A talks to S1, B to S2, and both are seen as
// external port 5000 (the reply tuples differ, as Linux allows). Each
// gets its own replies. When B then talks to S1, whose tuple with 5000 is
// A's, S1 sees B on another port.
func TestLinuxPortOverloading(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--preset", "linux")
	echo := func(addr netip.Addr) netip.AddrPort {
		c := udp(t, tp.WAN, netip.AddrPortFrom(addr, 7000).String())
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				// Answer with who sent it, as seen here.
				c.WriteToUDPAddrPort(append(buf[:n:n], " from "+from.String()...), from)
			}
		}()
		return netip.AddrPortFrom(addr, 7000)
	}
	s1, s2 := echo(srv1), echo(srv2)
	a, b := udp(t, tp.A, ":5000"), udp(t, tp.B, ":5000")
	ask := func(c *net.UDPConn, who string, to netip.AddrPort) string {
		t.Helper()
		for try := 0; try < 5; try++ {
			c.WriteToUDPAddrPort([]byte(who), to)
			msg, from, err := recvFrom(c, 300*time.Millisecond)
			if err == nil && from == to {
				return msg
			}
		}
		t.Fatalf("%s got no answer from %s", who, to)
		return ""
	}
	ext5000 := netip.AddrPortFrom(ext1, 5000).String()
	if got := ask(a, "A", s1); got != "A from "+ext5000 {
		t.Errorf("S1 answered A: %q; want A seen as %s", got, ext5000)
	}
	if got := ask(b, "B", s2); got != "B from "+ext5000 {
		t.Errorf("S2 answered B: %q; want B seen as %s too (port overloading)", got, ext5000)
	}
	got := ask(b, "B", s1)
	if got == "B from "+ext5000 || !strings.HasPrefix(got, "B from "+ext1.String()+":") {
		t.Errorf("S1 answered B: %q; want B on another port of %s (S1's tuple with 5000 is A's)", got, ext1)
	}
	if got := ask(a, "A", s1); got != "A from "+ext5000 {
		t.Errorf("S1 answered A again: %q; want %s still", got, ext5000)
	}
}
