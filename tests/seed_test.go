package tests

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var seedRE = regexp.MustCompile(`\bseed (\d+)\b`)

// Without --seed, gonat run draws a seed and prints it in the ready line;
// --seed with that number hands out the same random ports again, and the
// next run without it draws another.
func TestRunSeedDrawnAndRepeatable(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	run := func(extra ...string) (int64, []uint16) {
		t.Helper()
		tp.stopped = false
		tp.startNAT(append([]string{"--port-assignment", "random"}, extra...)...)
		m := seedRE.FindStringSubmatch(tp.stdout.String())
		if m == nil {
			t.Fatalf("no seed in the ready line:\n%s", tp.stdout.String())
		}
		seed, _ := strconv.ParseInt(m[1], 10, 64)
		var ports []uint16
		for range 5 {
			ports = append(ports, mapped(t, udp(t, tp.A, ":0"), stunServer).Port())
		}
		tp.stopNAT()
		return seed, ports
	}
	seed, ports := run()
	if seed == 0 {
		t.Fatalf("drawn seed is 0")
	}
	again, same := run("--seed", strconv.FormatInt(seed, 10))
	if again != seed || !slices.Equal(ports, same) {
		t.Errorf("--seed %d: seed %d, ports %v; first run %v", seed, again, same, ports)
	}
	other, otherPorts := run()
	if other == seed || slices.Equal(ports, otherPorts) {
		t.Errorf("two runs without --seed: seeds %d and %d, ports %v and %v", seed, other, ports, otherPorts)
	}
}

// Each NAT of a lab draws its own seed, shown by lab status (text and
// JSON); a seed in the topology is kept, and so is a drawn one across
// lab set.
func TestLabSeeds(t *testing.T) {
	file, _ := labFile(t, `name = "seeds"
[[nat]]
name = "home-a"
preset = "symmetric"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
[[nat]]
name = "home-b"
preset = "symmetric"
external = ["198.51.100.2"]
inside = "10.0.2.0/24"
[[nat]]
name = "home-c"
preset = "symmetric"
seed = 42
external = ["198.51.100.3"]
inside = "10.0.3.0/24"
[[host]]
name = "alice"
network = "home-a"
[[host]]
name = "bob"
network = "home-b"
[[host]]
name = "carol"
network = "home-c"
`)
	name := labUp(t, file)
	seeds := func() map[string]int64 {
		t.Helper()
		out, code := gonatRun("lab", "status", "--lab", name, "--json")
		var st struct {
			NATs []struct {
				Name string
				Seed int64
			}
		}
		if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &st) != nil {
			t.Fatalf("lab status --json: %d\n%s", code, out)
		}
		m := map[string]int64{}
		for _, n := range st.NATs {
			m[n.Name] = n.Seed
		}
		return m
	}
	s := seeds()
	if s["home-a"] == 0 || s["home-b"] == 0 || s["home-a"] == s["home-b"] || s["home-c"] != 42 {
		t.Errorf("seeds %v: want two different drawn ones and home-c 42", s)
	}
	out, _ := gonatRun("lab", "status", "--lab", name)
	if !strings.Contains(out, "SEED") || !strings.Contains(out, strconv.FormatInt(s["home-a"], 10)) {
		t.Errorf("lab status text shows no seeds:\n%s", out)
	}
	if out, code := gonatRun("lab", "set", "--lab", name, "home-a", "--preset", "port-restricted-cone"); code != 0 {
		t.Fatalf("lab set: %d\n%s", code, out)
	}
	if after := seeds(); after["home-a"] != s["home-a"] {
		t.Errorf("lab set changed home-a's seed from %d to %d", s["home-a"], after["home-a"])
	}
}
