package lab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestTopologyIPv6Assignment(t *testing.T) {
	text := `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside = "100.64.0.0/24"
inside6 = "2001:db8:100::/56"
[[nat]]
name = "home"
upstream = "carrier"
external = "100.64.0.2"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
[[nat]]
name = "v4only"
external = "198.51.100.2"
inside = "10.0.9.0/24"
[[nat]]
name = "given"
external = "198.51.100.3"
external6 = "2001:db8::7"
inside = "10.0.3.0/24"
inside6 = "fd00:3::/64"
[[host]]
name = "a"
network = "home"
[[host]]
name = "b"
network = "home"
address = ["fd00:1::9", "10.0.1.9"]
[[host]]
name = "c"
network = "home"
address = "fd00:1::2"
[[host]]
name = "d"
network = "v4only"
[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "2001:db8::10"]
[[host]]
name = "plain"
network = "public"
`
	topo, err := Parse([]byte(text), "dual.toml")
	if err != nil {
		t.Fatal(err)
	}
	nat := func(name string) *NATNode { return topo.NAT(name) }
	if got := nat("carrier").External6; !slices.Equal(got, []netip.Addr{public6First}) {
		t.Errorf("carrier external6 %v, want %v (first of the public pool)", got, public6First)
	}
	if got := nat("home").External6; !slices.Equal(got, []netip.Addr{netip.MustParseAddr("2001:db8:100::2")}) {
		t.Errorf("home external6 %v, want 2001:db8:100::2 (next free in carrier's inside6)", got)
	}
	if got := nat("home").Gateway6; got != netip.MustParseAddr("fd00:1::1") {
		t.Errorf("home gateway6 %v", got)
	}
	if got := nat("given").External6; !slices.Equal(got, []netip.Addr{netip.MustParseAddr("2001:db8::7")}) {
		t.Errorf("given external6 %v", got)
	}
	if got := nat("given").Behavior.External6; !slices.Equal(got, nat("given").External6) {
		t.Errorf("behaviour's External6 %v, want the NAT's", got)
	}
	if n := nat("v4only"); n.Inside6.IsValid() || len(n.External6) > 0 || len(n.Behavior.External6) > 0 {
		t.Errorf("an IPv4-only NAT got IPv6: %+v", n)
	}
	want := map[string]string{
		"a":      "10.0.1.2 fd00:1::3", // fd00:1::2 is c's, given later
		"b":      "10.0.1.9 fd00:1::9",
		"c":      "10.0.1.3 fd00:1::2", // IPv4 assigned, first
		"d":      "10.0.9.2",
		"server": "203.0.113.10 2001:db8::10",
		"plain":  "203.0.113.11", // no IPv6 unless given
	}
	for name, w := range want {
		if got := joinAddrs(topo.Host(name).Addresses); got != w {
			t.Errorf("host %s: %s, want %s", name, got, w)
		}
	}
	if !topo.HasIPv6() {
		t.Error("HasIPv6 false")
	}
	rec := topo.DNSRecords()
	if !slices.Contains(rec["server"], netip.MustParseAddr("2001:db8::10")) || !slices.Contains(rec["carrier"], public6First) {
		t.Errorf("DNS records lack the IPv6 addresses: %v", rec)
	}
	d := topo.Describe()
	for _, s := range []string{"external6 2001:db8::100, inside6 2001:db8:100::/56", "203.0.113.10 2001:db8::10", "10.0.1.2 fd00:1::3"} {
		if !strings.Contains(d, s) {
			t.Errorf("Describe lacks %q:\n%s", s, d)
		}
	}
	if strings.Contains(d, "external6 , ") {
		t.Errorf("Describe shows empty IPv6 for an IPv4-only NAT:\n%s", d)
	}

	// The inside ports: IPv6 prefixes in inside6's length beside IPv4,
	// a nested NAT's external6 on its transit port.
	l := &Lab{Name: "dual", nodes: map[string]*Node{}}
	for _, n := range topo.NATs {
		l.nodes[n.Name] = &Node{Namespace: "x." + n.Name}
	}
	spec := l.specOf(nat("carrier"), nil, []*NATNode{nat("home")}, Options{}, "", func(string, ...any) {})
	if got := spec.Inside[0].Hosts; !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("100.64.0.2/24"), netip.MustParsePrefix("2001:db8:100::2/56")}) {
		t.Errorf("transit port hosts %v", got)
	}
	spec = l.specOf(nat("home"), []*HostNode{topo.Host("a")}, nil, Options{}, "", func(string, ...any) {})
	if got := spec.Inside[0].Hosts; !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.1.2/24"), netip.MustParsePrefix("fd00:1::3/64")}) {
		t.Errorf("host port %v", got)
	}
}

func TestTopologyIPv4OnlyHasNoIPv6(t *testing.T) {
	topo, err := Parse([]byte(briefExample), "brief.toml")
	if err != nil {
		t.Fatal(err)
	}
	if topo.HasIPv6() {
		t.Error("an IPv4-only topology carries IPv6")
	}
}

