package lab

import (
	"net/netip"
	"slices"
	"testing"
)

// nptv6 NATs take the /48s of nptv6Pool in order, skipping one given;
// other NATs keep drawing from public6Pool.
func TestTopologyNPTv6Assignment(t *testing.T) {
	text := `
[[nat]]
name = "a"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/48"
ipv6 = "nptv6"
[[nat]]
name = "b"
external = "198.51.100.2"
inside = "10.0.2.0/24"
inside6 = "fd00:2::/64"
ipv6 = "nptv6"
external6 = "2001:db8:4001::9"
[[nat]]
name = "c"
external = "198.51.100.3"
inside = "10.0.3.0/24"
inside6 = "fd00:3::/56"
ipv6 = "nptv6"
[[nat]]
name = "d"
external = "198.51.100.4"
inside = "10.0.4.0/24"
inside6 = "fd00:4::/64"
ipv6 = "routed"
[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "2001:db8::10"]
`
	topo, err := Parse([]byte(text), "npt.toml")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "2001:db8:4000::1", "b": "2001:db8:4001::9", "c": "2001:db8:4002::1", "d": "2001:db8::100"} {
		if got := topo.NAT(name).External6; !slices.Equal(got, []netip.Addr{netip.MustParseAddr(want)}) {
			t.Errorf("nat %s external6 %v, want %s", name, got, want)
		}
		if got := topo.NAT(name).Behavior.External6; !slices.Equal(got, []netip.Addr{netip.MustParseAddr(want)}) {
			t.Errorf("nat %s behaviour's External6 %v, want %s", name, got, want)
		}
	}
}

// nptv6ErrorCases are the rules for NATs in the nptv6 mode (see
// parseErrorCases).
var nptv6ErrorCases = []parseErrorCase{
	{"nptv6-without-inside6", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
ipv6 = "nptv6" #!
`, `nat "home1": ipv6 = "nptv6" without inside6: there is no IPv6 prefix to translate (give an inside6 network, e.g. inside6 = "fd00:1::/48")`},
	{"nptv6-nested", `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside = "100.64.0.0/24"
inside6 = "fd00:64::/64"
[[nat]]
name = "home1"
upstream = "carrier"
external = "100.64.0.2"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
ipv6 = "nptv6" #!
`, `nat "home1": ipv6 = "nptv6" behind nat "carrier": an nptv6 NAT must be on the public network, where its external prefix (from 2001:db8:4000::/40) is routed`},
	{"nptv6-inside6-too-long", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/80" #!
ipv6 = "nptv6"
`, `nat "home1": inside6 fd00:1::/80 is longer than /64: ipv6 = "nptv6" maps prefixes of /48 to /64 (RFC 6296 section 3.1)`},
	{"nptv6-external6-outside-pool", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
ipv6 = "nptv6"
external6 = "2001:db8::100" #!
`, `nat "home1": external6 2001:db8::100 is outside 2001:db8:4000::/40: with ipv6 = "nptv6" the NAT's external prefix is the /48 around external6, and nptv6 NATs take theirs from 2001:db8:4000::/40 (leave external6 out for the next free one)`},
	{"nptv6-external6-shared", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
ipv6 = "nptv6"
external6 = "2001:db8:4000::1"
[[nat]]
name = "home2"
external = "198.51.100.2"
inside = "10.0.2.0/24"
inside6 = "fd00:2::/64"
ipv6 = "nptv6"
external6 = "2001:db8:4000::2" #!
`, `nat "home2": external6 2001:db8:4000::2 is in 2001:db8:4000::/48, the external prefix of nat "home1": each nptv6 NAT needs a /48 of its own`},
	{"nptv6-pool-public-host", `
[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "2001:db8:4000::10"] #!
`, `host "server": address 2001:db8:4000::10 is in 2001:db8:4000::/40, the external prefixes of NATs with ipv6 = "nptv6": public hosts and other NATs take IPv6 addresses elsewhere in 2001:db8::/32`},
	{"nptv6-pool-routed-nat", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
external6 = "2001:db8:4000::1" #!
`, `nat "home1": external6 2001:db8:4000::1 is in 2001:db8:4000::/40, the external prefixes of NATs with ipv6 = "nptv6": public hosts and other NATs take IPv6 addresses elsewhere in 2001:db8::/32`},
	{"inside6-in-nptv6-pool", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
inside6 = "2001:db8:4000::/64" #!
`, `nat "home1": inside6 "2001:db8:4000::/64": overlaps 2001:db8:4000::/40, the external prefixes of nptv6 NATs`},
}
