package lab

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/table"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// markerLine is the 1-based line of the first line of text holding mark.
func markerLine(t testing.TB, text, mark string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, mark) {
			return i + 1
		}
	}
	t.Fatalf("no %q marker in\n%s", mark, text)
	return 0
}

// The brief's example, verbatim: it must parse, and resolve as written.
const briefExample = `name = "two-homes"

[[nat]]
name = "cgnat"
preset = "symmetric"
external = ["198.51.100.1"]
inside = "100.64.0.0/24"

[[nat]]
name = "home1"
preset = "full-cone"
upstream = "cgnat"
external = ["100.64.0.2"]
inside = "10.0.1.0/24"

[[nat]]
name = "home2"
preset = "port-restricted-cone"
external = ["198.51.100.2"]
inside = "10.0.2.0/24"

[[host]]
name = "alice"
network = "home1"
address = "10.0.1.2"

[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "203.0.113.11"]
run = ["gonat", "stun-server", "--primary", "203.0.113.10", "--alternate", "203.0.113.11"]
`

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestParseTopologyResolves(t *testing.T) {
	topo, err := Parse([]byte(briefExample), "two-homes.toml")
	if err != nil {
		t.Fatal(err)
	}
	if topo.Name != "two-homes" || topo.File != "two-homes.toml" || len(topo.NATs) != 3 || len(topo.Hosts) != 2 {
		t.Fatalf("got name %q file %q, %d NATs, %d hosts", topo.Name, topo.File, len(topo.NATs), len(topo.Hosts))
	}
	cg, h1, h2 := topo.NAT("cgnat"), topo.NAT("home1"), topo.NAT("home2")
	if cg == nil || h1 == nil || h2 == nil || topo.NAT("nope") != nil {
		t.Fatal("NAT lookup")
	}
	if cg.Upstream != Public || h1.Upstream != "cgnat" || h2.Upstream != Public {
		t.Errorf("upstreams %q %q %q", cg.Upstream, h1.Upstream, h2.Upstream)
	}
	if cg.Inside != netip.MustParsePrefix("100.64.0.0/24") || cg.Gateway != netip.MustParseAddr("100.64.0.1") {
		t.Errorf("cgnat inside %s gateway %s", cg.Inside, cg.Gateway)
	}
	if h1.Gateway != netip.MustParseAddr("10.0.1.1") || !reflect.DeepEqual(h1.External, addrs("100.64.0.2")) {
		t.Errorf("home1 gateway %s external %v", h1.Gateway, h1.External)
	}
	if cg.Line != 3 || h1.Line != 9 || h2.Line != 16 {
		t.Errorf("NAT lines %d %d %d, want 3 9 16", cg.Line, h1.Line, h2.Line)
	}
	if cg.Preset != "symmetric" || cg.Behavior.Mapping != table.AddressAndPortDependent || cg.Behavior.PortAssignment != table.Random {
		t.Errorf("cgnat behaviour %q %+v", cg.Preset, cg.Behavior)
	}
	if h1.Behavior.Filtering != table.EndpointIndependent || !reflect.DeepEqual(h1.Behavior.External, h1.External) {
		t.Errorf("home1 behaviour %+v", h1.Behavior)
	}
	if h2.Behavior.Filtering != table.AddressAndPortDependent || len(h2.Settings) != 0 {
		t.Errorf("home2 behaviour %+v settings %v", h2.Behavior, h2.Settings)
	}
	alice, server := topo.Host("alice"), topo.Host("server")
	if alice == nil || server == nil || topo.Host("nope") != nil {
		t.Fatal("host lookup")
	}
	if alice.Network != "home1" || !reflect.DeepEqual(alice.Addresses, addrs("10.0.1.2")) || alice.Run != nil || alice.Line != 22 {
		t.Errorf("alice %+v", alice)
	}
	if !reflect.DeepEqual(server.Addresses, addrs("203.0.113.10", "203.0.113.11")) || len(server.Run) != 6 || server.Run[1] != "stun-server" || server.Line != 27 {
		t.Errorf("server %+v", server)
	}
	if got := topo.Namespace("alice"); got != "two-homes.alice" {
		t.Errorf("Namespace: %q", got)
	}
}

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

