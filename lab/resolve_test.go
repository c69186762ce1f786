package lab

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A host's "gonat" is never the running executable (inside `go test`,
// the test binary): GonatPath, else gonat on PATH, else a clear error.
func TestResolveGonat(t *testing.T) {
	topo, err := Parse([]byte(`
[[host]]
name = "stun"
network = "public"
run = ["gonat", "stun-server"]
`), "lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()

	t.Setenv("PATH", t.TempDir())
	_, err = resolveGonat(topo, Options{})
	if err == nil || !strings.Contains(err.Error(), "host stun runs gonat") || !strings.Contains(err.Error(), "Options.GonatPath") {
		t.Errorf("no gonat anywhere: err = %v; want one naming the host and Options.GonatPath", err)
	}
	if p, err := resolveGonat(topo, Options{GonatPath: "/opt/gonat"}); p != "/opt/gonat" || err != nil {
		t.Errorf("GonatPath given: %q, %v", p, err)
	}

	dir := t.TempDir()
	onPath := filepath.Join(dir, "gonat")
	if err := os.WriteFile(onPath, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if p, err := resolveGonat(topo, Options{}); p != onPath || err != nil || p == self {
		t.Errorf("gonat on PATH: %q, %v; want %s", p, err, onPath)
	}

	noGonat, _ := Parse([]byte("[[host]]\nname = \"a\"\nnetwork = \"public\"\nrun = \"true\"\n"), "lab.toml")
	t.Setenv("PATH", t.TempDir())
	if p, err := resolveGonat(noGonat, Options{}); p != "" || err != nil {
		t.Errorf("no host runs gonat: %q, %v; want nothing needed", p, err)
	}
}

// A node's Command runs the lab's gonat for "gonat", as host commands do,
// and anything else as named.
func TestNodeCommandRunsLabGonat(t *testing.T) {
	n := &Node{Namespace: "lab.alice", gonat: "/opt/gonat"}
	if got, want := n.Command("gonat", "probe").Args, []string{"ip", "netns", "exec", "lab.alice", "/opt/gonat", "probe"}; !slices.Equal(got, want) {
		t.Errorf("Command(gonat) = %q, want %q", got, want)
	}
	if got, want := n.CommandContext(context.Background(), "stun", "x").Args, []string{"ip", "netns", "exec", "lab.alice", "stun", "x"}; !slices.Equal(got, want) {
		t.Errorf("CommandContext(stun) = %q, want %q", got, want)
	}
	n.gonat = ""
	if got := n.Command("gonat").Args[4]; got != "gonat" {
		t.Errorf("no lab gonat: runs %q, want gonat from PATH", got)
	}
}
