package experiment

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gonat/gonat/table"
)

// The matrix over IPv6 (MatrixConfig.IPv6): every NAT in one IPv6 mode,
// the peers behind them on IPv6 networks of their own, the rendezvous and
// STUN servers on the public network's IPv6 addresses.
var (
	server6  = netip.MustParseAddr("2001:db8::10")
	server6b = netip.MustParseAddr("2001:db8::11")
)

// CheckIPv6Mode says whether the matrix can run over IPv6 with its NATs
// in mode m: the mode must carry IPv6 through the NAT and keep state a
// peer can punch through.
func CheckIPv6Mode(m table.IPv6Mode) error {
	switch m {
	case table.IPv6Routed, table.IPv6NPTv6, table.IPv6NAT66:
		return nil
	case table.IPv6None, table.IPv6Blackhole, table.IPv6Reject:
		return fmt.Errorf("ipv6 mode %s lets no IPv6 through a NAT: every pair would fail whatever the NAT types, so the matrix over IPv6 does not run it (modes that forward IPv6: routed, nptv6, nat66)", m)
	}
	return fmt.Errorf("ipv6 mode %s: the matrix over IPv6 runs NATs in mode routed, nptv6 or nat66", m)
}

// As6 is the behaviour a NAT of type t shows towards IPv6 in mode m, for
// Expected. routed translates nothing, so its mapping is
// endpoint-independent (the host's own endpoint), and its stateful
// firewall filters as t filters (RFC 6092); nptv6 maps prefixes
// statelessly (RFC 6296): endpoint-independent, and no filter; nat66
// translates with the IPv4 side's behaviours, so it behaves as t.
func As6(t NATType, m table.IPv6Mode) NATType {
	switch m {
	case table.IPv6Routed:
		t.Mapping = table.EndpointIndependent
	case table.IPv6NPTv6:
		t.Mapping, t.Filter = table.EndpointIndependent, table.EndpointIndependent
	}
	return t
}

// inside6 is the IPv6 network behind the matrix's n-th NAT (1 or 2).
func inside6(n int) string { return fmt.Sprintf("fd00:%d::/64", n) }

// matrixTOML is the lab of one pair: nat-a and nat-b, alice and bob behind
// them, and the server on the public network; over IPv6 (mode6 not
// IPv6None) the NATs get inside6 networks in that mode and the server
// IPv6 addresses beside its IPv4 ones.
func matrixTOML(a, b NATType, mode6 table.IPv6Mode) string {
	var s strings.Builder
	s.WriteString("name = \"matrix\"\n")
	for i, t := range []NATType{a, b} {
		s.WriteString(natTOML(fmt.Sprintf("nat-%c", 'a'+i), t, fmt.Sprintf("198.51.100.%d", i+1), fmt.Sprintf("10.0.%d.0/24", i+1)))
		if mode6 != table.IPv6None {
			fmt.Fprintf(&s, "inside6 = %q\nipv6 = %q\n", inside6(i+1), mode6)
		}
	}
	addrs := fmt.Sprintf("%q, %q", serverAddr, serverAddr2)
	if mode6 != table.IPv6None {
		addrs += fmt.Sprintf(", %q, %q", server6, server6b)
	}
	fmt.Fprintf(&s, `
[[host]]
name = "alice"
network = "nat-a"
[[host]]
name = "bob"
network = "nat-b"
[[host]]
name = "server"
network = "public"
address = [%s]
`, addrs)
	return s.String()
}
