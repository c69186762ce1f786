package privtest

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// The programs Tool knows a package for are those scripts/deps.sh
// installs, from the same packages: its list is the one `make test` uses.
func TestPackagesMatchDepsScript(t *testing.T) {
	b, err := os.ReadFile("../../scripts/deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	// want=(ip:iproute2) and want+=(ping:iputils-ping ...): PROGRAM:PACKAGE words.
	lists := regexp.MustCompile(`(?m)^\s*want\+?=\(([^)]*)\)`).FindAllStringSubmatch(string(b), -1)
	deps := map[string]string{}
	for _, l := range lists {
		for _, w := range strings.Fields(l[1]) {
			prog, pkg, ok := strings.Cut(w, ":")
			if !ok {
				t.Fatalf("deps.sh: %q is not PROGRAM:PACKAGE", w)
			}
			deps[prog] = pkg
		}
	}
	if len(deps) == 0 {
		t.Fatal("deps.sh: no want=(...) lists found")
	}
	if !maps.Equal(deps, debianPackages) {
		t.Errorf("scripts/deps.sh installs %v; privtest knows %v", deps, debianPackages)
	}
}

// A program on PATH is found under its own name or another it goes by;
// a missing one is named with its package, skipped outside CI and failed
// under it.
func TestTool(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"stun", "chromium-browser"} {
		if err := os.WriteFile(dir+"/"+n, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	if p, err := LookTool("stun"); err != nil || p != dir+"/stun" {
		t.Errorf("LookTool(stun) = %q, %v", p, err)
	}
	if p, err := LookTool("chromium"); err != nil || p != dir+"/chromium-browser" {
		t.Errorf("LookTool(chromium) = %q, %v; want chromium-browser", p, err)
	}
	if _, err := LookTool("tshark"); err == nil || !strings.Contains(err.Error(), "Debian package tshark") {
		t.Errorf("LookTool(tshark) without tshark: %v, want the package named", err)
	}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Tool(r, "nft")
		}()
		<-done
		if ci == "true" && (!r.failed || r.skipped) || ci == "" && (r.failed || !r.skipped) {
			t.Errorf("CI=%q: failed %v, skipped %v", ci, r.failed, r.skipped)
		}
		if !strings.Contains(r.msg, "nftables") {
			t.Errorf("CI=%q: message %q does not name the package", ci, r.msg)
		}
	}
}

// recorder notes how Tool ends a test, ending the goroutine as testing
// does.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skip(args ...any) {
	r.skipped, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
