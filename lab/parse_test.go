package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/table"
)

func TestParseSettingTypes(t *testing.T) {
	text := `
[[nat]]
name = "n"
preset = "Linux"
external = "198.51.100.1"
inside = "10.0.0.0/16"
hairpin = true
parity = true
inbound-refresh = false
seed = 7
udp-timeout = "30s"
udp-unreplied-timeout = "10s"
linux-low-ports = false
port-overloading = false
tcp-established-timeout = "1h"
tcp-transitory-timeout = "2m"
icmp-timeout = "10s"
port-range = "20000-29999"
mapping = "apdm"
filtering = "eif"
port-assignment = "sequential"
pooling = "arbitrary"
`
	topo, err := Parse([]byte(text), "")
	if err != nil {
		t.Fatal(err)
	}
	n := topo.NATs[0]
	want := map[string]string{
		"hairpin": "true", "parity": "true", "inbound-refresh": "false", "seed": "7",
		"udp-timeout": "30s", "tcp-established-timeout": "1h", "tcp-transitory-timeout": "2m", "icmp-timeout": "10s",
		"udp-unreplied-timeout": "10s", "linux-low-ports": "false", "port-overloading": "false",
		"port-range": "20000-29999", "mapping": "apdm", "filtering": "eif", "port-assignment": "sequential", "pooling": "arbitrary",
	}
	if !reflect.DeepEqual(n.Settings, want) {
		t.Errorf("settings %v\nwant %v", n.Settings, want)
	}
	c := n.Behavior
	if c.UDPUnrepliedTimeout != 10*time.Second || c.LinuxLowPorts {
		t.Errorf("udp-unreplied-timeout %v (want 10s), linux-low-ports %v (want false, over the linux preset's true)", c.UDPUnrepliedTimeout, c.LinuxLowPorts)
	}
	if n.Preset != "linux" || !c.Hairpin || !c.Parity || c.InboundRefresh || c.Seed != 7 || c.UDPTimeout != 30*time.Second ||
		c.TCPEstablishedTimeout != time.Hour || c.TCPTransitoryTimeout != 2*time.Minute || c.ICMPTimeout != 10*time.Second ||
		c.PortLo != 20000 || c.PortHi != 29999 || c.Mapping != table.AddressAndPortDependent || c.Filtering != table.EndpointIndependent ||
		c.PortAssignment != table.Sequential || c.Pooling != table.Arbitrary {
		t.Errorf("preset %q behaviour %+v", n.Preset, c)
	}
	if topo.Name != "lab" {
		t.Errorf("name of an unnamed text: %q, want lab", topo.Name)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, text := range []string{"", "# nothing\n", `name = "x"`} {
		_, err := Parse([]byte(text), "lab.toml")
		if err == nil || err.Error() != "lab.toml: no [[nat]] or [[host]] tables: a lab needs at least one node" {
			t.Errorf("%q: %v", text, err)
		}
	}
	_, err := Parse(nil, "")
	if err == nil || err.Error() != "no [[nat]] or [[host]] tables: a lab needs at least one node" {
		t.Errorf("no file name: %v", err)
	}
	_, err = Parse([]byte("[[host]]\nname = \"Bad\"\nnetwork = \"public\"\n"), "")
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: host \"Bad\": name") {
		t.Errorf("no file name: %v", err)
	}
}

func TestParseAllProblemsReported(t *testing.T) {
	text := `
name = "Bad Name"
[[nat]]
name = "home1"
preset = "fullcone"
external = "198.51.100"
inside = "10.0.1.0/24"
colour = "red"
[[host]]
name = "alice"
network = "home9"
`
	_, err := Parse([]byte(text), "lab.toml")
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"lab.toml:2: ", "lab.toml:5: ", "lab.toml:6: ", "lab.toml:8: ", "lab.toml:11: "}
	if len(lines) != len(want) {
		t.Fatalf("%d problems, want %d:\n%s", len(lines), len(want), err)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) {
			t.Errorf("problem %d: %q, want it to start %q", i, l, want[i])
		}
	}

	// At most 20, then a last line saying there were more.
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "[[host]]\nname = \"h%d\"\nnetwork = \"nowhere\"\n", i)
	}
	_, err = Parse([]byte(b.String()), "many.toml")
	lines = strings.Split(err.Error(), "\n")
	if len(lines) != 21 || lines[20] != "many.toml: too many problems; fix these first" || !strings.HasPrefix(lines[0], "many.toml:3: host \"h0\"") {
		t.Errorf("%d lines:\n%s", len(lines), err)
	}
}