// One case per validation rule. "#!" marks the line the message must
// name; "#@" marks a line the message refers to ({@} in want). Every want
// is a whole line of the error, unless it ends in "..." (a prefix).
var parseErrorCases = []struct {
	name, text, want string
}{
	{"syntax", `
name = "x"
[[nat] #!
`, `TOML syntax: ...`},
	{"syntax-value", `
[[nat]]
name = "home1"
external = [198.51.100.1] #!
`, `TOML syntax: ...`},
	{"unknown-top-key", `
nmae = "x" #!
[[host]]
name = "a"
network = "public"
`, `unknown key "nmae"; did you mean "name"?`},
	{"unknown-top-table", `
[[host]]
name = "a"
network = "public"
[options] #!
x = 1
`, `unknown key "options" (known: name, nat, host)`},
	{"unknown-nat-key-suggest", `
[[nat]]
name = "home1"
extrnal = ["198.51.100.1"] #!
inside = "10.0.1.0/24"
`, `nat "home1": unknown key "extrnal"; did you mean "external"?`},
	{"unknown-nat-key-alias", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
type = "symmetric" #!
`, `nat "home1": unknown key "type"; did you mean "preset"?`},
	{"unknown-nat-key-underscore", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
udp_timeout = "30s" #!
`, `nat "home1": unknown key "udp_timeout"; did you mean "udp-timeout"?`},
	{"unknown-nat-subtable", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
[nat.extra] #!
x = 1
`, `nat "home1": unknown key "extra" (known: name, preset, upstream, external, inside, mapping, ...`},
	{"unknown-nat-key-second-entry", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
[[nat]]
name = "home2"
external = ["198.51.100.2"]
inside = "10.0.2.0/24"
hairpinning = false #!
`, `nat "home2": unknown key "hairpinning"; did you mean "hairpin"?`},
	{"unknown-host-key", `
[[host]]
name = "alice"
network = "public"
colour = "red" #!
`, `host "alice": unknown key "colour" (known: name, network, address, run, ready)`},
	{"missing-nat-name", `
[[nat]] #!
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
`, `nat #1: missing required key "name" (e.g. name = "home1")`},
	{"missing-nat-external", `
[[nat]] #!
name = "home1"
inside = "10.0.1.0/24"
`, `nat "home1": missing required key "external" (its address on the upstream network, e.g. external = ["198.51.100.1"])`},
	{"missing-nat-inside", `
[[nat]]
name = "home0"
external = ["198.51.100.9"]
inside = "10.0.9.0/24"
[[nat]] #!
name = "home1"
external = ["198.51.100.1"]
`, `nat "home1": missing required key "inside" (its inside network, e.g. inside = "10.0.1.0/24")`},
	{"missing-host-name", `
[[host]] #!
network = "public"
`, `host #1: missing required key "name" (e.g. name = "alice")`},
	{"missing-host-network", `
[[host]] #!
name = "alice"
`, `host "alice": missing required key "network" (a NAT's name, or "public")`},
	{"unknown-preset", `
[[nat]]
name = "home1"
preset = "fullcone" #!
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
`, `nat "home1": preset "fullcone": want one of full-cone, restricted-cone, port-restricted-cone, symmetric, linux; did you mean "full-cone"?`},
	{"bad-setting-value", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
filtering = "sometimes" #!
`, `nat "home1": filtering: behavior "sometimes": want one of endpoint-independent, ...`},
	{"bad-setting-type-bool", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
hairpin = 1 #!
`, `nat "home1": hairpin: want true or false, got integer 1`},
	{"bad-setting-type-duration", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
udp-timeout = 30 #!
`, `nat "home1": udp-timeout: want a duration string such as "30s", "5m" or "2h", got integer 30`},
	{"bad-setting-duration", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
icmp-timeout = "-5s" #!
`, `nat "home1": icmp-timeout "-5s": want a positive duration such as 30s, 5m or 2h`},
	{"bad-setting-seed", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
seed = "x" #!
`, `nat "home1": seed "x": want an integer`},
	{"bad-setting-from-validate", `
[[nat]]
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
port-range = "100-200" #!
mapping = "eim"
`, `nat "home1": port range 100-200: low end must be >= 1024 (ports below 1024 map into 1-1023)`},
	{"duplicate-name-nat-host", `
[[nat]] #@
name = "home1"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
[[host]]
name = "home1" #!
network = "home1"
`, `host "home1": name "home1" is already used by the nat on line {@} (NATs and hosts share one namespace per node)`},
	{"duplicate-name-hosts", `
[[host]] #@
name = "alice"
network = "public"
[[host]]
name = "alice" #!
network = "public"
`, `host "alice": name "alice" is already used by the host on line {@} (NATs and hosts share one namespace per node)`},
	{"invalid-name-case", `
[[host]]
name = "Alice" #!
network = "public"
`, `host "Alice": name "Alice": want lowercase letters, digits and '-', starting with a letter or digit ([a-z0-9][a-z0-9-]*)`},
	{"invalid-name-dot", `
[[nat]]
name = "home.1" #!
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
`, `nat "home.1": name "home.1": no '.' allowed (namespaces are named LAB.NODE)`},
	{"invalid-name-long", `
[[host]]
name = "a-very-long-host-name-indeed" #!
network = "public"
`, `host "a-very-long-host-name-indeed": name "a-very-long-host-name-indeed" is 28 characters long: at most 20`},
	{"invalid-name-public", `
[[nat]]
name = "public" #!
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
`, `nat "public": name "public" is reserved for the public network`},
	{"invalid-name-type", `
[[host]]
name = 7 #!
network = "public"
`, `host #1: name: want a string such as "alice", got integer 7`},
	{"invalid-lab-name", `
name = "My Lab" #!
[[host]]
name = "a"
network = "public"
`, `name (the lab's name) "My Lab": want lowercase letters, digits and '-', starting with a letter or digit ([a-z0-9][a-z0-9-]*)`},
	{"invalid-lab-name-type", `
name = ["x"] #!
[[host]]
name = "a"
network = "public"
`, `name: want the lab's name as a string such as "two-homes", got an array`},
	{"malformed-external", `
[[nat]]
name = "home1"
external = ["198.51.100"] #!
inside = "10.0.1.0/24"
`, `nat "home1": external "198.51.100": want an IPv4 address such as 198.51.100.1`},
	{"external-type", `
[[nat]]
name = "home1"
external = 5 #!
inside = "10.0.1.0/24"
`, `nat "home1": external: want an address such as "198.51.100.1" or an array of them, got integer 5`},
	{"external-empty", `
[[nat]]
name = "home1"
external = [] #!
inside = "10.0.1.0/24"
`, `nat "home1": external: empty array: want at least one address such as "198.51.100.1"`},
	{"external-repeated", `
[[nat]]
name = "home1"
external = ["198.51.100.1", "198.51.100.1"] #!
inside = "10.0.1.0/24"
`, `nat "home1": external 198.51.100.1: given twice`},
	{"external-ipv6", `
[[nat]]
name = "home1"
external = "2001:db8::1" #!
inside = "10.0.1.0/24"
`, `nat "home1": external "2001:db8::1": IPv6 is not supported: lab networks are IPv4 only`},
	{"external-reserved", `
[[nat]]
name = "home1"
external = "127.0.0.2" #!
inside = "10.0.1.0/24"
`, `nat "home1": external "127.0.0.2": in 127.0.0.0/8 (loopback): want a unicast address such as 198.51.100.1`},
	{"inside-ipv6", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "fd00::/64" #!
`, `nat "home1": inside "fd00::/64": IPv6 is not supported: lab networks are IPv4 only`},
	{"inside-malformed", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1/24" #!
`, `nat "home1": inside "10.0.1/24": want an IPv4 network such as 10.0.1.0/24`},
	{"inside-no-length", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0" #!
`, `nat "home1": inside "10.0.1.0": want a network with its prefix length, e.g. 10.0.1.0/24`},
	{"inside-host-bits", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.5/24" #!
`, `nat "home1": inside "10.0.1.5/24": has host bits set: want the network address 10.0.1.0/24 (the NAT itself takes 10.0.1.1)`},
	{"inside-too-small", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/31" #!
`, `nat "home1": inside "10.0.1.0/31": too small: want /30 or shorter (the NAT takes .1, hosts start at .2)`},
	{"inside-reserved", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "127.0.0.0/8" #!
`, `nat "home1": inside "127.0.0.0/8": overlaps 127.0.0.0/8 (loopback): want a private range such as 10.0.1.0/24`},
	{"inside-type", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = ["10.0.1.0/24"] #!
`, `nat "home1": inside: want a string such as "10.0.1.0/24", got an array`},
	{"host-address-prefix", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "alice"
network = "home1"
address = "10.0.1.2/24" #!
`, `host "alice": address "10.0.1.2/24": want a plain address such as 10.0.1.2, without a /prefix length`},
	{"host-address-link-local", `
[[host]]
name = "server"
network = "public"
address = "169.254.7.7" #!
`, `host "server": address "169.254.7.7": in 169.254.0.0/16 (link-local, used by the lab's own links): want a unicast address such as 203.0.113.10`},
	{"overlap-upstream", `
[[nat]]
name = "cgnat"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home1"
upstream = "cgnat"
external = "100.64.0.2"
inside = "100.64.0.0/25" #!
`, `nat "home1": inside 100.64.0.0/25 overlaps network cgnat (100.64.0.0/24) on its path to the public network: addresses there would be ambiguous (NATs on one path need disjoint ranges; NATs on different paths may share one)`},
	{"overlap-grandparent", `
[[nat]]
name = "cgnat"
external = "198.51.100.1"
inside = "100.64.0.0/16"
[[nat]]
name = "home1"
upstream = "cgnat"
external = "100.64.0.2"
inside = "10.0.0.0/16"
[[nat]]
name = "inner"
upstream = "home1"
external = "10.0.0.2"
inside = "100.64.7.0/24" #!
`, `nat "inner": inside 100.64.7.0/24 overlaps network cgnat (100.64.0.0/16) on its path to the public network: ...`},
	{"public-host-in-private-range", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "server"
network = "public"
address = "10.0.1.50" #!
`, `host "server": address 10.0.1.50 is a public address inside nat "home1"'s network 10.0.1.0/24: public addresses must not lie in a private range the lab uses (routes would be ambiguous)`},
	{"public-external-in-private-range", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[nat]]
name = "home2"
external = "10.0.1.7" #!
inside = "10.0.2.0/24"
`, `nat "home2": external 10.0.1.7 is a public address inside nat "home1"'s network 10.0.1.0/24: ...`},
	{"host-address-outside", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "alice"
network = "home1"
address = "10.0.9.2" #!
`, `host "alice": address 10.0.9.2 is outside network home1 (10.0.1.0/24)`},
	{"host-address-gateway", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "alice"
network = "home1"
address = "10.0.1.1" #!
`, `host "alice": address 10.0.1.1 is the gateway of network home1 (10.0.1.0/24): the NAT's own inside address; hosts start at 10.0.1.2`},
	{"host-address-network", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "alice"
network = "home1"
address = ["10.0.1.2", "10.0.1.0"] #!
`, `host "alice": address 10.0.1.0 is the network address of network home1 (10.0.1.0/24): hosts start at 10.0.1.2`},
	{"host-address-broadcast", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "alice"
network = "home1"
address = "10.0.1.255" #!
`, `host "alice": address 10.0.1.255 is the broadcast address of network home1 (10.0.1.0/24)`},
	{"host-address-twice", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "alice"
network = "home1"
address = "10.0.1.2" #@
[[host]]
name = "bob"
network = "home1"
address = "10.0.1.2" #!
`, `host "bob": address 10.0.1.2 is already used by host "alice" (line {@}) in network home1`},
	{"host-address-is-nested-external", `
[[nat]]
name = "cgnat"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home1"
upstream = "cgnat"
external = "100.64.0.2" #@
inside = "10.0.1.0/24"
[[host]]
name = "carol"
network = "cgnat"
address = "100.64.0.2" #!
`, `host "carol": address 100.64.0.2 is already used by nat "home1" (line {@}) in network cgnat`},
	{"nested-external-outside-upstream", `
[[nat]]
name = "cgnat"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home1"
upstream = "cgnat"
external = "100.65.0.2" #!
inside = "10.0.1.0/24"
`, `nat "home1": external 100.65.0.2 is outside network cgnat (100.64.0.0/24), the inside network of its upstream`},
	{"nested-external-gateway", `
[[nat]]
name = "cgnat"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home1"
upstream = "cgnat"
external = "100.64.0.1" #!
inside = "10.0.1.0/24"
`, `nat "home1": external 100.64.0.1 is the gateway of network cgnat (100.64.0.0/24), the inside network of its upstream: the NAT's own inside address; hosts start at 100.64.0.2`},
	{"nested-externals-twice", `
[[nat]]
name = "cgnat"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home1"
upstream = "cgnat"
external = "100.64.0.2" #@
inside = "10.0.1.0/24"
[[nat]]
name = "home2"
upstream = "cgnat"
external = "100.64.0.2" #!
inside = "10.0.1.0/24"
`, `nat "home2": external 100.64.0.2 is already used by nat "home1" (line {@}) in network cgnat`},
	{"public-address-twice", `
[[nat]]
name = "home1"
external = "198.51.100.1" #@
inside = "10.0.1.0/24"
[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "198.51.100.1"] #!
`, `host "server": address 198.51.100.1 is already used by nat "home1" (line {@}) in network public`},
	{"public-hosts-twice", `
[[host]]
name = "a"
network = "public"
address = "203.0.113.10" #@
[[host]]
name = "b"
network = "public"
address = "203.0.113.10" #!
`, `host "b": address 203.0.113.10 is already used by host "a" (line {@}) in network public`},
	{"cycle", `
[[nat]]
name = "home1"
upstream = "home2" #!
external = "10.0.2.2"
inside = "10.0.1.0/24"
[[nat]]
name = "home2"
upstream = "home1"
external = "10.0.1.2"
inside = "10.0.2.0/24"
`, `nat "home1": upstream cycle home1 -> home2 -> home1: every chain of upstreams must end at "public"`},
	{"cycle-later", `
[[nat]]
name = "top"
upstream = "c"
external = "10.0.3.2"
inside = "10.0.9.0/24"
[[nat]]
name = "b"
upstream = "c" #!
external = "10.0.3.3"
inside = "10.0.2.0/24"
[[nat]]
name = "c"
upstream = "b"
external = "10.0.2.2"
inside = "10.0.3.0/24"
`, `nat "b": upstream cycle b -> c -> b: every chain of upstreams must end at "public"`},
	{"self-upstream", `
[[nat]]
name = "home1"
upstream = "home1" #!
external = "10.0.1.2"
inside = "10.0.1.0/24"
`, `nat "home1": upstream "home1": a NAT cannot be its own upstream`},
	{"unknown-upstream", `
[[nat]]
name = "cgnat"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home1"
upstream = "cgnat2" #!
external = "100.64.0.2"
inside = "10.0.1.0/24"
[[nat]]
name = "home2"
external = "198.51.100.2"
inside = "10.0.2.0/24"
`, `nat "home1": upstream "cgnat2": no such NAT (NATs: cgnat, home1, home2); did you mean "cgnat"?`},
	{"upstream-type", `
[[nat]]
name = "home1"
upstream = 3 #!
external = "198.51.100.1"
inside = "10.0.1.0/24"
`, `nat "home1": upstream: want a string such as "cgnat", got integer 3`},
	{"unknown-network", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[host]]
name = "alice"
network = "hom1" #!
`, `host "alice": network "hom1": no such NAT (networks: public, home1); did you mean "home1"?`},
	{"network-empty", `
[[host]]
name = "alice"
network = "" #!
`, `host "alice": network "": want "public" or a NAT's name`},
	{"network-full", `
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/30"
[[host]]
name = "alice"
network = "home1"
[[host]] #!
name = "bob"
network = "home1"
`, `host "bob": network home1 (10.0.1.0/30) has no free address left`},
	{"nat-single-table", `
[nat] #!
name = "home1"
`, `[nat]: write [[nat]] (an array of tables, one per nat), not [nat]`},
	// TOML itself rejects the second [host] (or a [[host]] after one)
	// at that later line; the mistake is the [host] line.
	{"host-single-table-twice", `
[host] #!
name = "alice"
network = "public"

[host]
name = "bob"
network = "public"
`, `[host]: write [[host]] (an array of tables, one per host), not [host]`},
	{"host-single-table-then-array", `
[host] #!
name = "alice"
network = "public"

[[host]]
name = "bob"
network = "public"
`, `[host]: write [[host]] (an array of tables, one per host), not [host]`},
	{"host-array-then-single-table", `
[[host]]
name = "alice"
network = "public"

[host] #!
name = "bob"
network = "public"
`, `[host]: write [[host]] (an array of tables, one per host), not [host]`},
	{"host-not-table", `
host = "alice" #!
`, `host: want [[host]] tables, got string "alice"`},
	{"inline-array-of-tables", `
host = [ #!
  {name = "alice", network = "public", adress = "203.0.113.5"},
]
`, `host "alice": unknown key "adress"; did you mean "address"?`},
	{"run-empty", `
[[host]]
name = "alice"
network = "public"
run = [] #!
`, `host "alice": run: empty array: want a command and its arguments, e.g. ["gonat", "probe"]`},
	{"run-not-strings", `
[[host]]
name = "alice"
network = "public"
run = ["gonat", 5] #!
`, `host "alice": run: argument 2: want a string, got integer 5`},
	{"run-type", `
[[host]]
name = "alice"
network = "public"
run = 5 #!
`, `host "alice": run: want a command as an array of strings, e.g. ["gonat", "probe"], or a shell command line string, got integer 5`},
	{"ready-bad-form", `
[[host]]
name = "stun"
network = "public"
run = ["gonat", "stun-server"]
ready = "udp:203.0.113.10" #!
`, `host "stun": ready "udp:203.0.113.10": want udp:ADDR:PORT with an IPv4 address and a port, e.g. "udp:203.0.113.10:3478"`},
	{"ready-without-run", `
[[host]]
name = "stun"
network = "public"
ready = "log:listening" #!
`, `host "stun": ready: the host has no run command to wait for`},
	{"ready-not-own-address", `
[[host]]
name = "stun"
network = "public"
address = "203.0.113.10"
run = ["gonat", "stun-server"]
ready = "udp:203.0.113.11:3478" #!
`, `host "stun": ready: 203.0.113.11 is not one of the host's addresses (203.0.113.10): readiness looks for a socket in its own namespace`},
	{"ready-alias", `
[[host]]
name = "stun"
network = "public"
run = ["gonat", "stun-server"]
wait-for = "log:listening" #!
`, `host "stun": unknown key "wait-for"; did you mean "ready"?`},
	{"lines-after-multiline-values", `
[[host]]
name = "alice"
network = "public"
run = [
  "sh", "-c", """
[[nat]]
name = "x"
""",
  '''
[[host]] # not a header ''',
  "]", # a bracket in a string
]
[[host]]
name = "bob"
network = "public"
adress = "203.0.113.7" #!
`, `host "bob": unknown key "adress"; did you mean "address"?`},
}

func TestParseErrors(t *testing.T) {
	for _, c := range parseErrorCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text), "lab.toml")
			if err == nil {
				t.Fatalf("no error for\n%s", c.text)
			}
			want := strings.ReplaceAll(c.want, "{@}", "")
			if strings.Contains(c.want, "{@}") {
				want = strings.ReplaceAll(c.want, "{@}", fmt.Sprint(markerLine(t, c.text, "#@")))
			}
			want = fmt.Sprintf("lab.toml:%d: %s", markerLine(t, c.text, "#!"), want)
			prefix := strings.HasSuffix(want, "...")
			if prefix {
				want = strings.TrimSuffix(want, "...")
			}
			lines := strings.Split(err.Error(), "\n")
			found := false
			for _, l := range lines {
				if l == want || prefix && strings.HasPrefix(l, want) {
					found = true
				}
				if !strings.HasPrefix(l, "lab.toml:") {
					t.Errorf("line without the file name: %q", l)
				}
			}
			if !found {
				t.Errorf("want the line\n  %s\ngot\n  %s", want, strings.Join(lines, "\n  "))
			}
		})
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

func TestTopologyOrderPath(t *testing.T) {
	text := `
[[nat]]
name = "home1"
upstream = "cgnat"
external = "100.64.0.2"
inside = "10.0.1.0/24"
[[nat]]
name = "cgnat"
external = "198.51.100.1"
inside = "100.64.0.0/24"
[[nat]]
name = "home2"
upstream = "cgnat"
external = "100.64.0.3"
inside = "10.0.2.0/24"
[[nat]]
name = "deep"
upstream = "home1"
external = "10.0.1.2"
inside = "10.1.0.0/24"
[[nat]]
name = "solo"
external = "198.51.100.2"
inside = "10.0.1.0/24"
`
	topo, err := Parse([]byte(text), "nested.toml")
	if err != nil {
		t.Fatal(err)
	}
	names := func(ns []*NATNode) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.Name)
		}
		return strings.Join(s, " ")
	}
	if got := names(topo.Order()); got != "cgnat home1 deep home2 solo" {
		t.Errorf("Order: %s", got)
	}
	seen := map[string]bool{Public: true}
	for _, n := range topo.Order() {
		if !seen[n.Upstream] {
			t.Errorf("%s before its upstream %s", n.Name, n.Upstream)
		}
		seen[n.Name] = true
	}
	for nat, want := range map[string]string{"deep": "deep home1 cgnat", "home2": "home2 cgnat", "cgnat": "cgnat", "solo": "solo", "nope": ""} {
		if got := names(topo.Path(nat)); got != want {
			t.Errorf("Path(%s): %q, want %q", nat, got, want)
		}
	}
	if p := topo.Path("deep"); p[0] != topo.NAT("deep") {
		t.Error("Path does not point into the topology")
	}
}

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

func TestExampleTopologiesParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.toml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			topo, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			stun := false
			for _, h := range topo.Hosts {
				if h.Network == Public && len(h.Run) > 1 && h.Run[0] == "gonat" && h.Run[1] == "stun-server" && len(h.Addresses) == 2 {
					stun = true
				}
				for _, a := range h.Addresses {
					if h.Network == Public && !docRange(a) {
						t.Errorf("%s: public address %s outside the documentation ranges", h.Name, a)
					}
					if h.Network != Public && !privateRange(a) {
						t.Errorf("%s: private address %s outside 10/8 and 100.64/10", h.Name, a)
					}
				}
			}
			if !stun {
				t.Error("no public STUN server host")
			}
			for _, n := range topo.NATs {
				if !privateRange(n.Inside.Addr()) {
					t.Errorf("%s: inside %s", n.Name, n.Inside)
				}
				for _, a := range n.External {
					if n.Upstream == Public && !docRange(a) || n.Upstream != Public && !privateRange(a) {
						t.Errorf("%s: external %s", n.Name, a)
					}
				}
			}
		})
	}
	if topo, err := Load(filepath.Join("..", "examples", "two-homes.toml")); err != nil || topo.Host("rendezvous") == nil ||
		strings.Join(topo.Host("rendezvous").Run, " ") != "gonat rendezvous --listen 203.0.113.20:7000" {
		t.Errorf("two-homes: no rendezvous server (%v)", err)
	}
	if topo, err := Load(filepath.Join("..", "examples", "cgnat.toml")); err != nil || len(topo.Path("home1")) != 2 || len(topo.Path("home2")) != 2 {
		t.Errorf("cgnat: want two homes behind one carrier (%v)", err)
	}
}

