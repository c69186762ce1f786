package lab

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gonat/gonat/impair"
)

const impairLab = `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
seed = 7
impair = "delay=20ms loss=1%"
impair-in = "loss=5%"

[[host]]
name = "alice"
network = "home1"
impair = "loss=10%"

[[host]]
name = "bob"
network = "home1"

[[host]]
name = "carol"
network = "home1"
impair = "loss=2%"
impair-out = "delay=50ms"
`

// The keys land on the NAT's ports as a run's flags would: the uplink
// both ways with impair-in over impair, the host's link both ways, the
// other host's not at all; lab validate shows them.
func TestTopologyImpair(t *testing.T) {
	topo, err := Parse([]byte(impairLab), "lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	n := &topo.NATs[0]
	if got, want := n.Impair.In, impair.MustParse("delay=20ms loss=5%"); got.String() != want.String() {
		t.Errorf("uplink in %q, want %q", got, want)
	}
	if got, want := n.Impair.Out, impair.MustParse("delay=20ms loss=1%"); got.String() != want.String() {
		t.Errorf("uplink out %q, want %q", got, want)
	}
	hosts := []*HostNode{&topo.Hosts[0], &topo.Hosts[1], &topo.Hosts[2]}
	if got := topo.Hosts[2].Impair; got.In.String() != "loss=2%" || got.Out.String() != "delay=50ms loss=2%" {
		t.Errorf("carol's link: in %q, out %q", got.In, got.Out)
	}
	pis := portImpair(n, hosts)
	if len(pis) != 4 || pis[1].In.String() != "loss=10%" || pis[1].Out.String() != "loss=10%" || !pis[2].In.IsZero() || !pis[2].Out.IsZero() {
		t.Errorf("ports' impairment %+v", pis)
	}
	// The port reads what carol sends (her out) and writes what she
	// receives (her in).
	if len(pis) == 4 && (pis[3].In.String() != "delay=50ms loss=2%" || pis[3].Out.String() != "loss=2%") {
		t.Errorf("carol's port: in %q, out %q", pis[3].In, pis[3].Out)
	}
	d := topo.Describe()
	for _, want := range []string{"uplink impair in delay=20ms loss=5%, out delay=20ms loss=1%", "link impair loss=10%", "link impair in loss=2%, out delay=50ms loss=2%"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q:\n%s", want, d)
		}
	}
	plain, err := Parse([]byte(strings.ReplaceAll(strings.ReplaceAll(impairLab, "impair", "#"), "#-in", "#")), "lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	if pis := portImpair(&plain.NATs[0], []*HostNode{&plain.Hosts[0]}); pis != nil {
		t.Errorf("a lab without impairment impairs %+v", pis)
	}
}

func TestTopologyImpairErrors(t *testing.T) {
	nat := "[[nat]]\nname = \"home1\"\nexternal = \"198.51.100.1\"\ninside = \"10.0.1.0/24\"\n"
	cases := []struct{ text, want string }{
		{nat + "impair = \"loss=10\" #!\n", `nat "home1": impair "loss=10": ...`},
		{nat + "impair-out = 5 #!\n", `nat "home1": impair-out: want a string such as "delay=50ms loss=1%", got integer 5`},
		{nat + "impair = \"delay=10ms jitter=5ms\"\nimpair-in = \"jitter=20ms\" #!\n", `nat "home1": impair-in "jitter=20ms" over impair "delay=10ms jitter=5ms": jitter=20ms exceeds delay=10ms: expected jitter <= delay`},
		{nat + "[[host]]\nname = \"alice\"\nnetwork = \"home1\"\nimpair = \"los=1%\" #!\n", `host "alice": impair "los=1%": ...`},
		{"[[host]]\nname = \"pub\"\nnetwork = \"public\"\nimpair = \"loss=1\" #!\n", `host "pub": impair "loss=1": ...`},
		{"[[host]]\nname = \"pub\"\nnetwork = \"public\"\nimpair = \"off\"\nseed = \"7\" #!\n", `host "pub": seed: want a positive integer such as 7 (it seeds the impairment of the host's link), got string "7"`},
		{"[[host]]\nname = \"pub\"\nnetwork = \"public\"\nseed = 7 #!\n", `host "pub": seed: it seeds the impairment of the host's link, which has none: give it impair too ("off" to start unimpaired)`},
		{nat + "[[host]]\nname = \"alice\"\nnetwork = \"home1\"\nimpair = \"loss=1%\"\nseed = 7 #!\n", `host "alice": seed: the link of a host behind a NAT is impaired with its NAT's seed; set seed on the [[nat]]`},
		{nat + "impair-both = \"loss=1%\" #!\n", `nat "home1": unknown key "impair-both"...`},
		{nat + "impair = \"family=v6 delay=300ms\" #!\n", `nat "home1": impair "family=v6 delay=300ms": family=v6: expected ipv4 or ipv6`},
		{nat + "[[host]]\nname = \"alice\"\nnetwork = \"home1\"\nimpair-out = \"delay=5\" #!\n", `host "alice": impair-out "delay=5": ...`},
		{nat + "[[host]]\nname = \"alice\"\nnetwork = \"home1\"\nimpair-in = [\"loss=1%\"] #!\n", `host "alice": impair-in: want a string such as "delay=50ms loss=1%", got ...`},
		{nat + "[[host]]\nname = \"alice\"\nnetwork = \"home1\"\nimpair = \"delay=10ms jitter=5ms\"\nimpair-in = \"jitter=20ms\" #!\n", `host "alice": impair-in "jitter=20ms" over impair "delay=10ms jitter=5ms": jitter=20ms exceeds delay=10ms: expected jitter <= delay`},
		{nat + "[[host]]\nname = \"alice\"\nnetwork = \"home1\"\nimpair-in = \"off\" #!\n", `host "alice": impair-in "off": ...`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.text), "lab.toml")
		if err == nil {
			t.Errorf("no error for\n%s", c.text)
			continue
		}
		want := fmt.Sprintf("lab.toml:%d: %s", markerLine(t, c.text, "#!"), c.want)
		prefix := strings.HasSuffix(want, "...")
		want = strings.TrimSuffix(want, "...")
		found := false
		for _, l := range strings.Split(err.Error(), "\n") {
			if l == want || prefix && strings.HasPrefix(l, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("want the line\n  %s\ngot\n  %s", want, err)
		}
	}
}

// A public host given an impair key ("off" too) gets a wire, seeded by
// its seed, each way as given; one without keeps its veth.
func TestTopologyPublicImpair(t *testing.T) {
	topo, err := Parse([]byte(`
[[host]]
name = "server"
network = "public"
impair = "delay=50ms"
seed = 9

[[host]]
name = "quiet"
network = "public"
impair = "off"

[[host]]
name = "plain"
network = "public"

[[host]]
name = "upload"
network = "public"
impair = "off"
impair-out = "delay=5ms"

[[host]]
name = "download"
network = "public"
impair = "loss=1%"
impair-out = "off"
`), "lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		wire    bool
		in, out string
		seed    int64
	}{{true, "delay=50ms", "delay=50ms", 9}, {true, "", "", 0}, {false, "", "", 0}, {true, "", "delay=5ms", 0}, {true, "loss=1%", "", 0}} {
		h := topo.Hosts[i]
		if h.Wire != want.wire || h.Impair.In.String() != want.in || h.Impair.Out.String() != want.out || h.Seed != want.seed {
			t.Errorf("host %s: wire %t impair %q seed %d, want %+v", h.Name, h.Wire, h.Impair, h.Seed, want)
		}
	}
}