// A [nat] written for [[nat]] is one problem: the hosts behind it are
// still checked against it, not reported as behind an unknown NAT.
func TestSingleTableIsOneProblem(t *testing.T) {
	_, err := Parse([]byte(`
[nat]
name = "home"
external = "198.51.100.1"
inside = "10.0.0.0/24"

[[host]]
name = "alice"
network = "home"
`), "lab.toml")
	want := "lab.toml:2: [nat]: write [[nat]] (an array of tables, one per nat), not [nat]"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*.toml"))
	more, _ := filepath.Glob(filepath.Join("testdata", "*.toml"))
	for _, file := range append(files, more...) {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(briefExample))
	for _, c := range parseErrorCases {
		f.Add([]byte(c.text))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := Parse(data, "fuzz.toml")
		_, err2 := Parse(data, "fuzz.toml")
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			lines := strings.Split(err.Error(), "\n")
			if len(lines) > maxProblems+1 {
				t.Fatalf("%d lines", len(lines))
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "fuzz.toml:") {
					t.Fatalf("line without the file name: %q", l)
				}
			}
			return
		}
		if len(topo.Order()) != len(topo.NATs) {
			t.Fatalf("Order has %d of %d NATs", len(topo.Order()), len(topo.NATs))
		}
		for _, n := range topo.NATs {
			p := topo.Path(n.Name)
			v6only := !n.Inside.IsValid() && !n.Gateway.IsValid() && n.IsNAT64() && n.Inside6.IsValid()
			if len(p) == 0 || p[len(p)-1].Upstream != Public || n.Gateway != n.Inside.Addr().Next() && !v6only || len(n.Behavior.External) == 0 {
				t.Fatalf("nat %s: path %v gateway %s", n.Name, p, n.Gateway)
			}
		}
		for _, h := range topo.Hosts {
			if len(h.Addresses) == 0 {
				t.Fatalf("host %s has no address", h.Name)
			}
			if h.Network != Public {
				n := topo.NAT(h.Network)
				for _, a := range h.Addresses {
					in, gw := n.Inside, n.Gateway
					if a.Is6() {
						in, gw = n.Inside6, n.Gateway6
					}
					if !in.Contains(a) || a == gw {
						t.Fatalf("host %s: %s in %s", h.Name, a, in)
					}
				}
			}
		}
		if topo.Describe() == "" {
			t.Fatal("empty Describe")
		}
	})
}

// The limits, the ICMP error limits and the port hold are [[nat]] keys
// like every setting: integers and durations.
func TestParseLimits(t *testing.T) {
	text := `
[[nat]]
name = "n"
external = "198.51.100.1"
inside = "10.0.0.0/24"
limit-mappings-per-host = 200
limit-sessions-per-mapping = 100
limit-mappings = 0
limit-sessions = 5000
icmp-rate = 10
icmp-interval = "500ms"
port-hold = "30s"
`
	topo, err := Parse([]byte(text), "")
	if err != nil {
		t.Fatal(err)
	}
	c := topo.NATs[0].Behavior
	if c.LimitMappingsPerHost != 200 || c.LimitSessionsPerMapping != 100 || c.LimitMappings != 0 ||
		c.LimitSessions != 5000 || c.ICMPRate != 10 || c.ICMPInterval != 500*time.Millisecond || c.PortHold != 30*time.Second {
		t.Errorf("behaviour %+v", c)
	}
	_, err = Parse([]byte(strings.Replace(text, "limit-sessions = 5000", "limit-sessions = -1", 1)), "lab.toml")
	if err == nil || !strings.Contains(err.Error(), "limit-sessions") {
		t.Errorf("a negative limit: %v", err)
	}
}
