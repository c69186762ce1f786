package lab

// Every message of the topology parser, checked with its FILE:LINE.
// Longer than the other files: it is one table, a case per rule, that
// FuzzParse also takes as seeds; splitting it would only scatter it.

import (
	"fmt"
	"strings"
	"testing"
)

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
