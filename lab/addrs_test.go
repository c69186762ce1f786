package lab

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestTopologyAddressAssignment(t *testing.T) {
	text := `
[[nat]]
name = "home"
external = "203.0.113.10"
inside = "10.0.1.0/24"
[[nat]]
name = "inner"
upstream = "home"
external = "10.0.1.2"
inside = "10.0.2.0/30"
[[nat]]
name = "odd"
external = "198.51.100.9"
inside = "203.0.113.12/30"
[[host]]
name = "b"
network = "home"
[[host]]
name = "c"
network = "home"
[[host]]
name = "a"
network = "home"
address = "10.0.1.4"
[[host]]
name = "deep"
network = "inner"
[[host]]
name = "p2"
network = "public"
[[host]]
name = "p1"
network = "public"
address = "203.0.113.11"
[[host]]
name = "p3"
network = "public"
`
	topo, err := Parse([]byte(text), "assign.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"b": "10.0.1.3", // .2 is inner's external
		"c": "10.0.1.5", // .4 is a's, given later in the file
		"a": "10.0.1.4",
		// inner's /30: .0 network, .1 gateway, .2 the only host, .3 broadcast
		"deep": "10.0.2.2",
		// public: from .10, skipping home's external (.10), p1 (.11) and
		// odd's inside network (.12-.15)
		"p2": "203.0.113.16",
		"p1": "203.0.113.11",
		"p3": "203.0.113.17",
	}
	for h, a := range want {
		if got := topo.Host(h).Addresses; !reflect.DeepEqual(got, addrs(a)) {
			t.Errorf("%s: %v, want %s", h, got, a)
		}
	}
	if g := topo.NAT("inner").Gateway; g != netip.MustParseAddr("10.0.2.1") {
		t.Errorf("inner gateway %s", g)
	}
}

// Sibling NATs may share a private range (two homes, both 10.0.0.0/24),
// whether they sit on the public network or behind one carrier NAT;
// NATs on different paths may overlap too.
func TestParseSiblingRangesAllowed(t *testing.T) {
	text := `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home1"
upstream = "carrier"
external = "100.64.0.2"
inside = "10.0.0.0/24"
[[nat]]
name = "home2"
upstream = "carrier"
external = "100.64.0.3"
inside = "10.0.0.0/24"
[[nat]]
name = "home3"
external = "198.51.100.3"
inside = "10.0.0.0/16"
[[nat]]
name = "cousin"
upstream = "home3"
external = "10.0.5.2"
inside = "100.64.0.0/24"
[[host]]
name = "alice"
network = "home1"
[[host]]
name = "bob"
network = "home2"
[[host]]
name = "carol"
network = "home3"
`
	topo, err := Parse([]byte(text), "siblings.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"alice", "bob"} {
		if got := topo.Host(h).Addresses; !reflect.DeepEqual(got, addrs("10.0.0.2")) {
			t.Errorf("%s: %v, want 10.0.0.2", h, got)
		}
	}
}
