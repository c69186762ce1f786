package tests

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
)

// hostsTopo: a STUN server, a host that fails with exit 3 when the test
// says so, and one that ticks.
const hostsTopo = `
[[nat]]
name = "home"
preset = "full-cone"
external = ["198.51.100.1"]
inside = "10.0.0.0/24"

[[host]]
name = "alice"
network = "home"

[[host]]
name = "stun"
network = "public"
address = ["203.0.113.10", "203.0.113.11"]
run = ["gonat", "stun-server", "--primary", "203.0.113.10", "--alternate", "203.0.113.11"]

[[host]]
name = "bad"
network = "public"
run = "echo waiting; while [ ! -e TRIGGER ]; do sleep 0.05; done; echo failing now >&2; exit 3"

[[host]]
name = "tick"
network = "public"
run = "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"
`

// labFile writes a topology (TRIGGER replaced by a path of the test's)
// and returns it with the trigger's path.
func labFile(t *testing.T, text string) (file, trigger string) {
	dir := t.TempDir()
	trigger = filepath.Join(dir, "go")
	file = filepath.Join(dir, "lab.toml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(text, "TRIGGER", trigger)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, trigger
}

// gonatRun runs gonat and returns its combined output and exit code;
// after 60s it is killed (a `lab up` that should have failed, say).
func gonatRun(args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gonatBin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	return string(out), exitCode(err)
}

// noNamespaces fails t if lab name left a namespace, or a resolv.conf in
// /etc/netns.
func noNamespaces(t *testing.T, name string) {
	t.Helper()
	left, _ := lab.NamespacesOf(name)
	for _, n := range left {
		t.Errorf("namespace %s left behind", n)
	}
	for _, d := range etcNetns(name) {
		t.Errorf("%s left behind", d)
	}
}

// A host command that fails during start-up fails `lab up`, foreground
// or -d: exit non-zero, the host's name, its exit status and output, and
// nothing left behind.
func TestLabUpFailsOnHostExit(t *testing.T) {
	cases := []struct {
		name, run string
		detach    bool
		want      []string
	}{
		{"bad arguments", `["gonat", "stun-server", "--no-such-flag"]`, false,
			[]string{"host broken", "gonat stun-server --no-such-flag", "exited 2 during start-up", "broken | ", "no-such-flag"}},
		{"exit 3 in the background", `"echo cannot bind >&2; exit 3"`, true,
			[]string{"host broken", "exited 3 during start-up", "broken | cannot bind"}},
		{"exit 0 before ready", `"echo done"`, false,
			[]string{"host broken", "exited 0 before it was ready (no UDP socket is bound to 203.0.113.10:3478)", "broken | done"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := "[[host]]\nname = \"broken\"\nnetwork = \"public\"\naddress = \"203.0.113.10\"\nrun = " + c.run + "\n"
			if strings.Contains(c.name, "ready") {
				text += "ready = \"udp:203.0.113.10:3478\"\n"
			}
			file, _ := labFile(t, text)
			name := labtest.Name()
			t.Cleanup(func() { gonatRun("lab", "down", "--lab", name) })
			args := []string{"lab", "up", file, "--name", name}
			if c.detach {
				args = append(args, "-d")
			}
			out, code := gonatRun(args...)
			if code == 0 {
				t.Fatalf("lab up succeeded with a failing host:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			noNamespaces(t, name)
			if _, err := os.Stat(lab.StateDir(name)); err == nil {
				t.Errorf("state directory %s left behind", lab.StateDir(name))
			}
		})
	}
}

// In the foreground, host commands' output is printed as "HOST | line",
// and a command that ends is reported with its exit status.
func TestLabUpForegroundShowsHostOutput(t *testing.T) {
	file, trigger := labFile(t, hostsTopo)
	name := labtest.Name()
	t.Cleanup(func() { gonatRun("lab", "down", "--lab", name) })
	cmd := exec.Command(gonatBin, "lab", "up", file, "--name", name)
	out := newLineBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := regexp.MustCompile(`(?m)^tick\s+\| tick 3$`)
	for deadline := time.Now().Add(20 * time.Second); !(out.contains("ready:") && tick.MatchString(out.String())); {
		if time.Now().After(deadline) {
			t.Fatalf("no ready line and tick lines after 20s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !regexp.MustCompile(`(?m)^bad\s+\| waiting$`).MatchString(out.String()) {
		t.Errorf("no \"bad | waiting\" line:\n%s", out.String())
	}
	os.WriteFile(trigger, nil, 0o644)
	for deadline := time.Now().Add(10 * time.Second); !out.contains("host bad exited 3"); {
		if time.Now().After(deadline) {
			t.Fatalf("no \"host bad exited 3\" 10s after bad failed:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !regexp.MustCompile(`(?m)^bad\s+\| failing now$`).MatchString(out.String()) {
		t.Errorf("no \"bad | failing now\" line:\n%s", out.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("lab up after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("lab up still running 15s after SIGTERM")
	}
	noNamespaces(t, name)
}

// A lab in the background: the log path it prints exists while it runs;
// status shows each host command's state, with the last lines of one that
// failed; lab logs prints and follows a host's output; lab down
// --keep-logs keeps every log after the lab is gone.
func TestLabHostCommandsInBackground(t *testing.T) {
	file, trigger := labFile(t, hostsTopo)
	name := labtest.Name()
	t.Cleanup(func() { gonatRun("lab", "down", "--lab", name) })
	out, code := gonatRun("lab", "up", "-d", "-v", file, "--name", name)
	if code != 0 {
		t.Fatalf("lab up -d: exit %d\n%s", code, out)
	}
	m := regexp.MustCompile(`log (\S+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lab up -d printed no log path:\n%s", out)
	}
	logPath := m[1]
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "starting on stun") {
		t.Errorf("the printed log %s: %v\n%s", logPath, err, b)
	}
	if !strings.Contains(out, "gonat lab logs --lab "+name) {
		t.Errorf("lab up -d does not say where host output goes:\n%s", out)
	}

	os.WriteFile(trigger, nil, 0o644)
	type status struct {
		Commands []struct {
			Host       string   `json:"host"`
			State      string   `json:"state"`
			Running    bool     `json:"running"`
			ExitCode   *int     `json:"exit_code"`
			LastOutput []string `json:"last_output"`
		} `json:"commands"`
	}
	var st status
	states := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); states["bad"] != "exited 3" && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		out, code = gonatRun("lab", "status", "--lab", name, "--json")
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("lab status --json: exit %d\n%s", code, out)
		}
		for _, c := range st.Commands {
			states[c.Host] = c.State
		}
	}
	if states["bad"] != "exited 3" || states["stun"] != "running" || states["tick"] != "running" {
		t.Fatalf("host command states %v; want bad exited 3, stun and tick running\n%s", states, out)
	}
	for _, c := range st.Commands {
		if c.Host == "bad" && (c.ExitCode == nil || *c.ExitCode != 3 || c.Running || !strings.Contains(strings.Join(c.LastOutput, "\n"), "failing now")) {
			t.Errorf("bad in status --json: %+v", c)
		}
		if c.Host == "stun" && (!c.Running || c.ExitCode != nil || c.LastOutput != nil) {
			t.Errorf("stun in status --json: %+v", c)
		}
	}
	out, code = gonatRun("lab", "status", "--lab", name)
	for _, w := range []string{"HOST", "exited 3", "bad | failing now"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("lab status (exit %d) lacks %q:\n%s", code, w, out)
		}
	}
	if !regexp.MustCompile(`(?m)^stun\s+running\s+\d+\s+gonat stun-server`).MatchString(out) {
		t.Errorf("lab status does not show stun running:\n%s", out)
	}

	out, code = gonatRun("lab", "logs", "--lab", name, "bad")
	if code != 0 || out != "waiting\nfailing now\n" {
		t.Errorf("lab logs bad: exit %d, %q", code, out)
	}
	if out, code = gonatRun("lab", "logs", "--lab", name, "alice"); code != 2 || !strings.Contains(out, "bad, stun, tick") {
		t.Errorf("lab logs of a host without a command: exit %d\n%s", code, out)
	}

	// -f: new lines keep coming until the lab goes.
	out, _ = gonatRun("lab", "logs", "--lab", name, "tick")
	seen := strings.Count(out, "tick ")
	follow := exec.Command(gonatBin, "lab", "logs", "-f", "--lab", name, "tick")
	fout := newLineBuffer()
	follow.Stdout, follow.Stderr = fout, fout
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followed := make(chan error, 1)
	go func() { followed <- follow.Wait() }()
	t.Cleanup(func() { follow.Process.Kill() })
	want := "tick " + strconv.Itoa(seen+5) + "\n"
	for deadline := time.Now().Add(10 * time.Second); !fout.contains(want); {
		if time.Now().After(deadline) {
			t.Fatalf("lab logs -f: no %q after 10s:\n%s", want, fout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	kept := filepath.Join(t.TempDir(), "kept")
	out, code = gonatRun("lab", "down", "--lab", name, "--keep-logs", kept)
	if code != 0 || !strings.Contains(out, "logs kept in "+kept) {
		t.Fatalf("lab down --keep-logs: exit %d\n%s", code, out)
	}
	select {
	case err := <-followed:
		if err != nil {
			t.Errorf("lab logs -f ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("lab logs -f still running 10s after lab down")
	}
	for f, w := range map[string]string{"bad.log": "waiting\nfailing now\n", "stun.log": "ready: stun server", "tick.log": "tick 0\n", "gonat.log": "starting on bad"} {
		b, err := os.ReadFile(filepath.Join(kept, f))
		if err != nil || !strings.Contains(string(b), w) {
			t.Errorf("kept %s: %v, lacks %q:\n%s", f, err, w, b)
		}
	}
	noNamespaces(t, name)
	if _, err := os.Stat(lab.StateDir(name)); err == nil {
		t.Errorf("state directory %s left behind", lab.StateDir(name))
	}
}

// Readiness: Up returns only once each host's condition holds (a log
// line, a listening TCP socket), and fails, naming what it waited for,
// when a condition does not come in time.
func TestHostReadiness(t *testing.T) {
	topo := labtest.Parse(t, `
[[host]]
name = "slow"
network = "public"
run = "sleep 0.7; echo listening now; exec sleep 1000"
ready = "log:listening now"

[[host]]
name = "rv"
network = "public"
address = "203.0.113.20"
run = ["gonat", "rendezvous", "--listen", "203.0.113.20:7000"]
ready = "tcp:203.0.113.20:7000"

[[host]]
name = "client"
network = "public"
`)
	start := time.Now()
	l := labtest.Up(t, topo, labOpts())
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("Up returned after %v, before slow printed its ready line (0.7s)", d)
	}
	if out, _ := l.HostOutput("slow"); out != "listening now\n" {
		t.Errorf("slow's output: %q", out)
	}
	// No retry: the server listens as Up returns.
	err := l.Node("client").Run(func() error {
		c, err := net.DialTimeout("tcp4", "203.0.113.20:7000", 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		t.Errorf("rendezvous not listening when Up returned: %v", err)
	}

	never := labtest.Parse(t, `
[[host]]
name = "mute"
network = "public"
address = "203.0.113.30"
run = "echo not yet; exec sleep 1000"
ready = "tcp:203.0.113.30:8080"
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := labtest.Name()
	l2, err := lab.Up(ctx, never, lab.Options{Name: name, ReadyTimeout: time.Second})
	if err == nil {
		l2.Close()
		t.Fatal("Up succeeded with a host that never got ready")
	}
	var se *lab.StartError
	if !errors.As(err, &se) || se.Command.Host != "mute" ||
		!strings.Contains(err.Error(), "not ready after 1s: no TCP socket listens on 203.0.113.30:8080") || !strings.Contains(err.Error(), "mute | not yet") {
		t.Errorf("Up error: %v", err)
	}
	noNamespaces(t, name)
}

// lab up -d passes -v and --trace on to the background process: its log
// shows the mappings made (-v), and with --trace the packets too.
func TestLabUpDetachedLogsEvents(t *testing.T) {
	const topo = `
[[nat]]
name = "home"
preset = "full-cone"
external = ["198.51.100.1"]
inside = "10.0.0.0/24"

[[host]]
name = "alice"
network = "home"

[[host]]
name = "srv"
network = "public"
address = "203.0.113.10"
`
	for _, tc := range []struct {
		flag      string
		want, not []string
	}{
		{"-v", []string{"home: NEW udp 10.0.0."}, []string{"=>"}},
		{"--trace", []string{"home: NEW udp 10.0.0.", "=>  198.51.100.1:"}, nil},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			file, _ := labFile(t, topo)
			name := labtest.Name()
			t.Cleanup(func() {
				gonatRun("lab", "down", "--lab", name)
				noNamespaces(t, name)
			})
			out, code := gonatRun("lab", "up", "-d", tc.flag, file, "--name", name)
			if code != 0 {
				t.Fatalf("lab up -d %s: exit %d\n%s", tc.flag, code, out)
			}
			m := regexp.MustCompile(`log (\S+)\)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("lab up -d printed no log path:\n%s", out)
			}
			c, err := ns.ListenPacket(lab.NamespacePrefix(name)+"alice")("udp4", ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var log string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				// Again until seen: the first packet may find the NAT's
				// readers still starting.
				if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(203, 0, 113, 10), Port: 9}); err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(m[1])
				if log = string(b); containsAll(log, tc.want) {
					break
				}
			}
			if !containsAll(log, tc.want) {
				t.Fatalf("the -d log lacks %q after traffic:\n%s", tc.want, log)
			}
			for _, n := range tc.not {
				if strings.Contains(log, n) {
					t.Errorf("the -d log with %s has %q:\n%s", tc.flag, n, log)
				}
			}
		})
	}
}

func containsAll(s string, subs []string) bool {
	for _, w := range subs {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
