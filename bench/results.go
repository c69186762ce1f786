package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type results struct {
	Date     string `json:"date"`
	Kernel   string `json:"kernel"`
	CPUs     int    `json:"cpus"`
	Iperf3   string `json:"iperf3"`
	Seconds  int    `json:"iperf3_seconds"`
	Runs     int    `json:"tcp_runs_best_of"`
	Load     string `json:"load_average_at_start"`
	Flows    int    `json:"mapping_flows"`
	Duration string `json:"duration"`
	Rows     []*row `json:"rows"`
}

// ratios fills each row's figures relative to its baseline (base):
// throughput as a ratio, latency as microseconds added.
func (res *results) ratios() {
	bases := map[string]*row{}
	for _, r := range res.Rows {
		if r.Skipped == "" && (r.Key == "nat" || r.Key == "route6") {
			bases[r.Key] = r
		}
	}
	ratio := func(a, b float64) float64 {
		if a == 0 || b == 0 {
			return 0
		}
		return a / b
	}
	for _, r := range res.Rows {
		k := bases[r.base()]
		if r.Skipped != "" || k == nil {
			continue
		}
		r.Ratio = map[string]float64{
			"tcp_1_stream":  ratio(r.TCP1Gbps, k.TCP1Gbps),
			"tcp_4_streams": ratio(r.TCP4Gbps, k.TCP4Gbps),
			// Throughput per busy CPU: what the path costs per bit, which
			// decides its throughput where the CPUs run out.
			"tcp_4_streams_per_busy_cpu": ratio(perBusy(r.TCP4Gbps, r.TCP4Busy), perBusy(k.TCP4Gbps, k.TCP4Busy)),
			"udp_64b_pps":                ratio(r.UDPkpps, k.UDPkpps),
			"udp_64b_pps_low_loss":       ratio(r.UDPZeroLoss, k.UDPZeroLoss),
			"new_mappings":               ratio(r.MapsPerSec, k.MapsPerSec),
		}
		if r.RTTp50us > 0 && k.RTTp50us > 0 {
			r.Added = map[string]float64{"p50": r.RTTp50us - k.RTTp50us, "p99": r.RTTp99us - k.RTTp99us}
		}
	}
}

// base is the key of the row r is compared with: the kernel's IPv6
// forwarding for IPv6 rows, the kernel NAT for the others.
func (r *row) base() string {
	if r.IPv6 != "" {
		return "route6"
	}
	return "nat"
}

// perBusy is throughput per busy percent (0 when either is unknown).
func perBusy(gbps, busy float64) float64 {
	if busy <= 0 {
		return 0
	}
	return gbps / busy
}

func (res *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gonat bench, %s: %d cores, Linux %s, %s, TCP/UDP runs of %d s (+1 s omitted, TCP best of %d), MTU 1500; load average %s at the start.\n",
		res.Date, res.CPUs, res.Kernel, res.Iperf3, res.Seconds, res.Runs, res.Load)
	b.WriteString("Ratios in brackets are to the kernel NAT row (IPv6 rows: to the kernel IPv6 forwarding row); latency in brackets is what the path adds over it.\n\n")
	fmt.Fprintf(&b, "| path | TCP 1 stream | TCP 4 streams | UDP 64 B, most received | UDP 64 B at <= %.1f%% loss | UDP 64 B loss @40 kpps | RTT p50 / p99 | new mappings/s | RSS | CPU busy, TCP 1 / 4 streams |\n", lowLoss)
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s |||||||||\n", r.Name, oneLine(r.Skipped))
			continue
		}
		rt := func(k string) string {
			if v, ok := r.Ratio[k]; ok && v > 0 {
				return fmt.Sprintf(" (%.2fx)", v)
			}
			return ""
		}
		cell := func(v float64, format, key string) string {
			if v == 0 {
				return "n/a"
			}
			return fmt.Sprintf(format, v) + rt(key)
		}
		lat := "n/a"
		if r.RTTp50us > 0 {
			lat = fmt.Sprintf("%.0f / %.0f µs", r.RTTp50us, r.RTTp99us)
			if r.Added != nil && r.Key != r.base() {
				lat += fmt.Sprintf(" (%+.0f / %+.0f)", r.Added["p50"], r.Added["p99"])
			}
		}
		loss := "n/a"
		if _, bad := r.Errors["udp-40k"]; !bad && !latencyOnly {
			loss = fmt.Sprintf("%.2f%%", r.Loss40k)
		}
		rss := "-"
		if r.RSSMB > 0 {
			rss = fmt.Sprintf("%.0f MB", r.RSSMB)
		}
		busy := "n/a"
		if r.TCP1Busy > 0 || r.TCP4Busy > 0 {
			pct := func(v float64) string {
				if v <= 0 {
					return "n/a"
				}
				return fmt.Sprintf("%.0f%%", v)
			}
			busy = pct(r.TCP1Busy) + " / " + pct(r.TCP4Busy) + rt("tcp_4_streams_per_busy_cpu")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name,
			cell(r.TCP1Gbps, "%.2f Gbit/s", "tcp_1_stream"), cell(r.TCP4Gbps, "%.2f Gbit/s", "tcp_4_streams"),
			cell(r.UDPkpps, "%.0f kpps", "udp_64b_pps"), cell(r.UDPZeroLoss, "%.0f kpps", "udp_64b_pps_low_loss"), loss, lat,
			cell(r.MapsPerSec, "%.0f", "new_mappings"), rss, busy)
	}
	b.WriteString("\nUDP 64 B, most received: iperf3 -u -l 64 -b 0 (as fast as the client sends); what the server got per second.\n")
	fmt.Fprintf(&b, "UDP 64 B at <= %.1f%% loss: the highest offered rate (bisected, 2 s runs, a rate failing only when two runs at it lose more; 250 kpps at most).\n", lowLoss)
	fmt.Fprintf(&b, "RTT: ping, %d echo requests 2 ms apart, answered by the server's kernel. New mappings: 16 threads, each flow a fresh source port, one datagram and its echo (IPv4 rows only).\n", pings)
	b.WriteString("CPU busy: the share of all CPU time on the machine (every process, iperf3's included) that was busy in the measured seconds of the best TCP run. Near 100% a path is bound by CPU; in brackets, its TCP 4-stream throughput per busy CPU against the kernel NAT's: what it costs per bit.\n")
	for _, r := range res.Rows {
		for what, e := range r.Errors {
			fmt.Fprintf(&b, "\n%s, %s: %s", r.Name, what, oneLine(e))
		}
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (res *results) write(dir, table string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(table), 0o644); err != nil {
		return err
	}
	j, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644)
}
