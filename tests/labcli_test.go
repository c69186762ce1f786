package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab/labtest"
)

// labCLI runs gonat commands against a state directory of the test's
// own, so the labs of other tests and users never show in its output.
type labCLI struct {
	t     *testing.T
	env   []string
	state string
}

func newLabCLI(t *testing.T) *labCLI {
	state := t.TempDir()
	return &labCLI{t: t, state: state, env: append(os.Environ(), "GONAT_STATE_DIR="+state)}
}

// upDetached brings up a lab of topology text topo in the background
// under a name of its own, removed when the test ends, and returns the
// name; a failing lab up fails the test.
func (c *labCLI) upDetached(topo string) string {
	c.t.Helper()
	file := filepath.Join(c.t.TempDir(), "lab.toml")
	if err := os.WriteFile(file, []byte(topo), 0o644); err != nil {
		c.t.Fatal(err)
	}
	name := labtest.Name()
	c.t.Cleanup(func() { c.run("lab", "down", "--lab", name) })
	if out, code := c.run("lab", "up", "-d", file, "--name", name); code != 0 {
		c.t.Fatalf("lab up -d: exit %d\n%s", code, out)
	}
	return name
}

// run returns the combined output and the exit code.
func (c *labCLI) run(args ...string) (string, int) {
	return c.runAs(nil, args...)
}

// runAs runs as another user when cred is set.
func (c *labCLI) runAs(cred *syscall.Credential, args ...string) (string, int) {
	cmd := exec.Command(gonatBin, args...)
	cmd.Env = c.env
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.CombinedOutput()
	return string(out), exitCode(err)
}

// oneLine checks out is a single line holding want.
func oneLine(t *testing.T, what, out string, code, wantCode int, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if code != wantCode || len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("%s: exit %d, output:\n%s\nwant exit %d and one line holding %q", what, code, out, wantCode, want)
	}
}

// The lifecycle of a lab from the command line, as compose users expect
// it: nothing to remove is fine, starting what runs is fine, a missing
// lab gets one answer from every command, lab names may be arguments,
// and without root every command says so in one line.
func TestLabLifecycleCLI(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside another such test (see the package comment)
	c := newLabCLI(t)
	file := filepath.Join(t.TempDir(), "home.toml")
	if err := os.WriteFile(file, []byte(homeTopo), 0o644); err != nil {
		t.Fatal(err)
	}
	name := labtest.Name()
	t.Cleanup(func() { c.run("lab", "down", "--lab", name) })

	out, code := c.run("lab", "down")
	oneLine(t, "lab down with no lab", out, code, 0, "nothing to remove")
	out, code = c.run("lab", "status")
	oneLine(t, "lab status with no lab", out, code, 2, "no lab is running")

	if out, code := c.run("lab", "up", "-d", file, "--name", name); code != 0 {
		t.Fatalf("lab up -d: exit %d\n%s", code, out)
	}
	out, code = c.run("lab", "up", "-d", file, "--name", name)
	oneLine(t, "lab up -d of a running lab", out, code, 0, "already running")

	t.Run("missing lab", func(t *testing.T) {
		want := `no lab "nosuch" is running (running: ` + name + `; see gonat lab list)`
		for _, args := range [][]string{
			{"lab", "exec", "--lab", "nosuch", "alice", "--", "true"},
			{"lab", "logs", "--lab", "nosuch", "alice"},
			{"lab", "status", "--lab", "nosuch"},
			{"lab", "status", "nosuch"},
			{"lab", "table", "--lab", "nosuch"},
			{"lab", "table", "nosuch"},
			{"lab", "set", "--lab", "nosuch", "home", "--preset", "symmetric"},
			{"lab", "flush", "--lab", "nosuch", "home"},
			{"lab", "down", "--lab", "nosuch"},
			{"lab", "down", "nosuch"},
			{"lab", "verify", "--lab", "nosuch"},
			{"lab", "verify", "nosuch"},
			{"table", "--lab", "nosuch"},
		} {
			out, code := c.run(args...)
			oneLine(t, strings.Join(args, " "), out, code, 2, want)
		}
	})

	t.Run("lab name as argument", func(t *testing.T) {
		if out, code := c.run("lab", "status", name); code != 0 || !strings.Contains(out, "alice") {
			t.Errorf("lab status %s: exit %d\n%s", name, code, out)
		}
		if out, code := c.run("lab", "table", name, "--json"); code != 0 {
			t.Errorf("lab table %s: exit %d\n%s", name, code, out)
		}
		out, code := c.run("lab", "status", name, "--lab", "other")
		oneLine(t, "two different names", out, code, 2, "two lab names")
	})

	t.Run("exec gonat", func(t *testing.T) {
		// A PATH holding only ip: "gonat" is found nowhere but as the
		// running executable.
		bin := t.TempDir()
		ip := privtest.Tool(t, "ip")
		if err := os.Symlink(ip, filepath.Join(bin, "ip")); err != nil {
			t.Fatal(err)
		}
		execGonat := func(what string) {
			t.Helper()
			cmd := exec.Command(gonatBin, "lab", "exec", "--lab", name, "alice", "--", "gonat", "version")
			cmd.Env = append(c.env, "PATH="+bin)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "gonat ") {
				t.Errorf("lab exec alice -- gonat version, %s: %v\n%s", what, err, out)
			}
		}
		execGonat("gonat not on PATH")
		// Another gonat on PATH (an older install, say): exec runs this
		// gonat, as the lab's hosts do.
		if err := os.WriteFile(filepath.Join(bin, "gonat"), []byte("#!/bin/sh\necho another gonat\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		execGonat("another gonat on PATH")
		out2, code := c.run("lab", "exec", "--lab", name, "carol", "--", "true")
		oneLine(t, "exec on an unknown node", out2, code, 2, `no node "carol"`)
	})

	t.Run("without root", func(t *testing.T) {
		// The binary's directory is the test's own; let nobody run it.
		if err := os.Chmod(filepath.Dir(gonatBin), 0o755); err != nil {
			t.Fatal(err)
		}
		nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
		for _, args := range [][]string{
			{"lab", "list"},
			{"lab", "status"},
			{"lab", "status", name},
			{"lab", "down"},
			{"lab", "down", "--lab", name},
			{"lab", "exec", "alice", "--", "true"},
			{"lab", "table"},
		} {
			out, code := c.runAs(nobody, args...)
			if code == 0 {
				t.Errorf("%s as nobody: exit 0\n%s", strings.Join(args, " "), out)
				continue
			}
			oneLine(t, strings.Join(args, " ")+" as nobody", out, code, code, "needs root: ")
		}
		if out, code := c.run("lab", "status", name); code != 0 {
			t.Errorf("the lab did not survive lab down as nobody: exit %d\n%s", code, out)
		}
	})

	out, code = c.run("lab", "down", name)
	oneLine(t, "lab down NAME", out, code, 0, "removed")
	out, code = c.run("lab", "down")
	oneLine(t, "lab down after the last lab", out, code, 0, "nothing to remove")
	noNamespaces(t, name)
}

// lab validate and lab up --dry-run check a file and print what would be
// built, creating nothing, also without root; a [host] written for
// [[host]] is named at its own line.
func TestLabValidate(t *testing.T) {
	c := newLabCLI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "home.toml")
	if err := os.WriteFile(file, []byte(homeTopo), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(gonatBin), 0o755); err != nil {
		t.Fatal(err)
	}
	name := labtest.Name()
	for _, run := range []struct {
		what string
		cred *syscall.Credential
		args []string
	}{
		{"validate", nil, []string{"lab", "validate", file, "--name", name}},
		{"up --dry-run", nil, []string{"lab", "up", file, "--name", name, "--dry-run"}},
		{"validate as nobody", &syscall.Credential{Uid: 65534, Gid: 65534}, []string{"lab", "validate", file, "--name", name}},
	} {
		out, code := c.runAs(run.cred, run.args...)
		if code != 0 {
			t.Errorf("%s: exit %d\n%s", run.what, code, out)
			continue
		}
		for _, want := range []string{name + ".public", name + ".alice", name + ".stun", "198.51.100.1", "10.0.0.2", "203.0.113.10", "nothing created"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s does not show %s:\n%s", run.what, want, out)
			}
		}
	}
	noNamespaces(t, name)
	if _, err := os.Stat(filepath.Join(c.state, name)); err == nil {
		t.Errorf("a dry run left state in %s", c.state)
	}

	bad := strings.Replace(homeTopo, "[[host]]\nname = \"alice\"", "[host]\nname = \"alice\"", 1)
	badFile := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(badFile, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(bad, "\n") {
		if l == "[host]" {
			line = i + 1
		}
	}
	out, code := c.run("lab", "validate", badFile)
	oneLine(t, "validate [host]", out, code, 2, "bad.toml:"+strconv.Itoa(line)+": [host]: write [[host]]")
}

