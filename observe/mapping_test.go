package observe

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
)

// The JSON of a mapping is what `gonat table --json` users script
// against and what the web page reads: these exact names and units.
func TestMappingJSONContract(t *testing.T) {
	now := time.Unix(1700000000, 0)
	m := mappingInfo(table.TCP, now)
	m.Created = now.Add(-65*time.Second - 300*time.Millisecond)
	m.Expires = now.Add(271*time.Second + 400*time.Millisecond)
	m.Remotes = []table.SessionInfo{
		{Remote: netip.MustParseAddrPort("203.0.113.10:80"), State: "ESTABLISHED"},
		{Remote: netip.MustParseAddrPort("203.0.113.11:443")},
	}
	m.PacketsOut, m.PacketsIn, m.BytesOut, m.BytesIn = 12, 9, 1200, 900
	b, err := json.Marshal(MappingOf("home", m, now))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"nat": "home", "proto": "tcp", "internal": "10.0.1.2:5000", "external": "198.51.100.1:40001",
		"remotes":    []any{"203.0.113.10:80 (ESTABLISHED)", "203.0.113.11:443"},
		"expires_in": 271.0, "age": "1m5s",
		"packets_out": 12.0, "packets_in": 9.0, "bytes_out": 1200.0, "bytes_in": 900.0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mapping JSON\n got %s\nwant %v", b, want)
	}
}

// mappingInfo is a mapping of 10.0.1.2:5000 as 198.51.100.1:40001, made
// at created.
func mappingInfo(proto table.Protocol, created time.Time) nat.MappingInfo {
	return nat.MappingInfo{Proto: proto, Created: created,
		Internal: netip.MustParseAddrPort("10.0.1.2:5000"), External: netip.MustParseAddrPort("198.51.100.1:40001")}
}

func TestMappingOf(t *testing.T) {
	now := time.Unix(1700000000, 0)
	base := mappingInfo(table.UDP, now)
	cases := []struct {
		name    string
		expires time.Duration
		state   string
		want    Mapping
	}{
		{"expiry rounds to the nearest second", 1500 * time.Millisecond, "",
			Mapping{ExpiresIn: 2, Remotes: []string{"203.0.113.10:3478"}}},
		{"a due mapping has no time left, never a negative one", -3 * time.Second, "",
			Mapping{ExpiresIn: 0, Remotes: []string{"203.0.113.10:3478"}}},
		{"a UDP remote has no state to show", time.Minute, "ESTABLISHED",
			Mapping{ExpiresIn: 60, Remotes: []string{"203.0.113.10:3478"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base
			m.Expires = now.Add(c.expires)
			m.Remotes = []table.SessionInfo{{Remote: netip.MustParseAddrPort("203.0.113.10:3478"), State: c.state}}
			got := MappingOf("nat", m, now)
			if got.ExpiresIn != c.want.ExpiresIn || !reflect.DeepEqual(got.Remotes, c.want.Remotes) {
				t.Errorf("expires_in %d, remotes %q; want %d, %q", got.ExpiresIn, got.Remotes, c.want.ExpiresIn, c.want.Remotes)
			}
		})
	}
}

// A mapping is named the same way by its view, the event that made it
// and the metrics that count it: nat, proto, internal, external.
func TestOneNamingAcrossViews(t *testing.T) {
	c, err := table.Preset("full-cone")
	if err != nil {
		t.Fatal(err)
	}
	host := netip.MustParseAddrPort("10.0.1.2:5000")
	server := netip.MustParseAddrPort("203.0.113.10:3478")
	c.External = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	e, err := nat.New(nat.Config{Table: c, Inside: []nat.InsidePort{
		{Hosts: []netip.Prefix{netip.PrefixFrom(host.Addr(), 24)}, Gateway: netip.MustParseAddr("10.0.1.1")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	hub := NewHub()
	hub.Attach("home", e, nil)
	events, cancel := hub.Subscribe(false)
	defer cancel()

	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: host.Addr(), Dst: server.Addr(), Protocol: header.ProtoUDP, TTL: 64, ID: 1},
		header.UDPFields{SrcPort: host.Port(), DstPort: server.Port()}, []byte("hello"))
	now := time.Now()
	if r := e.Process(1, b[:n], make([]byte, 1500), now); r.Verdict != nat.Forward {
		t.Fatalf("outbound packet: %v", r.Verdict)
	}

	ms := Mappings("home", e, now)
	if len(ms) != 1 {
		t.Fatalf("%d mappings, want 1", len(ms))
	}
	m := ms[0]
	var ev Event
	select {
	case ev = <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("no NEW event")
	}
	if ev.Kind != "NEW" || ev.NAT != m.NAT || ev.Proto != m.Proto || ev.Internal != m.Internal || ev.External != m.External {
		t.Errorf("event %+v names the mapping %+v otherwise", ev, m)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(hub, MetricsNAT{Name: "home", Engine: e}))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		if f.GetName() != "gonat_mappings" {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["nat"] == m.NAT && labels["proto"] == m.Proto && mt.GetGauge().GetValue() == 1 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no gonat_mappings{nat=%q,proto=%q} 1 in %v", m.NAT, m.Proto, fams)
	}
}

// The ICMP errors the limiter holds back are exported apart from the
// verdicts, which count every packet under its reason.
func TestMetricsICMPErrorsLimited(t *testing.T) {
	c, err := table.Preset("full-cone")
	if err != nil {
		t.Fatal(err)
	}
	ext := netip.MustParseAddr("198.51.100.1")
	c.External = []netip.Addr{ext}
	e, err := nat.New(nat.Config{Table: c, Inside: []nat.InsidePort{
		{Hosts: []netip.Prefix{netip.MustParsePrefix("10.0.1.2/24")}, Gateway: netip.MustParseAddr("10.0.1.1")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1500)
	now := time.Now()
	const probes = 10 // from one remote at one instant: a burst of 6 answered
	for range probes {
		n := header.BuildUDP(b, header.IPv4Fields{Src: netip.MustParseAddr("203.0.113.10"), Dst: ext, Protocol: header.ProtoUDP, TTL: 1, ID: 1},
			header.UDPFields{SrcPort: 4000, DstPort: 33434}, []byte("probe"))
		if r := e.Process(nat.Outside, b[:n], make([]byte, 1500), now); r.Verdict != nat.DropTTLExceeded {
			t.Fatalf("probe: %v", r.Verdict)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(nil, MetricsNAT{Name: "home", Engine: e}))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "verdict" && l.GetValue() == "ttl-exceeded" {
					got[f.GetName()] = mt.GetCounter().GetValue()
				}
			}
			if f.GetName() == "gonat_icmp_errors_limited_total" {
				got[f.GetName()] = mt.GetCounter().GetValue()
			}
		}
	}
	if got["gonat_verdicts_total"] != probes || got["gonat_icmp_errors_limited_total"] != probes-6 {
		t.Errorf("verdicts_total{ttl-exceeded} %v, icmp_errors_limited_total %v; want %d and %d",
			got["gonat_verdicts_total"], got["gonat_icmp_errors_limited_total"], probes, probes-6)
	}
}
