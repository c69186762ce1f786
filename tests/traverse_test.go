package tests

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonat/gonat/experiment"
	"github.com/gonat/gonat/lab/labtest"
)

// `gonat matrix` agrees with the expected table: UDP and TCP over the
// four classic types, and UDP over all nine mapping x filtering pairs.
func TestMatrix(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside another such test (see the package comment)
	for _, args := range [][]string{{"matrix", "--json"}, {"matrix", "--json", "--tcp"}, {"matrix", "--json", "--all"}} {
		t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
			cmd := exec.Command(gonatBin, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var outs []struct {
				A, B                string
				Expected, Connected bool
				Error               string
			}
			if jerr := json.Unmarshal(out, &outs); jerr != nil {
				t.Fatalf("matrix output is not JSON (%v, exit %v):\n%s\n%s", jerr, err, out, stderr.String())
			}
			want := 10
			if len(args) == 3 && args[2] == "--all" {
				want = 45
			}
			if len(outs) != want {
				t.Fatalf("%d outcomes, want %d", len(outs), want)
			}
			// The model, computed here rather than taken from the binary's
			// "expected": RFC 8445 agents, not permissive peers, by default.
			model := map[[2]string]bool{}
			types := experiment.ClassicTypes()
			if want == 45 {
				types = experiment.AllCombinations()
			}
			for _, a := range types {
				for _, b := range types {
					model[[2]string{a.Name, b.Name}] = experiment.Expected(a, b, false)
				}
			}
			yes := 0
			for _, o := range outs {
				if m, ok := model[[2]string{o.A, o.B}]; !ok || m != o.Expected {
					t.Errorf("%s x %s: the binary expected %v, the RFC 8445 model says %v", o.A, o.B, o.Expected, m)
				}
				if o.Error != "" || o.Connected != o.Expected {
					t.Errorf("%s x %s: connected %v, expected %v %s", o.A, o.B, o.Connected, o.Expected, o.Error)
				}
				if o.Connected {
					yes++
				}
			}
			if yes == 0 || yes == len(outs) {
				t.Errorf("%d of %d pairs connected: the matrix cannot tell NAT types apart", yes, len(outs))
			}
			if err != nil {
				t.Errorf("matrix exit: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "/"+itoa(want)+"]") {
				t.Errorf("no progress lines on stderr:\n%s", stderr.String())
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The real commands on a lab: rendezvous server as a host command, two
// `gonat peer` runs through `gonat lab exec`, full cone with symmetric:
// they connect, and say which pair did.
func TestPeersThroughLabExec(t *testing.T) {
	file, _ := filepath.Abs("../examples/two-homes.toml")
	name := labUp(t, file)
	reps, outs := runLabPeers(t, name, 15*time.Second, 0)
	for i, r := range reps {
		if !r.Connected || !r.MessageExchanged {
			t.Errorf("peer %d: %+v\n%s", i, r, outs[i])
		}
	}
}

// labUp brings up the lab of file in the background under a name of this
// run's, to be taken down when the test ends whatever happened, and
// returns the name.
func labUp(t *testing.T, file string) string {
	t.Helper()
	name := labtest.Name()
	t.Cleanup(func() { gonatRun("lab", "down", "--lab", name) })
	if out, code := gonatRun("lab", "up", "-d", file, "--name", name); code != 0 {
		t.Fatalf("lab up: %d\n%s", code, out)
	}
	return name
}

type peerReport struct {
	Connected        bool   `json:"connected"`
	MessageExchanged bool   `json:"message_exchanged"`
	Reason           string `json:"reason"`
	Detail           string `json:"detail"`
}

// runLabPeers runs `gonat peer` as alice and bob in lab name through `gonat
// lab exec`, alice starting delay after bob, with extra peer flags.
func runLabPeers(t *testing.T, name string, timeout, delay time.Duration, extra ...string) ([2]peerReport, [2]string) {
	t.Helper()
	var reps [2]peerReport
	var outs [2]string
	var wg sync.WaitGroup
	for i, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p[0] == "alice" {
				time.Sleep(delay)
			}
			args := append([]string{"lab", "exec", "--lab", name, p[0], "--", gonatBin, "peer", "--rendezvous", "203.0.113.20:7000",
				"--name", p[0], "--connect", p[1], "--json", "--timeout", timeout.String()}, extra...)
			outs[i], _ = gonatRun(args...)
			if j := strings.Index(outs[i], "{"); j >= 0 {
				json.NewDecoder(strings.NewReader(outs[i][j:])).Decode(&reps[i])
			}
		}()
	}
	wg.Wait()
	return reps, outs
}

// The README's failure case, as a user walks it: a run that connects
// (full cone x symmetric), then home-a made port-restricted and the peers
// run again, bob first. Nothing gets through either way, so both must say
// "filtered"; neither may claim the other received its packets (a result
// left on the rendezvous server by the first run is not about this one).
func TestPeerReportAfterNATChange(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside another such test (see the package comment)
	file, _ := filepath.Abs("../examples/two-homes.toml")
	name := labUp(t, file)
	reps, outs := runLabPeers(t, name, 10*time.Second, 0)
	for i, r := range reps {
		if !r.Connected {
			t.Fatalf("first run, peer %d: %+v\n%s", i, r, outs[i])
		}
	}
	if out, code := gonatRun("lab", "set", "--lab", name, "home-a", "--preset", "port-restricted-cone"); code != 0 {
		t.Fatalf("lab set: %d\n%s", code, out)
	}
	reps, outs = runLabPeers(t, name, 4*time.Second, 300*time.Millisecond)
	for i, r := range reps {
		if r.Connected || r.Reason != "filtered" {
			t.Errorf("second run, peer %d: %+v, want not connected, reason filtered\n%s", i, r, outs[i])
		}
	}
}

// Both NATs address-and-port-dependent mapping, no filtering: each check
// arrives, but every response leaves from a new mapping, so `gonat peer`
// (an RFC 8445 agent by default) does not connect and says why, while
// --permissive connects on those responses.
func TestPeerStrictAndPermissive(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside another such test (see the package comment)
	file, _ := labFile(t, `name = "apdm"
[[nat]]
name = "home-a"
mapping = "apdm"
filtering = "eif"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
[[nat]]
name = "home-b"
mapping = "apdm"
filtering = "eif"
external = ["198.51.100.2"]
inside = "10.0.2.0/24"
[[host]]
name = "alice"
network = "home-a"
[[host]]
name = "bob"
network = "home-b"
[[host]]
name = "rendezvous"
network = "public"
address = "203.0.113.20"
run = ["gonat", "rendezvous", "--listen", "203.0.113.20:7000"]
`)
	name := labUp(t, file)
	reps, outs := runLabPeers(t, name, 3*time.Second, 0)
	for i, r := range reps {
		if r.Connected || r.Reason != "asymmetric" {
			t.Errorf("peer %d: %+v, want not connected, reason asymmetric\n%s", i, r, outs[i])
		}
	}
	reps, outs = runLabPeers(t, name, 5*time.Second, 0, "--permissive")
	for i, r := range reps {
		if !r.Connected || !r.MessageExchanged {
			t.Errorf("--permissive, peer %d: %+v\n%s", i, r, outs[i])
		}
	}
}
