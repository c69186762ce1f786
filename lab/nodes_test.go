package lab

import (
	"slices"
	"testing"
)

// The web view draws the nodes in the order Nodes gives them, once a
// second: the order must not follow map iteration, or NATs and public
// boxes swap places between refreshes.
func TestNodesOrderStable(t *testing.T) {
	topo := &Topology{
		NATs:  []NATNode{{Name: "zeta"}, {Name: "alpha"}, {Name: "mid"}},
		Hosts: []HostNode{{Name: "stun"}, {Name: "bob"}, {Name: "alice"}},
	}
	l := &Lab{Topo: topo, nodes: map[string]*Node{
		Public:  {Name: Public, Kind: "public"},
		"zeta":  {Name: "zeta", Kind: "nat"},
		"alpha": {Name: "alpha", Kind: "nat"},
		"mid":   {Name: "mid", Kind: "nat"},
		"stun":  {Name: "stun", Kind: "host"},
		"bob":   {Name: "bob", Kind: "host"},
		"alice": {Name: "alice", Kind: "host"},
	}}
	want := []string{"stun", "bob", "alice", "zeta", "alpha", "mid", Public}
	for range 200 {
		var got []string
		for _, n := range l.Nodes() {
			got = append(got, n.Name)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Nodes() = %v, want %v (hosts, NATs, public; each in file order)", got, want)
		}
	}

	// gonat run's lab of one has no file: hosts by name, then the NAT,
	// then the public network.
	single := &Lab{nodes: map[string]*Node{
		Public: {Name: Public, Kind: "public"},
		"home": {Name: "home", Kind: "nat"},
		"b":    {Name: "b", Kind: "host"},
		"a":    {Name: "a", Kind: "host"},
	}}
	for range 200 {
		var got []string
		for _, n := range single.Nodes() {
			got = append(got, n.Name)
		}
		if want := []string{"a", "b", "home", Public}; !slices.Equal(got, want) {
			t.Fatalf("Nodes() = %v, want %v", got, want)
		}
	}
}
