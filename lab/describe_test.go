package lab

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestTopologyDescribeGolden(t *testing.T) {
	for _, name := range []string{"nested", "two-homes"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".toml")
			if name == "two-homes" {
				path = filepath.Join("..", "examples", name+".toml")
			}
			topo, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			topo.File = name + ".toml" // the golden text does not depend on the directory
			got := topo.Describe()
			golden := filepath.Join("testdata", name+".describe.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Describe:\n%s\nwant:\n%s", got, want)
			}
			for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if strings.TrimRight(l, " ") != l {
					t.Errorf("trailing space: %q", l)
				}
			}
		})
	}
}

func TestNATSummary(t *testing.T) {
	topo, err := Parse([]byte(`
[[nat]]
name = "n"
preset = "symmetric"
filtering = "eif"
hairpin = false
external = "198.51.100.1"
inside = "10.0.0.0/24"
`), "")
	if err != nil {
		t.Fatal(err)
	}
	want := "preset symmetric (filtering=eif, hairpin=false): APDM/EIF, random, hairpin off"
	if got := topo.NATs[0].Summary(); got != want {
		t.Errorf("Summary: %q\nwant %q", got, want)
	}
}
