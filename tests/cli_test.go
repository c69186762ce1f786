package tests

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/ns"
)

// Bad flags and missing namespaces: one clear line naming the flag, exit 2.
func TestRunBadFlags(t *testing.T) {
	tp := newTopo(t)
	base := []string{"run", "--inside", tp.A + "=10.0.0.2/24", "--outside", tp.WAN, "--external", "198.51.100.1"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown mapping", append(base, "--mapping", "sideways"), "--mapping"},
		{"unknown preset", append(base, "--preset", "cone"), "--preset"},
		{"bad timeout", append(base, "--udp-timeout", "soon"), "--udp-timeout"},
		{"bad port range", append(base, "--port-range", "9-1"), "--port-range"},
		{"bad hairpin", append(base, "--hairpin=maybe"), "hairpin"},
		{"missing inside namespace", []string{"run", "--inside", "nosuchns-" + runPrefix + "=10.0.0.2/24", "--outside", tp.WAN, "--external", "198.51.100.1"}, "--inside"},
		{"missing outside namespace", []string{"run", "--inside", tp.A + "=10.0.0.2/24", "--outside", "nosuchns-" + runPrefix, "--external", "198.51.100.1"}, "--outside"},
		{"no external", []string{"run", "--inside", tp.A + "=10.0.0.2/24", "--outside", tp.WAN}, "--external"},
		{"bad inside address", []string{"run", "--inside", tp.A + "=10.0.0.300/24", "--outside", tp.WAN, "--external", "198.51.100.1"}, "--inside"},
		{"external inside the inside network", []string{"run", "--inside", tp.A + "=10.0.0.2/24", "--outside", tp.WAN, "--external", "10.0.0.9"}, "10.0.0.9"},
		{"unknown flag", append(base, "--frobnicate"), "frobnicate"},
		{"negative busy-poll", append(base, "--busy-poll", "-1s"), "--busy-poll"},
		{"negative unreplied timeout", append(base, "--udp-unreplied-timeout", "-1s"), "udp-unreplied-timeout"},
		{"bad linux-low-ports", append(base, "--linux-low-ports=sometimes"), "linux-low-ports"},
		{"port overloading with eif", append(base, "--preset", "linux", "--filtering", "eif"), "port-overloading"},
		{"port overloading with hairpin", append(base, "--preset", "linux", "--hairpin=true"), "port-overloading"},
		{"busy-poll with water", append(base, "--busy-poll", "100ms", "--tun-backend", "water"), "--busy-poll"},
		{"zero tun-queues", append(base, "--tun-queues", "0"), "--tun-queues"},
		{"too many tun-queues", append(base, "--tun-queues", "257"), "--tun-queues"},
		{"tun-queues with water", append(base, "--tun-queues", "2", "--tun-backend", "water"), "--tun-queues"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(gonatBin, c.args...)
			out, err := cmd.CombinedOutput()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if c.name == "external inside the inside network" {
				// Refused at start-up (REQ-7), not necessarily a flag error.
				if code == 0 || !strings.Contains(string(out), c.want) {
					t.Errorf("exit %d, output %q; want a refusal naming %s", code, out, c.want)
				}
				return
			}
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit 2 and one line naming %s", code, out, c.want)
			}
		})
	}
	if out, _ := exec.Command("ip", "-n", tp.A, "-o", "link").CombinedOutput(); strings.Contains(string(out), "gnat") {
		t.Errorf("a failed start left a device behind:\n%s", out)
	}
}

func TestHelpTeaches(t *testing.T) {
	out, err := exec.Command(gonatBin, "run", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("gonat run --help: %v", err)
	}
	for _, want := range []string{"--inside", "--outside", "--external", "--preset", "--mapping", "--filtering",
		"--port-assignment", "--port-range", "--hairpin", "--udp-timeout", "--tcp-established-timeout",
		"--tcp-transitory-timeout", "--icmp-timeout", "--seed", "full-cone", "symmetric", "Example"} {
		if !strings.Contains(string(out), strings.TrimPrefix(want, "--")) {
			t.Errorf("gonat run --help does not mention %s", want)
		}
	}
	out, err = exec.Command(gonatBin, "frobnicate").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, out)
	}
}

