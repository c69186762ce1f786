package stun

import (
	"context"
	"testing"

	"github.com/gonat/gonat/table"
)

// Each port assignment of the test NAT is told apart; busy local ports are
// skipped, not fatal.
func TestProbePortAssignment(t *testing.T) {
	s := startServer(t)
	for _, mode := range []table.PortAssignment{table.Preserve, table.Sequential, table.Random} {
		t.Run(mode.String(), func(t *testing.T) {
			nat := newFakeNAT(t, table.EndpointIndependent, table.AddressAndPortDependent)
			nat.portAssign = mode
			nat.refuse = 2
			res, err := Probe(context.Background(), ProbeConfig{Server: s.Addrs()[0], ListenPacket: nat.listen, RTO: testRTO, Retries: testRetries})
			if err != nil {
				t.Fatal(err)
			}
			if res.PortAssignment != Seen(mode) {
				t.Errorf("PortAssignment %q, want %q", res.PortAssignment, mode)
			}
			if res.Classic != ClassicPortRestrictedCone {
				t.Errorf("classic %q: the port test disturbed the others? %+v", res.Classic, res)
			}
			nat.mu.Lock()
			refused := nat.refused
			nat.mu.Unlock()
			if refused != 2 {
				t.Errorf("%d listens refused, want 2", refused)
			}
		})
	}
}

// PortSamples: negative skips the test; one sample can only tell preserve.
func TestProbePortSamples(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		mode    table.PortAssignment
		samples int
		want    ObservedPorts
	}{
		{table.Preserve, -1, ObservedPorts{}},
		{table.Preserve, 1, Seen(table.Preserve)},
		{table.Sequential, 1, ObservedPorts{}},
		{table.Sequential, 2, Seen(table.Sequential)},
	} {
		nat := newFakeNAT(t, table.EndpointIndependent, table.EndpointIndependent)
		nat.portAssign = tc.mode
		res, err := Probe(context.Background(), ProbeConfig{Server: s.Addrs()[0], ListenPacket: nat.listen,
			RTO: testRTO, Retries: testRetries, PortSamples: tc.samples})
		if err != nil {
			t.Fatal(err)
		}
		if res.PortAssignment != tc.want {
			t.Errorf("%s NAT, %d samples: PortAssignment %q, want %q", tc.mode, tc.samples, res.PortAssignment, tc.want)
		}
	}
}
