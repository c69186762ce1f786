package labtest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeTB records a Fatalf and ends the goroutine as testing does.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); fn(f) }()
	<-done
	return f.fatal
}

func TestName(t *testing.T) {
	t.Setenv("GONAT_LABTEST_PREFIX", "")
	a, b := Name(), Name()
	if a == b || !strings.HasPrefix(a, fmt.Sprintf("t%x-", os.Getpid())) {
		t.Errorf("Name() = %q then %q", a, b)
	}
	t.Setenv("GONAT_LABTEST_PREFIX", "gt1f-l")
	if n := Name(); !strings.HasPrefix(n, "gt1f-l") {
		t.Errorf("with a prefix: Name() = %q", n)
	}
}

func TestGonatFromEnvironment(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gonat")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	t.Setenv("GONAT_BIN", bin)
	var got string
	if msg := fatalOf(t, func(tb testing.TB) { got = Gonat(tb) }); msg != "" || got != bin {
		t.Errorf("GONAT_BIN=%s: Gonat = %q, fatal %q", bin, got, msg)
	}
	t.Setenv("GONAT_BIN", filepath.Join(t.TempDir(), "missing"))
	if msg := fatalOf(t, func(tb testing.TB) { Gonat(tb) }); !strings.Contains(msg, "GONAT_BIN") {
		t.Errorf("GONAT_BIN missing: fatal %q, want one naming GONAT_BIN", msg)
	}
}
