package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
)

// A second gonat run on namespaces a live one uses is refused, naming the
// process that owns them, and leaves the first's devices and routes as
// they were (it used to add its own devices, replace the hosts' default
// route and remove it on exit while the first still ran).
func TestRunDoubleStartRefused(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT()
	free := tp.Name + "f" // a namespace no NAT uses
	if err := ns.Create(free); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Delete(free) })
	routesBefore := routes(t, tp.A)
	for _, c := range []struct{ name, inside, outside string }{
		{"same namespaces", tp.A, tp.WAN},
		{"inside namespace shared", tp.A, free},
		{"outside namespace shared", free, tp.WAN},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, gonatBin, "run", "--inside", c.inside+"=10.0.0.2/24", "--outside", c.outside,
				"--external", "198.51.100.7", "--name", tp.Name+"dup").CombinedOutput()
			if exitCode(err) == 0 || strings.Contains(string(out), "ready") {
				t.Fatalf("second gonat run on the first's namespaces started: exit %d\n%s", exitCode(err), out)
			}
			pid := strconv.Itoa(tp.gonat.Process.Pid)
			if !regexp.MustCompile(`in use by .*` + tp.Name + ` \(process ` + pid + `\)`).Match(out) {
				t.Errorf("refusal does not name the owner (--name %s, process %s):\n%s", tp.Name, pid, out)
			}
		})
	}
	if got := routes(t, tp.A); got != routesBefore {
		t.Errorf("routes in %s changed:\nbefore:\n%s\nafter:\n%s", tp.A, routesBefore, got)
	}
	for _, n := range []string{tp.A, tp.WAN} {
		if out, _ := exec.Command("ip", "-n", n, "-o", "link").CombinedOutput(); strings.Count(string(out), "gnat") != 1 {
			t.Errorf("namespace %s holds other than the first NAT's one device:\n%s", n, out)
		}
	}
	// The first still translates.
	if m := mapped(t, udp(t, tp.A, ":5000"), stunServer); m.Addr() != ext1 {
		t.Errorf("mapped to %s, want %s", m, ext1)
	}
}

// After kill -9, the same gonat run starts again at once, also while the
// killed process is a zombie its parent has not reaped yet.
func TestRunRestartAfterKill9(t *testing.T) {
	tp := newTopo(t)
	args := []string{"run", "--inside", tp.A + "=10.0.0.2/24", "--inside", tp.B + "=10.0.0.3/24",
		"--outside", tp.WAN, "--external", ext1.String(), "--name", tp.Name}
	// The shell starts gonat and becomes a sleep that never reaps it:
	// killed, gonat stays a zombie.
	var quoted []string
	for _, a := range append([]string{gonatBin}, args...) {
		quoted = append(quoted, "'"+a+"'")
	}
	log := filepath.Join(t.TempDir(), "first.log")
	parent := exec.Command("sh", "-c", strings.Join(quoted, " ")+" >"+log+" 2>&1 & echo $!; exec sleep 60")
	stdout := newLineBuffer()
	parent.Stdout = stdout
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parent.Process.Kill(); parent.Wait() })
	pidText := waitMatch(t, stdout, `(\d+)`, 5*time.Second)
	pid, _ := strconv.Atoi(pidText)
	first, err := os.ReadFile(log)
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(string(first), "ready"); first, err = os.ReadFile(log) {
		if time.Now().After(deadline) {
			t.Fatalf("first gonat not ready after 15s (%v):\n%s", err, first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := exec.Command("kill", "-9", pidText).Run(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); procState(pid) != "Z"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("killed gonat %d in state %q, not a zombie", pid, procState(pid))
		}
	}
	start := time.Now()
	tp.startNAT() // the same namespaces and --name
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("restart took %v", d)
	}
	if procState(pid) != "Z" {
		t.Logf("note: the zombie was reaped before the restart was ready")
	}
}

// procState is the state letter of /proc/PID/stat, "" if there is none.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// routes is namespace n's IPv4 routing table.
func routes(t *testing.T, n string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", n, "-4", "route", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s route: %v\n%s", n, err, out)
	}
	return string(out)
}

// lab up warns about a topology file others can write (its hosts'
// commands run as root), and holds its namespaces: a gonat run on them is
// refused, naming the lab.
func TestLabUpWarnsAndHoldsNamespaces(t *testing.T) {
	c := newLabCLI(t)
	file := filepath.Join(t.TempDir(), "home.toml")
	if err := os.WriteFile(file, []byte(homeTopo), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o666); err != nil {
		t.Fatal(err)
	}
	name := labtest.Name()
	t.Cleanup(func() { c.run("lab", "down", "--lab", name) })
	out, code := c.run("lab", "up", "-d", file, "--name", name)
	if code != 0 {
		t.Fatalf("lab up -d: exit %d\n%s", code, out)
	}
	if want := "warning: " + file + " is writable by group and others (mode 0666)"; strings.Count(out, want) != 1 {
		t.Errorf("lab up -d of a 0666 file: no warning line %q:\n%s", want, out)
	}
	st, code := c.run("lab", "status", "--lab", name, "--json")
	pid := regexp.MustCompile(`"pid": *(\d+)`).FindStringSubmatch(st)
	if code != 0 || pid == nil {
		t.Fatalf("lab status: exit %d\n%s", code, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gonatBin, "run", "--inside", name+".alice=10.0.0.2/24", "--outside", name+".public", "--external", "198.51.100.9")
	cmd.Env = c.env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	b, err := cmd.CombinedOutput()
	want := "in use by gonat lab " + name + " (process " + pid[1] + ")"
	if exitCode(err) == 0 || !strings.Contains(string(b), want) {
		t.Errorf("gonat run on a lab's namespaces: exit %d, %s; want a refusal saying %q", exitCode(err), b, want)
	}
}
