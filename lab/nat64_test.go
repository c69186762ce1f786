package lab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gonat/gonat/labdns"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
)

// A nat64 NAT's hosts get IPv6 addresses only; the lab DNS server has a
// DNS64 view for the NAT's external address, and its hosts reach the
// server (and every public IPv4 address) embedded in the NAT's prefix.
func TestTopologyNAT64(t *testing.T) {
	text := `
[[nat]]
name = "carrier"
external = "198.51.100.64"
inside6 = "fd00:64::/64"
ipv6 = "nat64"
[[nat]]
name = "other"
external = "198.51.100.65"
inside6 = "fd00:65::/64"
ipv6 = "nat64"
nat64-prefix = "2001:db8:6400::/48"
[[host]]
name = "phone"
network = "carrier"
[[host]]
name = "server"
network = "public"
`
	topo, err := Parse([]byte(text), "nat64.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Host("phone").Addresses; !slices.Equal(got, []netip.Addr{netip.MustParseAddr("fd00:64::2")}) {
		t.Errorf("phone's addresses %v, want only fd00:64::2", got)
	}
	if d := topo.Describe(); !strings.Contains(d, "external 198.51.100.64, IPv6-only inside;") {
		t.Errorf("Describe does not call carrier's inside IPv6-only:\n%s", d)
	}
	want := []labdns.View{
		{Clients: netip.MustParsePrefix("198.51.100.64/32"), Prefix: netip.MustParsePrefix("64:ff9b::/96")},
		{Clients: netip.MustParsePrefix("198.51.100.65/32"), Prefix: netip.MustParsePrefix("2001:db8:6400::/48")},
	}
	if got := topo.DNS64Views(); !slices.EqualFunc(got, want, func(a, b labdns.View) bool { return a.Clients == b.Clients && a.Prefix == b.Prefix }) {
		t.Errorf("views %+v, want %+v", got, want)
	}
	for net, want := range map[string]string{"carrier": "64:ff9b::203.0.113.53", "other": "2001:db8:6400:cb00:71:3500::", Public: "203.0.113.53"} {
		if got := topo.DNSServer(net); got != netip.MustParseAddr(want) {
			t.Errorf("DNS server for %s: %s, want %s", net, got, want)
		}
	}
	if got := topo.Reach("carrier", netip.MustParseAddr("2001:db8::10")); got != netip.MustParseAddr("2001:db8::10") {
		t.Errorf("carrier reaches IPv6 2001:db8::10 at %s, want it unchanged", got)
	}
}

// nat64ErrorCases are the rules for NATs in the nat64 mode (see
// parseErrorCases).
var nat64ErrorCases = []parseErrorCase{
	{"nat64-with-inside", `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside = "10.0.1.0/24" #!
inside6 = "fd00:64::/64"
ipv6 = "nat64"
`, `nat "carrier": inside with ipv6 = "nat64": the inside network of a NAT64 is IPv6-only (leave inside out; give inside6, e.g. inside6 = "fd00:64::/64")`},
	{"nat64-without-inside6", `
[[nat]]
name = "carrier"
external = "198.51.100.1"
ipv6 = "nat64" #!
`, `nat "carrier": ipv6 = "nat64" without inside6: its IPv6-only hosts need an IPv6 network (e.g. inside6 = "fd00:64::/64")`},
	{"nat64-host-ipv4", `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside6 = "fd00:64::/64"
ipv6 = "nat64"
[[host]]
name = "phone"
network = "carrier"
address = "10.0.1.2" #!
`, `host "phone": address 10.0.1.2: network carrier is IPv6-only (ipv6 = "nat64"): what is behind it takes IPv6 addresses only`},
	{"nat64-nested", `
[[nat]]
name = "cgn"
external = "198.51.100.1"
inside = "100.64.0.0/24"
inside6 = "fd00:1::/64"
[[nat]]
name = "carrier"
upstream = "cgn"
external = "100.64.0.2"
inside6 = "fd00:64::/64"
ipv6 = "nat64" #!
`, `nat "carrier": ipv6 = "nat64" behind nat "cgn": a NAT64 must be on the public network, where the lab DNS server tells its hosts' queries apart (DNS64)`},
	{"nat-behind-nat64", `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside6 = "fd00:64::/64"
ipv6 = "nat64"
[[nat]]
name = "home"
upstream = "carrier" #!
inside = "10.1.0.0/24"
`, `nat "home": upstream "carrier" is a NAT64, whose inside network is IPv6-only: a NAT needs an IPv4 address upstream (put it on the public network or behind a NAT without ipv6 = "nat64")`},
}

// Set keeps a NAT64's mode, prefix and IPv6 addresses across a preset,
// and refuses to change the mode or the prefix, which its hosts, devices
// and the lab's DNS64 were made for.
func TestSetKeepsNAT64(t *testing.T) {
	c, err := Behavior("", map[string]string{"ipv6": "nat64"}, []netip.Addr{netip.MustParseAddr("198.51.100.64")})
	if err != nil {
		t.Fatal(err)
	}
	c.External6 = []netip.Addr{netip.MustParseAddr("2001:db8::100")}
	e, err := nat.New(nat.Config{Table: c, Inside: []nat.InsidePort{{Hosts: []netip.Prefix{netip.MustParsePrefix("fd00:64::2/64")}}}})
	if err != nil {
		t.Fatal(err)
	}
	n := &NAT{Engine: e}
	if err := n.Set("symmetric", nil); err != nil {
		t.Fatal(err)
	}
	got := e.Config().Table
	if got.IPv6 != table.IPv6NAT64 || !slices.Equal(got.External6, c.External6) || got.Mapping != table.AddressAndPortDependent {
		t.Errorf("after preset symmetric: ipv6 %s, external6 %v, mapping %s; want nat64 and 2001:db8::100 kept, APDM", got.IPv6, got.External6, got.Mapping)
	}
	for _, s := range []map[string]string{{"ipv6": "routed"}, {"nat64-prefix": "2001:db8:64::/96"}} {
		if err := n.Set("", s); err == nil || !strings.Contains(err.Error(), "stay as the NAT started") {
			t.Errorf("Set %v: %v, want it refused", s, err)
		}
	}
	if got := e.Config().Table; got.IPv6 != table.IPv6NAT64 || got.NAT64PrefixOrDefault() != netip.MustParsePrefix("64:ff9b::/96") {
		t.Errorf("a refused Set changed the NAT: %s %s", got.IPv6, got.NAT64PrefixOrDefault())
	}
}
