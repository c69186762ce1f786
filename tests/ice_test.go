package tests

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A real ICE agent as the judge: the module in icejudge/ runs two
// pion/ice agents in a lab's hosts for the two pairs that decide between
// an RFC 8445 agent and permissive punching, and checks that they connect
// exactly where experiment.Expected says. It is a module of its own (so
// gonat does not depend on pion/ice), run here as a subprocess with this
// run's gonat binary.
func TestICEJudge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "./...")
	cmd.Dir = "icejudge"
	// Labs of a prefix of their own: the module's lab counter starts
	// again at 1, and under this process's prefix its names would be
	// those of labs this process made.
	cmd.Env = append(os.Environ(), "GONAT="+gonatBin, "GONAT_LABTEST_PREFIX="+runPrefix+"i")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in icejudge: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestICEAgentAgreesWithModel") {
		t.Fatalf("go test in icejudge passed without running the agents:\n%s", out)
	}
	t.Logf("%s", out)
}
