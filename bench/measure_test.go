package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCPUStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	busy, all, err := parseCPUStat("cpu  100 2 30 500 7 4 5 50 0 0\ncpu0 50 1 15 250 3 2 2 25 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if busy != 100+2+30+4+5 || all != busy+500+7 {
		t.Errorf("busy %d all %d, want 141 and 648 (steal in neither)", busy, all)
	}
	for _, bad := range []string{"", "intr 5 6\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, _, err := parseCPUStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The CPU column shows each row's busy share and, against the kernel
// NAT, its 4-stream throughput per busy CPU.
func TestMarkdownCPUBusy(t *testing.T) {
	res := results{Rows: []*row{
		{Key: "nat", Name: "kernel NAT", TCP1Gbps: 16, TCP4Gbps: 30, TCP1Busy: 72.6, TCP4Busy: 90},
		{Key: "offload", Name: "gonat", TCP1Gbps: 16, TCP4Gbps: 15, TCP1Busy: 91, TCP4Busy: 96},
		{Key: "water", Name: "gonat water", TCP1Gbps: 2, TCP4Gbps: 2},
	}}
	res.ratios()
	md := res.markdown()
	for _, want := range []string{
		"| CPU busy, TCP 1 / 4 streams |",
		"| 73% / 90% (1.00x) |",
		"| 91% / 96% (0.47x) |", // 15/96 against 30/90
		"| n/a |\n",             // water: not sampled
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// IPv6 rows are compared with the kernel's IPv6 forwarding, the others
// with the kernel NAT; with no baseline measured a row has no ratios.
func TestRatiosPerFamily(t *testing.T) {
	res := results{Rows: []*row{
		{Key: "nat", TCP1Gbps: 20, RTTp50us: 10, RTTp99us: 20},
		{Key: "offload", TCP1Gbps: 10, RTTp50us: 30, RTTp99us: 60},
		{Key: "route6", IPv6: "kernel", TCP1Gbps: 40, RTTp50us: 8, RTTp99us: 16},
		{Key: "routed", IPv6: "routed", TCP1Gbps: 10, RTTp50us: 28, RTTp99us: 50},
	}}
	res.ratios()
	for _, c := range []struct {
		key        string
		ratio, p50 float64
	}{{"nat", 1, 0}, {"offload", 0.5, 20}, {"route6", 1, 0}, {"routed", 0.25, 20}} {
		r := res.Rows[slices.IndexFunc(res.Rows, func(r *row) bool { return r.Key == c.key })]
		if r.Ratio["tcp_1_stream"] != c.ratio || r.Added["p50"] != c.p50 {
			t.Errorf("%s: ratio %v, +%v µs; want %v, +%v", c.key, r.Ratio["tcp_1_stream"], r.Added["p50"], c.ratio, c.p50)
		}
	}
	if md := res.markdown(); !strings.Contains(md, "| 10.00 Gbit/s (0.25x) |") {
		t.Errorf("markdown lacks the routed row's ratio to route6:\n%s", md)
	}
	alone := results{Rows: []*row{{Key: "nptv6", IPv6: "nptv6", TCP1Gbps: 5}}}
	alone.ratios()
	if alone.Rows[0].Ratio != nil {
		t.Errorf("a row without its baseline has ratios: %v", alone.Rows[0].Ratio)
	}
}
