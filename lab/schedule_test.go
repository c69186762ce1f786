package lab

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// scheduleBase is a lab the event cases refer to: alice behind home,
// home on the public network behind nothing, kid behind home, server
// public.
const scheduleBase = `
[[nat]]
name = "home"
external = "198.51.100.1"
inside = "10.0.1.0/24"
[[nat]]
name = "kid"
upstream = "home"
external = "10.0.1.50"
inside = "10.0.2.0/24"
[[host]]
name = "alice"
network = "home"
[[host]]
name = "server"
network = "public"
`

// eventErrorCases are the rules on [[event]] tables.
var eventErrorCases = []parseErrorCase{
	{"event-no-time", scheduleBase + `
[[event]] #!
link = "alice"
state = "down"
`, `event #1: missing "at" or "every" (when: e.g. at = "5s")`},
	{"event-bad-at", scheduleBase + `
[[event]]
at = "soon" #!
reboot = "home"
`, `event #1: at "soon": want a duration of at least 0s such as "5s"`},
	{"event-every-too-short", scheduleBase + `
[[event]]
every = "1ms" #!
reboot = "home"
`, `event #1: every "1ms": want a duration of at least 100ms such as "5s"`},
	{"event-two-actions", scheduleBase + `
[[event]] #!
at = "1s"
reboot = "home"
rebind = "home"
`, `event #1: want one action, link = NODE (with state), rebind = NAT, reboot = NAT, set = NAT (with preset or settings), flush = NAT or move = HOST (with network); got 2`},
	{"event-move-no-network", scheduleBase + `
[[event]]
at = "1s"
move = "alice" #!
`, `event #1: move "alice" needs network = NAT, the network it moves to`},
	{"event-network-on-link", scheduleBase + `
[[event]]
at = "1s"
link = "alice"
state = "down"
network = "kid" #!
`, `event #1: network goes with move, not link`},
	{"event-move-unknown-host", scheduleBase + `
[[event]]
at = "1s"
move = "home" #!
network = "kid"
`, `event #1: move "home": no such host (a host behind a NAT moves)`},
	{"event-move-public-host", scheduleBase + `
[[event]]
at = "1s"
move = "server" #!
network = "kid"
`, `event #1: move "server": a public host does not move (only a host behind a NAT: its link is the NAT's inside port)`},
	{"event-move-to-nowhere", scheduleBase + `
[[event]]
at = "1s"
move = "alice"
network = "public" #!
`, `event #1: move "alice": network "public": no such NAT (a host moves to a NAT's network)`},
	{"event-move-dual-stack", scheduleBase + `
[[nat]]
name = "cafe"
external = "198.51.100.3"
inside = "10.0.3.0/24"
inside6 = "fd00:3::/64"
external6 = "2001:db8::3"
[[event]]
at = "1s"
move = "alice" #!
network = "cafe"
`, `event #1: move "alice": nat cafe has inside6: a host moves between IPv4-only networks`},
	{"nat-free-ports-bad", scheduleBase + `
[[nat]]
name = "cafe"
external = "198.51.100.3"
inside = "10.0.3.0/24"
free-ports = -1 #!
`, `nat "cafe": free-ports: want a whole number from 0 to 64 (inside ports kept for hosts that move in), got integer -1`},
	{"event-set-nothing", scheduleBase + `
[[event]]
at = "1s"
set = "home" #!
`, `event #1: set "home": nothing to set: give preset = "..." and/or behaviour settings (e.g. filtering = "eif")`},
	{"event-set-bad-setting", scheduleBase + `
[[event]]
at = "1s"
set = "home"
udp-timeout = "soon" #!
`, `event #1: udp-timeout...`},
	{"event-set-bad-preset", scheduleBase + `
[[event]]
at = "1s"
set = "home"
preset = "symetric" #!
`, `event #1: preset "symetric": want one of full-cone, restricted-cone, port-restricted-cone, symmetric, linux; did you mean "symmetric"?`},
	{"event-preset-on-flush", scheduleBase + `
[[event]] #!
at = "1s"
flush = "home"
preset = "symmetric"
`, `event #1: preset and behaviour settings go with set, not flush`},
	{"event-address-on-set", scheduleBase + `
[[event]]
at = "1s"
set = "home"
preset = "symmetric"
address = "198.51.100.9" #!
`, `event #1: address goes with rebind or reboot, not set`},
	{"event-flush-not-a-nat", scheduleBase + `
[[event]]
at = "1s"
flush = "server" #!
`, `event #1: flush "server": no such NAT`},
	{"event-no-state", scheduleBase + `
[[event]] #!
at = "1s"
link = "alice"
`, `event #1: link needs state = "down" or "up"`},
	{"event-bad-state", scheduleBase + `
[[event]]
at = "1s"
link = "alice"
state = "sideways" #!
`, `event #1: link needs state = "down" or "up"`},
	{"event-unknown-node", scheduleBase + `
[[event]]
at = "1s"
link = "bob" #!
state = "down"
`, `event #1: link "bob": no such host or NAT`},
	{"event-public-host-link", scheduleBase + `
[[event]]
at = "1s"
link = "server" #!
state = "down"
`, `event #1: link "server": a public host has no NAT link to fail`},
	{"event-not-a-nat", scheduleBase + `
[[event]]
at = "1s"
rebind = "alice" #!
`, `event #1: rebind "alice": no such NAT`},
	{"event-nested-address", scheduleBase + `
[[event]]
at = "1s"
reboot = "kid"
address = "10.0.1.60" #!
`, `event #1: reboot "kid" --address: only a NAT on the public network can take a new address`},
	{"event-bad-address", scheduleBase + `
[[event]]
at = "1s"
reboot = "home"
address = "2001:db8::9" #!
`, `event #1: address "2001:db8::9": want the NAT's new external IPv4 address`},
	{"event-state-on-rebind", scheduleBase + `
[[event]]
at = "1s"
rebind = "home"
state = "down" #!
`, `event #1: state goes with link, not rebind`},
	{"event-unknown-key", scheduleBase + `
[[event]]
at = "1s"
reboot = "home"
when = "now" #!
`, `event #1: unknown key "when"...`},
}