// `gonat demo` (the README's first command) finishes by itself within a
// minute, exits 0, shows each NAT type, and leaves nothing behind.
// gonat demo --happy-eyeballs builds examples/happy-eyeballs.toml and
// races from each client: IPv6 wins where it works, IPv4 after the
// attempt delay where IPv6 is blackholed or slow, IPv4 at once where it
// is refused.
func TestDemoHappyEyeballs(t *testing.T) {
	out, err := exec.Command(gonatBin, "demo", "--happy-eyeballs").CombinedOutput()
	if err != nil {
		t.Fatalf("gonat demo --happy-eyeballs: %v\n%s", err, out)
	}
	for _, c := range []struct {
		client, family string
		atLeast, under float64 // ms
	}{
		{"ok", "IPv6", 0, 200},
		{"dark", "IPv4", 250, 1000},
		{"nope", "IPv4", 0, 200},
		{"slow", "IPv4", 250, 590},
	} {
		re := regexp.MustCompile(`(?m)^   ` + c.client + `\s.*\n\s+=> (IPv[46]) wins: \S+ after ([0-9.]+) ms`)
		m := re.FindStringSubmatch(string(out))
		if m == nil {
			t.Errorf("no outcome for %s:\n%s", c.client, out)
			continue
		}
		ms, _ := strconv.ParseFloat(m[2], 64)
		if m[1] != c.family || ms < c.atLeast || ms >= c.under {
			t.Errorf("%s: %s won after %.1f ms, want %s in [%.0f, %.0f) ms", c.client, m[1], ms, c.family, c.atLeast, c.under)
		}
	}
}

func TestDemo(t *testing.T) {
	cmd := exec.Command(gonatBin, "demo")
	done := make(chan struct{})
	var out []byte
	var err error
	start := time.Now()
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("demo still running after 90s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("demo took %v, want under a minute", d)
	}
	for _, want := range []string{"full cone", "restricted cone", "port restricted cone", "symmetric", "=>", "198.51.100.1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The symmetric preset hairpins, but the probe cannot see it: the
	// demo says so rather than "no"; its random ports come from a seed
	// drawn for the run.
	if !strings.Contains(string(out), "hairpin unseen") || strings.Contains(string(out), "hairpin no") {
		t.Errorf("demo output should call the symmetric NAT's hairpin unseen, never no:\n%s", out)
	}
	if !strings.Contains(string(out), "ports random from seed ") {
		t.Errorf("demo output shows no seed for random ports:\n%s", out)
	}
	// Its namespaces are all named gd<pid>: other runs on the machine
	// may make and remove theirs meanwhile.
	after, _ := ns.List()
	mine := fmt.Sprintf("gd%d", cmd.Process.Pid)
	for _, n := range after {
		if strings.HasPrefix(n, mine) {
			t.Errorf("demo left namespace %s behind", n)
		}
	}
}

// scripts/netns-setup.sh is idempotent and removes what it made.
func TestNetnsSetupScript(t *testing.T) {
	prefix := runPrefix + "s-"
	env := append(os.Environ(), "PREFIX="+prefix)
	for i := range 2 {
		cmd := exec.Command("../scripts/netns-setup.sh")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("setup run %d: %v\n%s", i+1, err, out)
		}
	}
	t.Cleanup(func() {
		for _, n := range []string{"a", "b", "wan"} {
			ns.Delete(prefix + n)
		}
	})
	for _, n := range []string{"a", "b", "wan"} {
		if !ns.Exists(prefix + n) {
			t.Errorf("namespace %s%s missing after setup", prefix, n)
		}
	}
	out, _ := exec.Command("ip", "-n", prefix+"wan", "addr").CombinedOutput()
	if !strings.Contains(string(out), "203.0.113.1/32") || !strings.Contains(string(out), "203.0.113.2/32") {
		t.Errorf("public namespace lacks the server addresses:\n%s", out)
	}
	cmd := exec.Command("../scripts/netns-setup.sh", "down")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	for _, n := range []string{"a", "b", "wan"} {
		if ns.Exists(prefix + n) {
			t.Errorf("namespace %s%s still there after down", prefix, n)
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
