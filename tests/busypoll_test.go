package tests

import (
	"path/filepath"
	"testing"
)

// gonat run --busy-poll translates as the default reader does, also
// behind a pcap tap (which must pass the polling through), and exits
// clean on SIGTERM (stopNAT checks exit 0 and no device left).
func TestBusyPollCLI(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--busy-poll", "100ms", "--tun-backend", "offload", "--pcap-outside", filepath.Join(t.TempDir(), "out.pcap"))
	m := mapped(t, udp(t, tp.A, ":5000"), stunServer)
	if m.Addr() != ext1 {
		t.Errorf("STUN server saw %s; want the external address %s", m, ext1)
	}
	// A second flow, from another host, gets its own mapping.
	if m2 := mapped(t, udp(t, tp.B, ":5000"), stunServer); m2 == m || m2.Addr() != ext1 {
		t.Errorf("second host mapped to %s (first %s); want a distinct endpoint on %s", m2, m, ext1)
	}
	tp.stopNAT()
}
