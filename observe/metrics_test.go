package observe

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/tuntest"
)

// /metrics carries the process's health (goroutines, open fds, RSS) and
// the web view's event streams beside the NATs' counters.
func TestMetricsProcessAndWeb(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCollector(nil)
	c.WebStreams = func() (int64, uint64) { return 2, 5 }
	addr, err := ServeMetrics(ctx, "127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_open_fds ", "\nprocess_resident_memory_bytes ",
		"\ngonat_web_event_streams 2\n", "\ngonat_web_event_streams_refused_total 5\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}

// A NAT with a Router exports its impairment drops by reason, zero
// included, so a dashboard can graph them before the first loss.
func TestMetricsImpairDrops(t *testing.T) {
	c, err := table.Preset("full-cone")
	if err != nil {
		t.Fatal(err)
	}
	c.External = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	e, err := nat.New(nat.Config{Table: c, Inside: []nat.InsidePort{
		{Hosts: []netip.Prefix{netip.MustParsePrefix("10.0.1.2/24")}, Gateway: netip.MustParseAddr("10.0.1.1")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col := NewCollector(nil, MetricsNAT{Name: "home", Engine: e, Router: &forward.Router{Engine: e}})
	addr, err := ServeMetrics(ctx, "127.0.0.1:0", col)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`gonat_impair_drops_total{nat="home",reason="impair-loss"} 0`, `gonat_impair_drops_total{nat="home",reason="queue-overflow"} 0`,
		`gonat_drops_total{nat="home",reason="link-down"} 0`, `gonat_drops_total{nat="home",reason="impair-loss"} 0`, `gonat_drops_total{nat="home",reason="no-mapping"} 0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A link outside every NAT (a public host's wire) exports its drops by
// reason under its own name, zero included.
func TestMetricsLinkDrops(t *testing.T) {
	w := forward.NewWire(tuntest.NewChannel("eth0"), tuntest.NewChannel("pub0"), forward.PortImpair{In: impair.MustParse("loss=10%"), Out: impair.MustParse("loss=10%")}, 1)
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col := NewCollector(nil)
	col.Links = []MetricsLink{{Name: "server", Counter: w}}
	addr, err := ServeMetrics(ctx, "127.0.0.1:0", col)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`gonat_link_drops_total{link="server",reason="impair-loss"} 0`, `gonat_link_drops_total{link="server",reason="queue-overflow"} 0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