// address6ErrorCases are the IPv6 rules (see parseErrorCases).
var address6ErrorCases = []parseErrorCase{
	{"inside6-not-ipv6", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "10.0.2.0/24" #!
`, `nat "home1": inside6 "10.0.2.0/24": want an IPv6 network such as fd00:1::/64 (the IPv4 one is inside)`},
	{"inside6-host-bits", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::5/64" #!
`, `nat "home1": inside6 "fd00:1::5/64": has host bits set: want the network address fd00:1::/64 (the NAT itself takes fd00:1::1)`},
	{"inside6-too-small", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/127" #!
`, `nat "home1": inside6 "fd00:1::/127": want a prefix length from /48 to /124, e.g. /64`},
	{"inside6-public-pool", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "2001:db8::/64" #!
`, `nat "home1": inside6 "2001:db8::/64": overlaps 2001:db8::/48, the public network's IPv6 space`},
	{"inside6-global", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "2a00:1::/64" #!
`, `nat "home1": inside6 "2a00:1::/64": outside fd00::/8 and 2001:db8::/32: want a range such as fd00:1::/64`},
	{"inside6-type", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = 64 #!
`, `nat "home1": inside6: want a string such as "fd00:1::/64", got integer 64`},
	{"external6-without-inside6", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
external6 = "2001:db8::100" #!
`, `nat "home1": external6 without inside6: a NAT carries IPv6 only with an inside6 network (e.g. inside6 = "fd00:1::/64")`},
	{"external6-ipv4", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
external6 = "198.51.100.2" #!
`, `nat "home1": external6 "198.51.100.2": an IPv4 address: want an IPv6 one such as 2001:db8::10`},
	{"external6-not-public", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
external6 = "fd00:9::1" #!
`, `nat "home1": external6 fd00:9::1 is not a public address: the public network's IPv6 addresses are in 2001:db8::/32`},
	{"external6-in-inside6", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "2001:db8:5::/64"
[[nat]]
name = "home2"
external = "198.51.100.2"
inside = "10.0.2.0/24"
inside6 = "fd00:2::/64"
external6 = "2001:db8:5::9" #!
`, `nat "home2": external6 2001:db8:5::9 is a public address inside nat "home1"'s network 2001:db8:5::/64: public addresses must not lie in a private range the lab uses (routes would be ambiguous)`},
	{"nested-inside6-without-upstream-inside6", `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home"
upstream = "carrier"
external = "100.64.0.2"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64" #!
`, `nat "home": inside6 behind nat "carrier", which has no inside6: its IPv6 would have no way out (give nat "carrier" an inside6 network)`},
	{"nested-inside6-overlap", `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside = "100.64.0.0/24"
inside6 = "fd00::/48"
[[nat]]
name = "home"
upstream = "carrier"
external = "100.64.0.2"
inside = "10.0.1.0/24"
inside6 = "fd00:0:0:1::/64" #!
`, `nat "home": inside6 fd00:0:0:1::/64 overlaps network carrier (fd00::/48) on its path to the public network: addresses there would be ambiguous (NATs on one path need disjoint ranges; NATs on different paths may share one)`},
	{"host-ipv6-without-inside6", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "a"
network = "home1"
address = ["10.0.1.2", "fd00:1::2"] #!
`, `host "a": address fd00:1::2: network home1 has no IPv6 (give nat "home1" an inside6 network)`},
	{"host-ipv6-outside-inside6", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
[[host]]
name = "a"
network = "home1"
address = "fd00:2::2" #!
`, `host "a": address fd00:2::2 is outside network home1 (fd00:1::/64)`},
	{"host-ipv6-gateway", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
[[host]]
name = "a"
network = "home1"
address = "fd00:1::1" #!
`, `host "a": address fd00:1::1 is the gateway of network home1 (fd00:1::/64): the NAT's own inside address; hosts start at fd00:1::2`},
	{"host-ipv6-anycast", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
[[host]]
name = "a"
network = "home1"
address = "fd00:1::" #!
`, `host "a": address fd00:1:: is the subnet-router anycast address of network home1 (fd00:1::/64): hosts start at fd00:1::2`},
	{"host-ipv6-taken", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
[[host]]
name = "a"
network = "home1"
address = "fd00:1::5"
[[host]]
name = "b"
network = "home1"
address = "fd00:1::5" #!
`, `host "b": address fd00:1::5 is already used by host "a" (line 10) in network home1`},
	{"public-host-ula", `
[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "fd00::10"] #!
`, `host "server": address fd00::10 is not a public address: the public network's IPv6 addresses are in 2001:db8::/32`},
	{"public-host-link-local", `
[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "fe80::10"] #!
`, `host "server": address "fe80::10": outside 2001:db8::/32 (documentation, public) and fd00::/8 (unique local, inside)`},
	{"public-host-ipv6-prefix", `
[[host]]
name = "server"
network = "public"
address = "2001:db8::10/64" #!
`, `host "server": address "2001:db8::10/64": want a plain address such as 2001:db8::10, without a /prefix length`},
}
