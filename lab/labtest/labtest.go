// Package labtest starts gonat labs from `go test`: each with a name of
// its own (two test processes on one machine never collide), removed in
// t.Cleanup whatever happens.
//
//	func TestMyICE(t *testing.T) {
//		l := labtest.Up(t, labtest.Load(t, "testdata/two-homes.toml"), lab.Options{})
//		out, err := l.Node("alice").Command("my-ice-agent", "--peer", "bob").CombinedOutput()
//		...
//	}
package labtest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab"
)

var counter atomic.Int64

// Name returns a lab name unique to this process and call.
func Name() string {
	return fmt.Sprintf("t%x-%d", os.Getpid(), counter.Add(1))
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

// Up builds the lab under a unique name (opt.Name is ignored) and removes
// it when the test ends. Labs need root: without it the test fails under
// CI (CI=true) and is skipped elsewhere.
func Up(t testing.TB, topo *lab.Topology, opt lab.Options) *lab.Lab {
	t.Helper()
	privtest.Require(t)
	opt.Name = Name()
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
	})
	return l
}