func docRange(a netip.Addr) bool {
	for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

func privateRange(a netip.Addr) bool {
	return netip.MustParsePrefix("10.0.0.0/8").Contains(a) || netip.MustParsePrefix("100.64.0.0/10").Contains(a)
}

func TestLoadTopology(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	dir := t.TempDir()
	body := "[[host]]\nname = \"a\"\nnetwork = \"public\"\n"
	for file, want := range map[string]string{
		"My_Lab.toml":                       "my-lab",
		"home.toml":                         "home",
		"__.toml":                           "lab",
		"a-rather-long-file-name-here.toml": "a-rather-long-file-n",
	} {
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		topo, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if topo.Name != want || topo.File != path {
			t.Errorf("%s: name %q file %q, want name %q", file, topo.Name, topo.File, want)
		}
		if !reflect.DeepEqual(topo.Hosts[0].Addresses, addrs("203.0.113.10")) {
			t.Errorf("public host address %v", topo.Hosts[0].Addresses)
		}
	}
	path := filepath.Join(dir, "named.toml")
	if err := os.WriteFile(path, []byte("name = \"given\"\n"+body+"run = \"echo hi; sleep 1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if topo.Name != "given" || !reflect.DeepEqual(topo.Hosts[0].Run, []string{"/bin/sh", "-c", "echo hi; sleep 1"}) {
		t.Errorf("name %q run %q", topo.Name, topo.Hosts[0].Run)
	}
	if err := topo.SetName("other"); err != nil || topo.Name != "other" {
		t.Errorf("SetName: %v %q", err, topo.Name)
	}
	if err := topo.SetName("Not.Valid"); err == nil || topo.Name != "other" {
		t.Errorf("SetName of a bad name: %v %q", err, topo.Name)
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "0", "home1", "two-homes", "a-", "12345678901234567890"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "public", "-a", "A", "a.b", "a_b", "a b", "é", "123456789012345678901", "a\n"} {
		if err := ValidName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: multi-line error %q", bad, err)
		}
	}
}

func TestParseKeyPositions(t *testing.T) {
	text := `# comment [[nat]]
name = "x" # [[host]]
[[nat]]
  "name" = 'n' # quoted key
external = ["198.51.100.1",
  "198.51.100.2"]
inside = """
multi
"""
[[ nat ]]
name = "m"
'udp-timeout' = "1s"
[nat.sub]
x = 1
[[host]]
name = "h"
`
	ps := scanPositions([]byte(text))
	if ps.top["name"] != 2 || ps.section("nat", 0) != 3 || ps.section("nat", 1) != 10 || ps.section("host", 0) != 15 {
		t.Errorf("sections: top %v nat %v host %v", ps.top, ps.arrays["nat"], ps.arrays["host"])
	}
	for _, c := range []struct {
		arr  string
		i    int
		key  string
		line int
	}{
		{"nat", 0, "name", 4}, {"nat", 0, "external", 5}, {"nat", 0, "inside", 7},
		{"nat", 1, "name", 11}, {"nat", 1, "udp-timeout", 12}, {"nat", 1, "sub", 13}, {"nat", 1, "x", 10},
		{"nat", 5, "name", 3}, {"host", 0, "name", 16},
	} {
		if got := ps.key(c.arr, c.i, c.key); got != c.line {
			t.Errorf("%s[%d].%s: line %d, want %d", c.arr, c.i, c.key, got, c.line)
		}
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
			if len(p) == 0 || p[len(p)-1].Upstream != Public || n.Gateway != n.Inside.Addr().Next() || len(n.Behavior.External) == 0 {
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
					if !n.Inside.Contains(a) || a == n.Gateway {
						t.Fatalf("host %s: %s in %s", h.Name, a, n.Inside)
					}
				}
			}
		}
		if topo.Describe() == "" {
			t.Fatal("empty Describe")
		}
	})
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

func TestTopologyNamespaces(t *testing.T) {
	topo, err := Parse([]byte(briefExample), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"two-homes.public", "two-homes.home1", "two-homes.alice", "two-homes.server"}
	if got := topo.Namespaces(); !reflect.DeepEqual(got, want) {
		t.Errorf("Namespaces() = %v, want %v", got, want)
	}
	if err := topo.SetName("other"); err != nil {
		t.Fatal(err)
	}
	if got := topo.Namespaces(); got[0] != "other.public" {
		t.Errorf("after SetName: %v", got)
	}
}
