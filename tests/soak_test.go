package tests

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gonat/gonat/ns"
)

// The soak program (go run ./bench -soak DURATION, make soak) runs a short
// while: it prints a line per interval with the figures it watches, then
// its table, loses no flow on a healthy NAT, and leaves no namespace
// behind. Its verdict needs minutes and is not asserted here.
func TestSoakSmoke(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.Command("go", "build", "-o", bin, "../bench").CombinedOutput(); err != nil {
		t.Fatalf("build bench: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-gonat", gonatBin, "-soak", "20s", "-soak-every", "5s", "-soak-udp", "50", "-soak-tcp", "5")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	prefix := fmt.Sprintf("gs%x-", cmd.Process.Pid)
	names, _ := ns.List()
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			t.Errorf("namespace %s left behind", n)
			ns.Delete(n)
		}
	}
	if err != nil {
		t.Fatalf("soak: %v\n%s", err, out.String())
	}
	line := regexp.MustCompile(`(?m)^soak: (\d+)s rss [0-9.]+ MB goroutines (-|\d+) threads \d+ fds \d+ mappings (\d+) \(created \d+ expired \d+\) short flows (\d+) \((\d+) failed\) long echoes (\d+) \((\d+) missed\)$`)
	got := line.FindAllStringSubmatch(out.String(), -1)
	if len(got) != 4 {
		t.Fatalf("%d sample lines, want 4:\n%s", len(got), out.String())
	}
	last := got[3]
	if last[3] == "0" || last[4] == "0" || last[6] == "0" {
		t.Errorf("no mappings or flows in %q", last[0])
	}
	if last[5] != "0" || last[7] != "0" {
		t.Errorf("flows lost: %q", last[0])
	}
	if !strings.Contains(out.String(), "| time | RSS MB |") || !strings.Contains(out.String(), "soak: no verdict") {
		t.Errorf("no table or no-verdict line:\n%s", out.String())
	}
}
