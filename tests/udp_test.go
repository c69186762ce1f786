package tests

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A UDP mapping lives --udp-timeout after its last outbound packet, and
// not longer (RFC 4787 REQ-5; inbound packets do not refresh it, REQ-6).
func TestUDPMappingExpires(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	const timeout = 2 * time.Second
	tp.startNAT("--preset", "full-cone", "--udp-timeout", timeout.String())
	a := udp(t, tp.A, ":5000")
	ma := mapped(t, a, stunServer)
	lastOut := time.Now()
	w := udp(t, tp.WAN, "203.0.113.2:4000")

	// Well before the timeout: full cone admits anyone.
	time.Sleep(timeout / 2)
	w.WriteToUDPAddrPort([]byte("still there?"), ma)
	if msg, _, err := recvFrom(a, time.Second); err != nil || msg != "still there?" {
		t.Fatalf("before the timeout the mapping must be alive: %q %v", msg, err)
	}
	if time.Since(lastOut) >= timeout {
		t.Skip("machine too slow to observe the live mapping before its timeout")
	}
	// Past the timeout (inbound did not refresh it).
	time.Sleep(time.Until(lastOut.Add(timeout + 500*time.Millisecond)))
	w.WriteToUDPAddrPort([]byte("too late"), ma)
	if msg, from, err := recvFrom(a, 700*time.Millisecond); err == nil {
		t.Fatalf("mapping outlived --udp-timeout: got %q from %s", msg, from)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !tp.stdout.contains("EXPIRE udp 10.0.0.2:5000") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !tp.stdout.contains("EXPIRE udp 10.0.0.2:5000") {
		t.Errorf("-v did not report the expiry:\n%s", tp.stdout.String())
	}
	if got := tp.stdout.lines("NEW udp 10.0.0.2:5000"); len(got) != 1 || !strings.Contains(got[0], ma.String()) {
		t.Errorf("-v NEW lines for A:5000 = %q; want one naming %s", got, ma)
	}
}

// Inside hosts reach each other directly, untranslated; payloads that
// embed a private address arrive unchanged (REQ-10: no ALG).
func TestInsideToInsideAndNoALG(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT()
	a, b := udp(t, tp.A, ":5000"), udp(t, tp.B, ":5555")
	a.WriteToUDPAddrPort([]byte("hi B"), netip.AddrPortFrom(hostB, 5555))
	msg, from, err := recvFrom(b, 2*time.Second)
	if err != nil || msg != "hi B" || from != netip.AddrPortFrom(hostA, 5000) {
		t.Errorf("B got %q from %s (%v); want \"hi B\" from 10.0.0.2:5000 untranslated", msg, from, err)
	}
	w := udp(t, tp.WAN, "203.0.113.1:4001")
	payload := "my address is 10.0.0.2:5000"
	a.WriteToUDPAddrPort([]byte(payload), netip.MustParseAddrPort("203.0.113.1:4001"))
	msg, from, err = recvFrom(w, 2*time.Second)
	if err != nil || msg != payload {
		t.Errorf("server got %q (%v); the payload must arrive unchanged", msg, err)
	}
	if from.Addr() != ext1 {
		t.Errorf("server saw source %s, want %s", from, ext1)
	}
}
