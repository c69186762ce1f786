package tests

import (
	"os"
	"strings"
	"testing"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/ns"
)

// lab/labtest as a project outside this module uses it (labtestmod/, a
// module of its own with a replace directive): the README's code starts
// the STUN server of examples/two-homes.toml with a gonat labtest builds
// itself, never the test binary; it answers a real Binding request; a
// test that fails gets the hosts' output attached and a clear message
// for a NAT that does not exist; no namespace is left either way.
func TestLabtestFromAnotherModule(t *testing.T) {
	privtest.Tool(t, "go")
	prefix := runPrefix + "m"
	// Its own temporary directory: the gonat labtest builds goes there
	// and away with it.
	env := []string{"GONAT_LABTEST_PREFIX=" + prefix, "CI=true", "TMPDIR=" + t.TempDir()}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "GONAT_BIN" && k != "GONAT_LABTEST_PREFIX" && k != "CI" && k != "TMPDIR" {
			env = append(env, kv)
		}
	}
	noneLeft := func() {
		t.Helper()
		all, _ := ns.List()
		for _, n := range all {
			if strings.HasPrefix(n, prefix) {
				t.Errorf("namespace %s left behind by the labtestmod test", n)
				ns.Delete(n)
			}
		}
	}

	out, err := goTestModule(t, "labtestmod", env)
	if strings.Contains(out, "updates to go.mod needed") || strings.Contains(out, "missing go.sum entry") {
		// gonat's own requirements changed: the module must follow.
		t.Fatalf("labtestmod's go.mod/go.sum lag behind gonat's; update them with\n"+
			"  cd tests/labtestmod && cp ../../go.sum . && GOFLAGS=-mod=mod go test -c -o /dev/null .\n%s", out)
	}
	if err != nil || !strings.Contains(out, "--- PASS: TestSTUNFromTwoHomes") || !strings.Contains(out, "seen by the STUN server as 198.51.100.1:") {
		t.Errorf("labtestmod: %v\n%s", err, out)
	}
	noneLeft()

	out, err = goTestModule(t, "labtestmod", env, "-args", "-fail-on-purpose")
	if err == nil {
		t.Errorf("labtestmod -fail-on-purpose passed:\n%s", out)
	}
	for _, want := range []string{`no NAT "home1" in lab ` + prefix, "(NATs: home-a, home-b)", "host stun: gonat stun-server", "stun | ready: stun server on 203.0.113.10:3478", "--- FAIL: TestSTUNFromTwoHomes"} {
		if !strings.Contains(out, want) {
			t.Errorf("labtestmod -fail-on-purpose: output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "panic") {
		t.Errorf("labtestmod -fail-on-purpose panicked:\n%s", out)
	}
	noneLeft()
}
