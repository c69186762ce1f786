package tests

import (
	"strings"
	"testing"
	"time"
)

// `gonat probe` with its default RTO, as a user runs it: each RFC 5780
// test is announced on stderr as it starts, the silent filtering tests of
// a filtering NAT end after the RTO the first round trip allows (not the
// 11.5 s of a 500 ms RTO), and through a symmetric NAT, whose hairpinning
// the probe cannot see, hairpin is "unseen", not "no".
func TestProbeProgressAndWaits(t *testing.T) {
	cases := []struct{ preset, classic, hairpin string }{
		{"port-restricted-cone", "port restricted cone", "hairpin    yes"},
		{"symmetric", "symmetric", "hairpin    unseen"},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			tp.startSTUN()
			tp.startNAT("--preset", c.preset)
			start := time.Now()
			out, err := inNS(t, 60*time.Second, tp.A, gonatBin, "probe", "--server", stunServer.String())
			took := time.Since(start)
			if err != nil {
				t.Fatalf("gonat probe: %v\n%s", err, out)
			}
			for _, want := range []string{"probe: binding", "probe: port assignment", "probe: mapping", "probe: filtering", "classic    " + c.classic, c.hairpin} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in the output:\n%s", want, out)
				}
			}
			if took > 6*time.Second {
				t.Errorf("probe took %v, want the silent tests over in about 2.3 s", took)
			}
		})
	}
}
