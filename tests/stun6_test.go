package tests

// STUN and the RFC 5780 probe over IPv6, through a NAT whose IPv6 is
// routed (no translation, RFC 6092 stateful firewall): the dual-stack
// lab's STUN host answers on 2001:db8::1 and ::2 beside its IPv4
// addresses; gonat probe and coturn's RFC 5780 client
// (turnutils_natdiscovery) read the firewall's filtering as configured;
// through a nat66 NAT they read its NAT type.

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/stun"
	"github.com/gonat/gonat/table"
)

var stun6 = netip.MustParseAddrPort("[2001:db8::1]:3478")

func TestSTUNOverIPv6Routed(t *testing.T) {
	natdiscovery := privtest.Tool(t, "turnutils_natdiscovery")
	l := ipv6Lab(t, table.IPv6Routed)
	alice := netip.MustParseAddr("fd00:1::2")

	// One Binding transaction: the mapped address is alice's own.
	c, err := ns.ListenPacket(l.Node("alice").Namespace)("udp6", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := stun.Binding(context.Background(), c, stun6, 0, 200*time.Millisecond, 4)
	if err != nil {
		t.Fatalf("binding over IPv6 through the routed NAT: %v", err)
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if r.Mapped != netip.AddrPortFrom(alice, local.Port()) || r.MappedAddress != r.Mapped {
		t.Errorf("XOR-MAPPED %v, MAPPED %v; want alice's own [%v]:%d (no translation)", r.Mapped, r.MappedAddress, alice, local.Port())
	}
	if want := netip.MustParseAddrPort("[2001:db8::2]:3479"); r.OtherAddress != want || r.ResponseOrigin != stun6 {
		t.Errorf("OTHER-ADDRESS %v, RESPONSE-ORIGIN %v; want %v, %v", r.OtherAddress, r.ResponseOrigin, want, stun6)
	}

	// The firewall's filtering, set live to each of its three values
	// (RFC 5780's tests answer from the server's two addresses and two
	// ports); mapping is endpoint-independent throughout. coturn's
	// client judges beside gonat probe, at the same time (a silent test
	// of its takes 3 s); the address-dependent run also measures the
	// idle UDP lifetime, made 1 s.
	for _, tc := range []struct {
		filtering    table.Behavior
		classic      string
		natdiscovery string // coturn's verdict line
		lifetime     bool
	}{
		{table.AddressDependent, stun.ClassicUDPFirewall, "NAT with Address Dependent Filtering!", true},
		{table.AddressAndPortDependent, stun.ClassicUDPFirewall, "NAT with Address and Port Dependent Filtering!", false},
		{table.EndpointIndependent, stun.ClassicOpen, "NAT with Endpoint Independent Filtering!", false},
	} {
		t.Run(tc.filtering.String(), func(t *testing.T) {
			set := map[string]string{table.SettingFiltering: tc.filtering.String(), table.SettingUDPTimeout: "5m"}
			args := []string{"probe", "--server", stun6.Addr().String(), "--json"}
			if tc.lifetime {
				set[table.SettingUDPTimeout] = "1s"
				args = append(args, "--lifetime", "--max-lifetime", "8s")
			}
			if err := l.NAT("router").Set("", set); err != nil {
				t.Fatal(err)
			}
			judged := make(chan string, 1)
			go func() {
				got, _ := inNS(t, 30*time.Second, l.Node("alice").Namespace, natdiscovery, "-m", "-f", "-L", alice.String(), stun6.Addr().String())
				judged <- got
			}()
			out, err := l.Node("alice").Command("gonat", args...).Output()
			var res struct {
				Mapping, Filtering, Classic, Local string
				PortAssignment                     string  `json:"port_assignment"`
				Lifetime                           float64 `json:"lifetime_seconds"`
				Mapped                             []string
				Hairpin                            *bool
			}
			if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil {
				t.Fatalf("gonat probe: %v %v\n%s", err, jerr, out)
			}
			if res.Mapping != table.EndpointIndependent.String() || res.Filtering != tc.filtering.String() || res.Classic != tc.classic {
				t.Errorf("probe: mapping %q filtering %q classic %q; want %q %q %q",
					res.Mapping, res.Filtering, res.Classic, table.EndpointIndependent, tc.filtering, tc.classic)
			}
			if res.PortAssignment != table.Preserve.String() || !strings.HasPrefix(res.Local, "[fd00:1::2]:") || len(res.Mapped) != 3 || res.Mapped[0] != res.Local {
				t.Errorf("probe: ports %q, local %q, mapped %v; want preserve and alice's own address", res.PortAssignment, res.Local, res.Mapped)
			}
			// The hairpin test's packet goes from one of alice's sockets to
			// another (her mapped address is her own): it arrives.
			if res.Hairpin == nil || !*res.Hairpin {
				t.Errorf("probe: hairpin %v; want true (alice to her own address)", res.Hairpin)
			}
			// The search's bracket is a tolerance wide, 200 ms at least;
			// the pinhole lives from the last outbound packet, and a
			// loaded machine expires it late.
			if tc.lifetime {
				t.Logf("probe: idle UDP lifetime %.2fs with udp-timeout 1s", res.Lifetime)
			}
			if tc.lifetime && (res.Lifetime < 0.6 || res.Lifetime > 3) {
				t.Errorf("probe: lifetime %.2fs; want about the 1s udp-timeout", res.Lifetime)
			}
			if got := <-judged; !strings.Contains(got, "No NAT! (Endpoint Independent Mapping)") || !strings.Contains(got, tc.natdiscovery) {
				t.Errorf("turnutils_natdiscovery -m -f says (want no NAT and %q):\n%s", tc.natdiscovery, got)
			}
		})
	}
}

// Through a nat66 NAT set to each classic preset at run time, the probe
// over IPv6 reads what it reads over IPv4, from the NAT's external6
// address; coturn's client agrees on the symmetric one (the preset keeps
// the NAT's ipv6 mode: it is not a behaviour a preset sets).
func TestSTUNOverIPv6NAT66(t *testing.T) {
	natdiscovery := privtest.Tool(t, "turnutils_natdiscovery")
	l := ipv6Lab(t, table.IPv6NAT66)
	alice := netip.MustParseAddr("fd00:1::2")
	ei, ad, apd := table.EndpointIndependent.String(), table.AddressDependent.String(), table.AddressAndPortDependent.String()
	for _, tc := range []struct {
		preset, mapping, filtering, classic string
		natdiscovery                        []string // coturn's verdict lines, if it judges too
	}{
		{"full-cone", ei, ei, stun.ClassicFullCone, nil},
		{"restricted-cone", ei, ad, stun.ClassicRestrictedCone, nil},
		{"port-restricted-cone", ei, apd, stun.ClassicPortRestrictedCone, nil},
		{"symmetric", apd, apd, stun.ClassicSymmetric, []string{"NAT with Address and Port Dependent Mapping!", "NAT with Address and Port Dependent Filtering!"}},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			if err := l.NAT("router").Set(tc.preset, nil); err != nil {
				t.Fatal(err)
			}
			judged := make(chan string, 1)
			if tc.natdiscovery != nil {
				go func() {
					got, _ := inNS(t, 30*time.Second, l.Node("alice").Namespace, natdiscovery, "-m", "-f", "-L", alice.String(), stun6.Addr().String())
					judged <- got
				}()
			}
			out, err := l.Node("alice").Command("gonat", "probe", "--server", stun6.Addr().String(), "--json").Output()
			var res struct {
				Mapping, Filtering, Classic string
				Mapped                      []string
			}
			if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil {
				t.Fatalf("gonat probe: %v %v\n%s", err, jerr, out)
			}
			if res.Mapping != tc.mapping || res.Filtering != tc.filtering || res.Classic != tc.classic {
				t.Errorf("probe: mapping %q filtering %q classic %q; want %q %q %q", res.Mapping, res.Filtering, res.Classic, tc.mapping, tc.filtering, tc.classic)
			}
			if len(res.Mapped) != 3 {
				t.Fatalf("probe: mapped %v; want three mapped endpoints", res.Mapped)
			}
			for _, m := range res.Mapped {
				if !strings.HasPrefix(m, "[2001:db8::100]:") {
					t.Errorf("probe: mapped %q; want the NAT's external6 address 2001:db8::100", m)
				}
			}
			if tc.natdiscovery == nil {
				return
			}
			got := <-judged
			for _, line := range tc.natdiscovery {
				if !strings.Contains(got, line) {
					t.Errorf("turnutils_natdiscovery -m -f says (want %q):\n%s", line, got)
				}
			}
		})
	}
}
