package tests

import (
	"net/netip"
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
