package observe

import (
	"encoding/json"
	"slices"
	"testing"
)

// The shared NAT fields keep their JSON names, flat, in whatever embeds
// them (lab status --json and the web view's snapshot): users script
// against them.
func TestNATJSONFlat(t *testing.T) {
	type withMore struct {
		NAT
		Seed int64 `json:"seed"`
	}
	b, err := json.Marshal(withMore{NAT: NAT{Name: "home", Packets: map[string]uint64{"forward": 1}}, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"filtering", "hairpin", "mapping", "name", "packets", "port_assignment", "seed"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v (%s)", keys, want, b)
	}
}
