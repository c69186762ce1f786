package tests

import (
	"context"
	"net"
	"net/netip"
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

// probe runs the RFC 5780 behaviour discovery from namespace n.
func (tp *topo) probe(n string) stun.Result {
	t := tp.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := stun.Probe(ctx, stun.ProbeConfig{Server: stunServer, ListenPacket: ns.ListenPacket(n),
		RTO: 150 * time.Millisecond, Retries: 3})
	if err != nil {
		t.Fatalf("probe from %s: %v", n, err)
	}
	return r
}

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

// Each preset, observed with real sockets through the real NAT, is the
// NAT type it is named after (nat-requirements.md §1).
func TestPresetsBehaveAsNamed(t *testing.T) {
	cases := []struct {
		preset             string
		mapping, filtering string
		classic            string
		hairpin            bool
	}{
		{"full-cone", "endpoint-independent", "endpoint-independent", "full cone", true},
		{"restricted-cone", "endpoint-independent", "address-dependent", "restricted cone", true},
		{"port-restricted-cone", "endpoint-independent", "address-and-port-dependent", "port restricted cone", true},
		// Hairpinning is on, but the RFC 5780 hairpin test cannot see it
		// through APDM+APDF: the packet to M1 leaves by a new mapping
		// that M1's filter has never heard of. TestHairpinUDP shows it.
		{"symmetric", "address-and-port-dependent", "address-and-port-dependent", "symmetric", false},
		{"linux", "endpoint-independent", "address-and-port-dependent", "port restricted cone", false},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			tp.startSTUN()
			tp.startNAT("--preset", c.preset)
			r := tp.probe(tp.A)
			if r.Mapping != c.mapping || r.Filtering != c.filtering || r.Classic != c.classic {
				t.Errorf("probe says mapping=%s filtering=%s classic=%q; want %s %s %q",
					r.Mapping, r.Filtering, r.Classic, c.mapping, c.filtering, c.classic)
			}
			if r.Hairpin == nil || *r.Hairpin != c.hairpin {
				t.Errorf("hairpin observed %v, want %v", ptrString(r.Hairpin), c.hairpin)
			}
			if r.Mapped[0].Addr() != ext1 {
				t.Errorf("server saw %s, want the external address %s", r.Mapped[0], ext1)
			}
		})
	}
}

// All nine RFC 4787 mapping x filtering combinations.
func TestMappingFilteringMatrix(t *testing.T) {
	behaviours := []string{"endpoint-independent", "address-dependent", "address-and-port-dependent"}
	for _, m := range behaviours {
		for _, f := range behaviours {
			t.Run("mapping="+m+"/filtering="+f, func(t *testing.T) {
				t.Parallel()
				tp := newTopo(t)
				tp.startSTUN()
				tp.startNAT("--mapping", m, "--filtering", f)
				r := tp.probe(tp.A)
				if r.Mapping != m || r.Filtering != f {
					t.Errorf("observed mapping=%s filtering=%s", r.Mapping, r.Filtering)
				}
			})
		}
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
