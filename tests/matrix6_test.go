package tests

// The hole-punching matrix over IPv6: peers behind NATs whose IPv6 is
// routed (no translation, RFC 6092 firewall) in real labs, and the modes
// that carry no IPv6 refused by gonat matrix --ipv6.

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/experiment"
	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/table"
)

func TestMatrixIPv6(t *testing.T) {
	for _, mode := range []string{"none", "blackhole", "reject"} {
		out, err := exec.Command(gonatBin, "matrix", "--ipv6", mode).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "lets no IPv6 through") {
			t.Errorf("gonat matrix --ipv6 %s: %v\n%s\nwant exit 2 and the reason", mode, err, out)
		}
	}
	privtest.Require(t)
	// Full cone (no filter) and port-restricted cone (the strictest
	// filter): three pairs. The filtering is the firewall's; the mapping
	// is the host's own endpoint, so every pair connects, as RFC 8445
	// agents judge it, over UDP and with TCP simultaneous open.
	classic := experiment.ClassicTypes()
	types := []experiment.NATType{classic[0], classic[2]}
	for _, tcp := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		outs, err := experiment.RunMatrix(ctx, experiment.MatrixConfig{
			Types: types, TCP: tcp, Parallel: 2, Timeout: 5 * time.Second, GonatPath: gonatBin, IPv6: table.IPv6Routed})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 3 {
			t.Fatalf("tcp %v: %d outcomes, want 3", tcp, len(outs))
		}
		for _, o := range outs {
			t.Logf("tcp %v: %s x %s: connected %v in %v: %s", tcp, o.A, o.B, o.Connected, o.Elapsed, o.Pair)
			if !o.Agrees() || !o.Connected {
				t.Errorf("tcp %v: %s x %s: connected %v, expected %v, error %q, reason %q", tcp, o.A, o.B, o.Connected, o.Expected, o.Err, o.Reason)
			}
			// Host candidates on both sides: nothing translated the
			// peers' own IPv6 endpoints.
			if !strings.Contains(o.Pair, "[fd00:1::2]:") || !strings.Contains(o.Pair, "[fd00:2::2]:") {
				t.Errorf("tcp %v: %s x %s connected by %q, want alice's and bob's own IPv6 addresses", tcp, o.A, o.B, o.Pair)
			}
		}
	}
	// nat66 translates with the IPv4 side's behaviours, so the pairs
	// come out as the IPv4 table says: port-restricted cones connect
	// through their external IPv6 endpoints, a symmetric NAT beside a
	// port-restricted or symmetric one does not.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	outs, err := experiment.RunMatrix(ctx, experiment.MatrixConfig{
		Types: []experiment.NATType{classic[2], classic[3]}, Parallel: 3, Timeout: 3 * time.Second, GonatPath: gonatBin, IPv6: table.IPv6NAT66})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 {
		t.Fatalf("nat66: %d outcomes, want 3", len(outs))
	}
	for _, o := range outs {
		t.Logf("nat66: %s x %s: connected %v in %v: %s", o.A, o.B, o.Connected, o.Elapsed, o.Pair)
		want := o.A == classic[2].Name && o.B == classic[2].Name
		if !o.Agrees() || o.Connected != want {
			t.Errorf("nat66: %s x %s: connected %v, want %v (expected %v), error %q, reason %q", o.A, o.B, o.Connected, want, o.Expected, o.Err, o.Reason)
		}
		if o.Connected && (strings.Contains(o.Pair, "fd00:") || !strings.Contains(o.Pair, "2001:db8:")) {
			t.Errorf("nat66: %s x %s connected by %q, want both peers' external IPv6 endpoints", o.A, o.B, o.Pair)
		}
	}
}
