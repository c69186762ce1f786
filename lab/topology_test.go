package lab

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gonat/gonat/table"
)

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
			// The STUN host has two addresses of each family it serves
			// (RFC 5780): IPv4, and IPv6 too where the lab's IPv6 reaches
			// the public network as IPv6 (behind NAT64 it is IPv4 there).
			dual, want6 := false, 0
			for _, n := range topo.NATs {
				if n.Inside6.IsValid() && !n.IsNAT64() {
					dual, want6 = true, 2
				}
			}
			stun := false
			for _, h := range topo.Hosts {
				v4, v6 := 0, 0
				for _, a := range h.Addresses {
					if a.Is4() {
						v4++
					} else {
						v6++
					}
				}
				if h.Network == Public && len(h.Run) > 1 && h.Run[0] == "gonat" && h.Run[1] == "stun-server" && v4 == 2 && v6 == want6 {
					stun = true
				}
				for _, a := range h.Addresses {
					if h.Network == Public && !docRange(a) {
						t.Errorf("%s: public address %s outside the documentation ranges", h.Name, a)
					}
					if h.Network != Public && !privateRange(a) {
						t.Errorf("%s: private address %s outside 10/8, 100.64/10 and the inside IPv6 ranges", h.Name, a)
					}
				}
			}
			if !stun {
				t.Errorf("no public STUN server host with two IPv4 addresses (and two IPv6 ones in a lab with IPv6: %v)", dual)
			}
			for _, n := range topo.NATs {
				if !privateRange(n.Inside.Addr()) && !(n.IsNAT64() && !n.Inside.IsValid()) {
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
	for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

func privateRange(a netip.Addr) bool {
	return netip.MustParsePrefix("10.0.0.0/8").Contains(a) || netip.MustParsePrefix("100.64.0.0/10").Contains(a) ||
		netip.MustParsePrefix("fd00::/8").Contains(a) ||
		// A global (documentation) prefix delegated to a home network, as
		// routed IPv6 has, apart from the public hosts' /48.
		doc6.Contains(a) && !public6Pool.Contains(a)
}
