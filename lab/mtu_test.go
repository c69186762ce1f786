package lab

import (
	"strings"
	"testing"
)

const mtuBase = `
[[nat]]
name = "home"
external = "198.51.100.1"
inside = "10.0.0.0/24"
`

// mtuErrorCases are the rules on uplink-mtu and mtu.
var mtuErrorCases = []parseErrorCase{
	{"uplink-mtu-too-small", mtuBase + `uplink-mtu = 60 #!
`, `nat "home": uplink-mtu: want an integer MTU in bytes, 68-65535 (IPv4 needs at least 68, IPv6 1280), such as 1280; got integer 60`},
	{"uplink-mtu-string", mtuBase + `uplink-mtu = "1280" #!
`, `nat "home": uplink-mtu: want an integer MTU in bytes, 68-65535 (IPv4 needs at least 68, IPv6 1280), such as 1280; got string "1280"`},
	{"uplink-mtu-ipv6", mtuBase + `inside6 = "fd00:1::/64"
uplink-mtu = 1000 #!
`, `nat "home": uplink-mtu 1000: the uplink carries IPv6 (external6 2001:db8::100), which needs at least 1280 (RFC 8200)`},
	{"host-mtu-ipv6", mtuBase + `inside6 = "fd00:1::/64"
[[host]]
name = "alice"
network = "home"
mtu = 576 #!
`, `host "alice": mtu 576: the host's link carries IPv6, which needs at least 1280 (RFC 8200)`},
	{"host-mtu-too-big", mtuBase + `[[host]]
name = "alice"
network = "home"
mtu = 70000 #!
`, `host "alice": mtu: want an integer MTU in bytes, 68-65535 (IPv4 needs at least 68, IPv6 1280), such as 1280; got integer 70000`},
	{"host-mtu-public", `[[host]]
name = "server"
network = "public"
mtu = 1280 #!
`, `host "server": mtu: a public host has no link of a NAT's; set uplink-mtu on a NAT instead`},
}

func TestParseMTU(t *testing.T) {
	topo, err := Parse([]byte(mtuBase+`uplink-mtu = 1280
pmtu-blackhole = true
[[host]]
name = "alice"
network = "home"
mtu = 576
`), "lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	if n := topo.NAT("home"); n.UplinkMTU != 1280 || !n.Behavior.PMTUBlackhole {
		t.Errorf("uplink-mtu %d, pmtu-blackhole %v; want 1280 and true", n.UplinkMTU, n.Behavior.PMTUBlackhole)
	}
	if h := topo.Host("alice"); h.MTU != 576 {
		t.Errorf("alice's mtu %d, want 576", h.MTU)
	}
	if d := topo.Describe(); !strings.Contains(d, "uplink-mtu 1280") || !strings.Contains(d, "link mtu 576") {
		t.Errorf("Describe leaves out the MTUs:\n%s", d)
	}
}