// gonat help COMMAND is the command's help; the internal flag of lab up
// -d is not shown; the version names the module version and Go.
func TestHelpAndVersion(t *testing.T) {
	gonat := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(gonatBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("gonat %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, cmd := range [][]string{{"run"}, {"lab", "up"}} {
		help, want := gonat(append([]string{"help"}, cmd...)...), gonat(append(cmd, "--help")...)
		// gonat run's default --name holds its process ID.
		pid := regexp.MustCompile(`run-[0-9]+`)
		if pid.ReplaceAllString(help, "run-PID") != pid.ReplaceAllString(want, "run-PID") {
			t.Errorf("gonat help %s differs from gonat %s --help:\n%s", strings.Join(cmd, " "), strings.Join(cmd, " "), help)
		}
	}
	if out := gonat("lab", "up", "--help"); strings.Contains(out, "daemon-child") || !strings.Contains(out, "-d") {
		t.Errorf("lab up --help shows the internal flag, or not -d:\n%s", out)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := gonat(args...)
		// "devel" or a (pseudo-)version, whether the build recorded the
		// commit or not; the Go version is always known.
		if !strings.HasPrefix(out, "gonat ") || strings.HasPrefix(out, "gonat dev\n") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
			t.Errorf("gonat %s: %q, want one line: gonat VERSION (..., %s)", args[0], out, runtime.Version())
		}
	}
}

// make install puts gonat and its completions under PREFIX.
func TestMakeInstall(t *testing.T) {
	mk := privtest.Tool(t, "make")
	dir := t.TempDir()
	prefix := filepath.Join(dir, "prefix")
	cmd := exec.Command(mk, "-C", "..", "install", "BIN="+filepath.Join(dir, "build", "gonat"), "PREFIX="+prefix)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(prefix, "bin", "gonat"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "gonat ") {
		t.Errorf("installed gonat version: %v\n%s", err, out)
	}
	for _, f := range []string{"share/bash-completion/completions/gonat", "share/zsh/site-functions/_gonat", "share/fish/vendor_completions.d/gonat.fish"} {
		if b, err := os.ReadFile(filepath.Join(prefix, f)); err != nil || !strings.Contains(string(b), "gonat") {
			t.Errorf("%s: %v (%d bytes)", f, err, len(b))
		}
	}
}