func TestParseEvents(t *testing.T) {
	text := scheduleBase + `
[[event]]
at = "2s"
link = "alice"
state = "down"
[[event]]
at = "4s"
link = "home"
state = "up"
[[event]]
every = "30s"
rebind = "home"
[[event]]
at = "1s"
every = "1m"
reboot = "home"
address = "198.51.100.9"
[[event]]
at = "3s"
set = "home"
preset = "symmetric"
udp-timeout = "5s"
[[event]]
at = "5s"
flush = "kid"
[[event]]
at = "6s"
move = "alice"
network = "kid"
`
	topo, err := Parse([]byte(text), "lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := []EventNode{
		{At: 2 * time.Second, Request: Request{Op: OpLink, Node: "alice", State: "down"}},
		{At: 4 * time.Second, Request: Request{Op: OpLink, Node: "home", State: "up"}},
		{At: 30 * time.Second, Every: 30 * time.Second, Request: Request{Op: OpRebind, NAT: "home"}},
		{At: time.Second, Every: time.Minute, Request: Request{Op: OpReboot, NAT: "home", Address: "198.51.100.9"}},
		{At: 3 * time.Second, Request: Request{Op: OpSet, NAT: "home", Preset: "symmetric", Settings: map[string]string{"udp-timeout": "5s"}}},
		{At: 5 * time.Second, Request: Request{Op: OpFlush, NAT: "kid"}},
		{At: 6 * time.Second, Request: Request{Op: OpMove, Node: "alice", NAT: "kid"}},
	}
	var lines []int
	for i, l := range strings.Split(text, "\n") {
		if l == "[[event]]" {
			lines = append(lines, i+1)
		}
	}
	for i := range want {
		want[i].Line = lines[i]
	}
	if !reflect.DeepEqual(topo.Events, want) {
		t.Fatalf("events\n%+v\nwant\n%+v", topo.Events, want)
	}
	if n := topo.FreePortsOf(topo.NAT("kid")); n != 1 {
		t.Errorf("kid keeps %d free ports, want 1 for the move into it", n)
	}
	d := topo.Describe()
	for _, line := range []string{"event at 2s: link alice down\n", "event at 30s, every 30s: rebind home\n",
		"event at 1s, every 1m0s: reboot home --address 198.51.100.9\n",
		"event at 3s: set home --preset symmetric --udp-timeout=5s\n", "event at 5s: flush kid\n",
		"event at 6s: move alice kid\n"} {
		if !strings.Contains(d, line) {
			t.Errorf("Describe lacks %q:\n%s", line, d)
		}
	}
}
