package tests

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/stun"
)

// startSTUN runs an RFC 5780 server in the public namespace on A1/A2,
// ports 3478/3479.
func (tp *topo) startSTUN() {
	t := tp.t
	t.Helper()
	srv, err := stun.NewServer(stun.ServerConfig{Primary: srv1, Alternate: srv2, ListenPacket: ns.ListenPacket(tp.WAN)})
	if err != nil {
		t.Fatalf("stun server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); srv.Close(); <-done })
}

var stunServer = netip.AddrPortFrom(srv1, 3478)

// mapped asks the STUN server what it sees for socket c: the binding the
// NAT made (binding discovery).
func mapped(t *testing.T, c net.PacketConn, server netip.AddrPort) netip.AddrPort {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := stun.Binding(ctx, c, server, 0, 150*time.Millisecond, 4)
	if err != nil {
		t.Fatalf("binding request to %s: %v", server, err)
	}
	return r.Mapped
}

// probeJSON is `gonat probe --json`'s stable schema.
type probeJSON struct {
	Mapping         string   `json:"mapping"`
	Filtering       string   `json:"filtering"`
	Hairpin         *bool    `json:"hairpin"`
	HairpinUnseen   bool     `json:"hairpin_unseen"`
	PortAssignment  string   `json:"port_assignment"`
	LifetimeSeconds float64  `json:"lifetime_seconds"`
	LifetimeBounded bool     `json:"lifetime_bounded"`
	Classic         string   `json:"classic"`
	Mapped          []string `json:"mapped"`
}

// probeCLI runs the real `gonat probe --json` on host A.
func (tp *topo) probeCLI(extra ...string) probeJSON {
	t := tp.t
	t.Helper()
	args := append([]string{"probe", "--server", stunServer.String(), "--json", "--rto", "150ms", "--retries", "3"}, extra...)
	out, err := inNS(t, 90*time.Second, tp.A, gonatBin, args...)
	var r probeJSON
	if jerr := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil || jerr != nil {
		t.Fatalf("gonat probe: %v %v\n%s", err, jerr, out)
	}
	return r
}

// Each preset, observed with real sockets through the real NAT by the
// real `gonat probe`, is the NAT type it is named after
// (docs/nat-requirements.md §1), with the configured hairpinning and port
// assignment.
func TestPresetsBehaveAsNamed(t *testing.T) {
	cases := []struct {
		preset             string
		mapping, filtering string
		classic            string
		hairpin            string
		ports              string
	}{
		{"full-cone", "endpoint-independent", "endpoint-independent", "full cone", "true", "preserve"},
		{"restricted-cone", "endpoint-independent", "address-dependent", "restricted cone", "true", "preserve"},
		{"port-restricted-cone", "endpoint-independent", "address-and-port-dependent", "port restricted cone", "true", "preserve"},
		// Hairpinning is on, but the RFC 5780 hairpin test cannot see it
		// through APDM+APDF: the packet to M1 leaves by a new mapping
		// that M1's filter has never heard of. TestHairpinUDP shows it.
		{"symmetric", "address-and-port-dependent", "address-and-port-dependent", "symmetric", "false", "random"},
		{"linux", "endpoint-independent", "address-and-port-dependent", "port restricted cone", "false", "preserve"},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			tp.startSTUN()
			tp.startNAT("--preset", c.preset)
			r := tp.probeCLI()
			if r.Mapping != c.mapping || r.Filtering != c.filtering || r.Classic != c.classic || r.PortAssignment != c.ports {
				t.Errorf("probe says mapping=%s filtering=%s classic=%q ports=%s; want %s %s %q %s",
					r.Mapping, r.Filtering, r.Classic, r.PortAssignment, c.mapping, c.filtering, c.classic, c.ports)
			}
			if ptrString(r.Hairpin) != c.hairpin {
				t.Errorf("hairpin observed %v, want %v", ptrString(r.Hairpin), c.hairpin)
			}
			// Only symmetric's "false" says nothing; linux's is a real no.
			if want := c.preset == "symmetric"; r.HairpinUnseen != want {
				t.Errorf("hairpin_unseen %v, want %v", r.HairpinUnseen, want)
			}
			if len(r.Mapped) == 0 || !strings.HasPrefix(r.Mapped[0], ext1.String()+":") {
				t.Errorf("server saw %v, want the external address %s", r.Mapped, ext1)
			}
		})
	}
}

// All nine RFC 4787 mapping x filtering combinations, each with a port
// assignment, observed by `gonat probe --json`.
func TestMappingFilteringMatrix(t *testing.T) {
	behaviours := []string{"endpoint-independent", "address-dependent", "address-and-port-dependent"}
	ports := []string{"preserve", "sequential", "random"}
	i := 0
	for _, m := range behaviours {
		for _, f := range behaviours {
			pa := ports[i%3]
			i++
			t.Run("mapping="+m+"/filtering="+f+"/ports="+pa, func(t *testing.T) {
				t.Parallel()
				tp := newTopo(t)
				tp.startSTUN()
				tp.startNAT("--mapping", m, "--filtering", f, "--port-assignment", pa)
				r := tp.probeCLI()
				if r.Mapping != m || r.Filtering != f || r.PortAssignment != pa {
					t.Errorf("observed mapping=%s filtering=%s ports=%s", r.Mapping, r.Filtering, r.PortAssignment)
				}
				// The probe sees hairpinning unless a non-EIM NAT also filters.
				if m == "endpoint-independent" || f == "endpoint-independent" {
					if ptrString(r.Hairpin) != "true" {
						t.Errorf("hairpin observed %s, want true", ptrString(r.Hairpin))
					}
				}
			})
		}
	}
}

// The RFC 5780 lifetime search finds --udp-timeout within 10%.
func TestProbeLifetime(t *testing.T) {
	for _, timeout := range []time.Duration{3 * time.Second, 6 * time.Second} {
		t.Run(timeout.String(), func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			tp.startSTUN()
			tp.startNAT("--preset", "port-restricted-cone", "--udp-timeout", timeout.String())
			r := tp.probeCLI("--lifetime", "--max-lifetime", "30s")
			got := time.Duration(r.LifetimeSeconds * float64(time.Second))
			if r.LifetimeBounded || got < timeout*9/10 || got > timeout*11/10 {
				t.Errorf("lifetime measured %v (bounded %v), want %v within 10%%", got, r.LifetimeBounded, timeout)
			}
		})
	}
}

func ptrString(b *bool) string {
	if b == nil {
		return "unknown"
	}
	if *b {
		return "true"
	}
	return "false"
}
