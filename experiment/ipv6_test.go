package experiment

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/table"
)

// Over IPv6, none, blackhole and reject are refused with the reason;
// routed and nptv6 run.
func TestCheckIPv6Mode(t *testing.T) {
	for _, m := range []table.IPv6Mode{table.IPv6None, table.IPv6Blackhole, table.IPv6Reject} {
		err := CheckIPv6Mode(m)
		if err == nil || !strings.Contains(err.Error(), "lets no IPv6 through") || !strings.Contains(err.Error(), "routed") {
			t.Errorf("%s: %v; want a refusal naming the modes that forward IPv6", m, err)
		}
	}
	for _, m := range []table.IPv6Mode{table.IPv6Routed, table.IPv6NPTv6, table.IPv6NAT66} {
		if err := CheckIPv6Mode(m); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

// A routed NAT translates nothing: whatever its type, two peers behind
// routed NATs reach each other, as RFC 8445 agents and permissively, since
// each side's check leaves from the endpoint the other checks (RFC 6092's
// filter opens for exactly that). Its filtering is the type's.
func TestExpectedIPv6(t *testing.T) {
	for _, m := range []table.IPv6Mode{table.IPv6Routed, table.IPv6NPTv6} {
		types := AllCombinations()
		for _, a := range types {
			if a6 := As6(a, m); a6.Mapping != table.EndpointIndependent || m == table.IPv6Routed && a6.Filter != a.Filter {
				t.Errorf("%s as %s: mapping %s filtering %s", a.Name, m, a6.Mapping, a6.Filter)
			}
			for _, b := range types {
				for _, permissive := range []bool{false, true} {
					if !Expected(As6(a, m), As6(b, m), permissive) {
						t.Errorf("%s: %s x %s (permissive %v) expected to fail", m, a.Name, b.Name, permissive)
					}
				}
			}
		}
	}
}

// The pair's lab parses, over IPv4 as before and over IPv6 with each NAT
// in the mode on an IPv6 network of its own and the server dual-stack.
func TestMatrixTOML(t *testing.T) {
	types := ClassicTypes()
	topo, err := lab.Parse([]byte(matrixTOML(types[0], types[3], table.IPv6None)), "matrix.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range topo.NATs {
		if n.Inside6.IsValid() {
			t.Errorf("IPv4 matrix: nat %s has inside6 %v", n.Name, n.Inside6)
		}
	}
	for _, m := range []table.IPv6Mode{table.IPv6Routed, table.IPv6NPTv6} {
		topo, err := lab.Parse([]byte(matrixTOML(types[0], types[3], m)), "matrix.toml")
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		for i, n := range topo.NATs {
			if n.Behavior.IPv6 != m || n.Inside6 != netip.MustParsePrefix(inside6(i+1)) {
				t.Errorf("%s: nat %s ipv6 %s inside6 %v", m, n.Name, n.Behavior.IPv6, n.Inside6)
			}
		}
		for _, h := range topo.Hosts {
			if h.Name == "server" && !(len(h.Addresses) == 4 && h.Addresses[2] == server6 && h.Addresses[3] == server6b) {
				t.Errorf("%s: server addresses %v", m, h.Addresses)
			}
		}
	}
}
