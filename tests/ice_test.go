package tests

import (
	"os"
	"strings"
	"testing"
)

// A real ICE agent as the judge: the module in icejudge/ runs two
// pion/ice agents in a lab's hosts for the two pairs that decide between
// an RFC 8445 agent and permissive punching, and checks that they connect
// exactly where experiment.Expected says. It is a module of its own (so
// gonat does not depend on pion/ice), run here as a subprocess with this
// run's gonat binary.
func TestICEJudge(t *testing.T) {
	// Labs of a prefix of their own: the module's lab counter starts
	// again at 1, and under this process's prefix its names would be
	// those of labs this process made.
	out, err := goTestModule(t, "icejudge", append(os.Environ(), "GONAT="+gonatBin, "GONAT_LABTEST_PREFIX="+runPrefix+"i"))
	if err != nil {
		t.Fatalf("go test in icejudge: %v\n%s", err, out)
	}
	if !strings.Contains(out, "--- PASS: TestICEAgentAgreesWithModel") {
		t.Fatalf("go test in icejudge passed without running the agents:\n%s", out)
	}
	t.Logf("%s", out)
}
