package lab

// addressErrorCases are the rules on addresses: external and inside
// addresses, host addresses, and overlaps between networks (see
// parseErrorCases).
var addressErrorCases = []parseErrorCase{
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
`, `nat "home1": external "2001:db8::1": an IPv6 address: give it with external6 (and the NAT an inside6 network)`},
	{"external-dns-server", `
[[nat]]
name = "home1"
external = "203.0.113.53" #!
inside = "10.0.1.0/24"
`, `nat "home1": external 203.0.113.53 is reserved for the lab DNS server`},
	{"host-dns-server", `
[[host]]
name = "server"
network = "public"
address = ["203.0.113.53"] #!
`, `host "server": address 203.0.113.53 is reserved for the lab DNS server`},
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
`, `nat "home1": inside "fd00::/64": an IPv6 network: give it with inside6; inside is the IPv4 network`},
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
}
