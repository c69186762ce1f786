package lab

// Every message of the topology parser, checked with its FILE:LINE: the
// cases of the file's shape, keys, names and settings here, those of
// addresses in addrs_errors_test.go, those of references between nodes
// and a host's run and ready in refs_errors_test.go.

import (
	"fmt"
	"slices"
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

// parseErrorCase is one validation rule's case. "#!" marks the line the
// message must name; "#@" marks a line the message refers to ({@} in want). Every want
// is a whole line of the error, unless it ends in "..." (a prefix).
type parseErrorCase struct {
	name, text, want string
}

// parseErrorCases is every rule's case, for TestParseErrors and as
// FuzzParse's seeds.
var parseErrorCases = slices.Concat(shapeErrorCases, addressErrorCases, address6ErrorCases, nptv6ErrorCases, nat66ErrorCases, nat64ErrorCases, referenceErrorCases, eventErrorCases, mtuErrorCases)

// shapeErrorCases are the rules on the file's shape (TOML, tables), its
// keys, names and settings.
var shapeErrorCases = []parseErrorCase{
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
`, `unknown key "options" (known: name, nat, host, event)`},
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
`, `host "alice": unknown key "colour" (known: name, network, address, run, ready, impair, impair-in, impair-out, mtu, seed)`},
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
