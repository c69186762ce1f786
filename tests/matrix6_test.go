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
}
