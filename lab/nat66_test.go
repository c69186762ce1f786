package lab

import "testing"

// nat66ErrorCases are the rules for NATs in the nat66 mode (see
// parseErrorCases).
var nat66ErrorCases = []parseErrorCase{
	{"nat66-without-inside6", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
ipv6 = "nat66" #!
`, `nat "home1": ipv6 = "nat66" without inside6: no inside host has an IPv6 address to translate (give an inside6 network, e.g. inside6 = "fd00:1::/64")`},
}

// A nat66 NAT takes external6 upstream as any dual-stack NAT does.
func TestTopologyNAT66External6(t *testing.T) {
	topo, err := Parse([]byte(`
[[nat]]
name = "a"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
ipv6 = "nat66"
`), "nat66.toml")
	if err != nil {
		t.Fatal(err)
	}
	if e := topo.NAT("a").External6; len(e) != 1 || e[0].String() != "2001:db8::100" {
		t.Fatalf("external6 %v, want 2001:db8::100", e)
	}
}
