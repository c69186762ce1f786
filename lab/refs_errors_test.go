package lab

// referenceErrorCases are the rules on what refers to what: upstreams
// (no cycles), a host's network, and a host's run command and ready
// check (see parseErrorCases).
var referenceErrorCases = []parseErrorCase{
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
}
