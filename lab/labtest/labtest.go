// Package labtest starts gonat labs from `go test`: each with a name of
// its own (two test processes on one machine never collide), removed in
// t.Cleanup whatever happens, with the hosts' output attached to the test
// output when the test fails.
//
//	func TestMyICE(t *testing.T) {
//		l := labtest.Up(t, labtest.Load(t, "testdata/two-homes.toml"), lab.Options{})
//		out, err := l.Node("alice").Command("my-ice-agent", "--peer", "bob").CombinedOutput()
//		...
//	}
//
// A host's "gonat", and Node.Command("gonat", ...), run
// lab.Options.GonatPath if set, else $GONAT_BIN,
// else a gonat built once per test process from the source of the
// github.com/gonat/gonat module the test builds against (the go tool
// must be on PATH, as it is under `go test`).
package labtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab"
)

var counter atomic.Int64

// Name returns a lab name unique to this process and call:
// $GONAT_LABTEST_PREFIX (default "tPID-", PID in hex) and a number.
func Name() string {
	prefix := os.Getenv("GONAT_LABTEST_PREFIX")
	if prefix == "" {
		prefix = fmt.Sprintf("t%x-", os.Getpid())
	}
	return prefix + strconv.FormatInt(counter.Add(1), 10)
}

// Load reads and validates a topology file, failing the test on error.
func Load(t testing.TB, path string) *lab.Topology {
	t.Helper()
	topo, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// Parse is Load from text.
func Parse(t testing.TB, text string) *lab.Topology {
	t.Helper()
	topo, err := lab.Parse([]byte(text), t.Name()+".toml")
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// Lab is a running lab whose lookups fail the test, naming what exists,
// where lab.Lab's return nil. Call them from the test's goroutine.
type Lab struct {
	*lab.Lab
	t testing.TB
}

// Node returns the named node (a host, a NAT's uplink, or "public").
func (l *Lab) Node(name string) *lab.Node {
	if n := l.Lab.Node(name); n != nil {
		return n
	}
	var names []string
	for _, n := range l.Lab.Nodes() {
		names = append(names, n.Name)
	}
	l.t.Helper()
	l.t.Fatalf("no node %q in lab %s (nodes: %s)", name, l.Name, strings.Join(names, ", "))
	return nil
}

// NAT returns the running NAT of that name.
func (l *Lab) NAT(name string) *lab.NAT {
	if n := l.Lab.NAT(name); n != nil {
		return n
	}
	l.t.Helper()
	l.t.Fatalf("no NAT %q in lab %s (NATs: %s)", name, l.Name, strings.Join(l.NATNames(), ", "))
	return nil
}

// Up builds the lab under a unique name (opt.Name is ignored), waits for
// its hosts' commands to be ready, and removes it when the test ends. If
// the test failed, every host command's output is logged. Labs need root:
// without it the test fails under CI (CI=true) and is skipped elsewhere.
func Up(t testing.TB, topo *lab.Topology, opt lab.Options) *Lab {
	t.Helper()
	privtest.Require(t)
	opt.Name = Name()
	if opt.GonatPath == "" {
		// For the hosts' commands and Node.Command("gonat", ...) alike.
		opt.GonatPath = Gonat(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := lab.Up(ctx, topo, opt)
	if err != nil {
		cancel()
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
		cancel()
		if t.Failed() {
			logHosts(t, l)
		}
	})
	l.StartEvents(func(f string, a ...any) { t.Logf(f, a...) })
	return &Lab{Lab: l, t: t}
}

// logHosts attaches each host command's output to the test's.
func logHosts(t testing.TB, l *lab.Lab) {
	for _, c := range l.HostCommands() {
		out, _ := l.HostOutput(c.Host)
		var b strings.Builder
		fmt.Fprintf(&b, "lab %s: host %s: %s (%s)", l.Name, c.Host, c.CommandLine(), c.State)
		if out == "" {
			b.WriteString(", no output")
		} else {
			b.WriteString(", its output:")
			for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
				fmt.Fprintf(&b, "\n  %s | %s", c.Host, line)
			}
		}
		t.Log(b.String())
	}
}

var built struct {
	sync.Mutex
	done bool
	path string
	err  error
}

// Gonat returns the gonat executable for hosts' "gonat": $GONAT_BIN if
// set, else one built (once per process) from the gonat module's source.
func Gonat(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("GONAT_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			t.Fatalf("GONAT_BIN: %v", err)
		}
		return abs
	}
	built.Lock()
	defer built.Unlock()
	if !built.done {
		built.path, built.err = build()
		built.done = true
	}
	if built.err != nil {
		t.Fatalf("%v (set GONAT_BIN to a gonat executable instead)", built.err)
	}
	return built.path
}

// build compiles gonat from the source of the github.com/gonat/gonat
// module as the calling module resolves it (a replace directive's
// checkout, or the module cache), with that module's own go.sum, into a
// directory of this process. Directories of processes that are gone are
// removed first.
func build() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/gonat/gonat").Output()
	if err != nil {
		return "", fmt.Errorf("build gonat: go list -m github.com/gonat/gonat: %v %s", err, stderrOf(err))
	}
	src := strings.TrimSpace(string(out))
	if src == "" {
		return "", fmt.Errorf("build gonat: go list -m github.com/gonat/gonat: no source directory (is the module downloaded?)")
	}
	stale, _ := filepath.Glob(filepath.Join(os.TempDir(), "gonat-labtest-*"))
	for _, d := range stale {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "gonat-labtest-"))
		if err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
	dir := filepath.Join(os.TempDir(), "gonat-labtest-"+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build gonat: %w", err)
	}
	bin := filepath.Join(dir, "gonat")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gonat")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build gonat in %s: %v\n%s", src, err, out)
	}
	return bin, nil
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}
