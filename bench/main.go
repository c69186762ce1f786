// Command bench measures gonat against the Linux kernel on this machine:
// the same client and server namespaces joined in several ways, one after
// the other in one run,
//
//	kernel routing   client -veth- router -veth- server, no NAT (the limit)
//	kernel NAT       the same with nftables (or iptables) MASQUERADE
//	gonat offload    client -TUN- gonat -TUN- server, --tun-backend offload
//	                 (its default readers: a queue per CPU, steered by the
//	                 sending CPU, read by a thread pinned to it)
//	gonat water      the same with --tun-backend water (a reader per device)
//	gonat busypoll   offload with --busy-poll: one reader that spins while
//	                 traffic flows (a CPU core for lower latency)
//	gonat queues     offload with --tun-queues 2: two queues per TUN
//	                 device, a reader each (IFF_MULTI_QUEUE)
//	gonat perdevice  offload with --per-cpu=false: one queue per device,
//	                 read by a goroutine that waits in Go's netpoller
//	gonat impair0    offload with an impairer deciding every packet and
//	                 losing almost none: the cost of the hook
//	gonat delay50    offload with 50 ms delay towards the server: the
//	                 traffic held in the delay queue
//	kernel route6    the kernel routing row over IPv6 (the IPv6 baseline)
//	gonat routed...  offload over IPv6, one row per --ipv6 mode (ipv6Modes)
//
// and prints a table of absolute figures and ratios to the kernel NAT
// (IPv6 rows: to the kernel's IPv6 forwarding):
// iperf3 TCP with 1 and 4 streams, UDP 64-byte datagrams (the most the
// receiver gets at full offered load, the highest rate with almost no
// loss, and the loss at 40 kpps), ping round-trip latency under light
// load, new UDP mappings per second, and gonat's peak RSS. The table goes to results.md and results.json beside
// this file too.
//
// Run it as root with `make bench` (go run ./bench -gonat bin/gonat). It
// creates namespaces with a prefix unique to the run (gb<pid>-), uses
// only 10.0.0.0/8 inside and 203.0.113.0/24 / 198.51.100.0/24 outside,
// and removes everything it made on exit and on Ctrl-C. A missing
// iperf3 or nftables is installed with apt-get after saying so; a row
// whose tool cannot be had is skipped with a note.
//
// With -scale N,... it runs the scale benchmark instead (scale.go; `make
// bench-scale`): a lab of N NATs brought up and down by `gonat lab up`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	gonat := flag.String("gonat", "bin/gonat", "the gonat binary to measure")
	outDir := flag.String("out", "bench", "directory for results.md and results.json")
	secs := flag.Int("t", 4, "seconds each iperf3 run measures (after 1 s omitted; at most 4)")
	flows := flag.Int("flows", 20000, "short UDP flows for the new-mappings figure")
	runs := flag.Int("runs", 2, "TCP runs per figure; the best is kept (the machine may be shared)")
	keys := rowKeys()
	only := flag.String("only", "", "comma-separated row keys to run ("+strings.Join(keys, ",")+"); default all")
	flag.BoolVar(&latencyOnly, "latency-only", false, "measure only the ping RTT column (no iperf3, no mappings)")
	flag.IntVar(&pings, "pings", 1000, "echo requests for the ping RTT column")
	var so soakOpts
	flag.DurationVar(&so.d, "soak", 0, "instead of measuring, soak one gonat with churning flows for this long (e.g. 10m), printing its RSS, goroutines, fds and mappings; exits 1 unless they stay flat")
	flag.DurationVar(&so.every, "soak-every", time.Minute, "soak: time between two lines")
	flag.IntVar(&so.udpRate, "soak-udp", 200, "soak: short UDP flows (new mappings) per second")
	flag.IntVar(&so.tcpRate, "soak-tcp", 20, "soak: short TCP connections per second")
	scale := flag.String("scale", "", "instead of the rows: the scale benchmark, a lab of N NATs for each N of this list (e.g. 100,500,1000)")
	flag.Parse()
	if so.d > 0 && *scale != "" {
		fmt.Fprintln(os.Stderr, "bench: -soak and -scale are two runs: give one")
		os.Exit(2)
	}
	if so.d > 0 {
		if err := runSoak(*gonat, so); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *scale != "" {
		ns, err := parseScale(*scale)
		if err == nil {
			err = runScale(*gonat, ns)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *only != "" {
		for _, k := range strings.Split(*only, ",") {
			if !slices.Contains(keys, k) {
				fmt.Fprintf(os.Stderr, "bench: -only %s: no row %q (rows: %s)\n", *only, k, strings.Join(keys, ","))
				os.Exit(2)
			}
		}
	}
	*secs = max(1, min(*secs, 4))
	if err := run(*gonat, *outDir, *secs, max(1, *runs), *flows, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// newRows returns the rows, in the order they run; natTool names the
// kernel NAT's tool. The IPv6 rows are one per mode of ipv6Modes after
// the kernel's IPv6 forwarding, their baseline.
func newRows(natTool string) []*row {
	rows := []*row{
		{Key: "route", Name: "kernel routing (no NAT)"},
		{Key: "nat", Name: "kernel NAT (" + natTool + " masquerade)"},
		{Key: "offload", Name: "gonat --tun-backend offload"},
		{Key: "water", Name: "gonat --tun-backend water"},
		{Key: "busypoll", Name: "gonat --tun-backend offload --busy-poll " + busyPoll.String(), Flags: []string{"--busy-poll", busyPoll.String()}},
		{Key: "queues", Name: "gonat --tun-backend offload --tun-queues 2", Flags: []string{"--tun-queues", "2"}},
		{Key: "perdevice", Name: "gonat --tun-backend offload --per-cpu=false", Flags: []string{"--per-cpu=false"}},
		// The impairment hook on, deciding every packet and losing
		// almost none, against the offload row without it.
		{Key: "impair0", Name: "gonat --tun-backend offload --impair " + impairZero, Flags: []string{"--impair", impairZero}},
		// The delay queue carrying the traffic (held, then written).
		{Key: "delay50", Name: "gonat --tun-backend offload --impair-out delay=50ms", Flags: []string{"--impair-out", "delay=50ms"}},
		{Key: "route6", Name: "kernel IPv6 forwarding", IPv6: "kernel"},
	}
	for _, m := range ipv6Modes {
		rows = append(rows, &row{Key: m, Name: "gonat --tun-backend offload --ipv6 " + m, IPv6: m, Flags: []string{"--ipv6", m}})
	}
	return rows
}

// impairZero is the impair0 row's spec: an impairer on the outside link
// that decides every packet both ways and loses one in 100,000.
const impairZero = "loss=0.001%"

// ipv6Modes are gonat's --ipv6 modes measured, each a row over IPv6
// beside the kernel's IPv6 forwarding in the same topology.
var ipv6Modes = []string{"routed", "nptv6", "nat66"}

// rowKeys are the rows' keys, in the order they run (-only picks some).
func rowKeys() []string {
	var ks []string
	for _, r := range newRows("") {
		ks = append(ks, r.Key)
	}
	return ks
}

// latencyOnly and pings are set by flags: a quick run of the latency
// column alone, for A/B comparisons.
var (
	latencyOnly bool
	pings       = 1000
)

func run(gonat, outDir string, secs, runs, flows int, only string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it creates network namespaces, veths and TUN devices")
	}
	// Fail now, not after minutes of measuring, if the results cannot be kept.
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	if _, err := os.Stat(gonat); err != nil {
		return fmt.Errorf("gonat binary: %v (build it with `make build`)", err)
	}
	gonat, _ = filepath.Abs(gonat)
	if err := need("ip", "iproute2", "every row"); err != nil {
		return err
	}
	if err := need("iperf3", "iperf3", "the TCP and UDP throughput columns"); err != nil {
		return err
	}
	if err := need("ping", "iputils-ping", "the latency column"); err != nil {
		return err
	}
	natTool, natErr := natTool()

	// Everything this run makes is named with this prefix, and removed
	// on the way out whatever happens, Ctrl-C included.
	b := &bench{prefix: fmt.Sprintf("gb%x-", os.Getpid()), gonat: gonat, secs: secs, runs: runs, flows: flows}
	ctx, cancel := signalContext("bench")
	defer cancel()
	defer b.cleanup()
	// A hard bound on the whole run.
	ctx, cancelAll := context.WithTimeout(ctx, 8*time.Minute)
	defer cancelAll()

	rows := newRows(natTool)
	if natErr != nil {
		rows[1].Name = "kernel NAT (masquerade)"
	}
	start := time.Now()
	load := loadAvg()
	fmt.Printf("bench: %d cores, kernel %s, %s; each iperf3 run -t %d -O 1, TCP best of %d; load average %s\n",
		runtime.NumCPU(), kernel(), iperfVersion(), secs, runs, loadAvg())
	for _, r := range rows {
		if only != "" && !strings.Contains(","+only+",", ","+r.Key+",") {
			r.Skipped = "not selected (-only)"
			continue
		}
		if ctx.Err() != nil {
			r.Skipped = "run stopped: " + ctx.Err().Error()
			continue
		}
		if r.Key == "nat" && natErr != nil {
			r.Skipped = natErr.Error()
			fmt.Printf("== %s: skipped: %s\n", r.Name, r.Skipped)
			continue
		}
		fmt.Printf("== %s\n", r.Name)
		b.measureRow(ctx, r, natTool)
	}
	res := results{
		Date: start.UTC().Format(time.RFC3339), Kernel: kernel(), CPUs: runtime.NumCPU(), Iperf3: iperfVersion(),
		Seconds: secs, Runs: runs, Load: load, Flows: flows, Duration: time.Since(start).Round(time.Second).String(), Rows: rows,
	}
	res.ratios()
	table := res.markdown()
	fmt.Println()
	fmt.Print(table)
	if err := res.write(outDir, table); err != nil {
		return err
	}
	fmt.Printf("\nbench: wrote %s and %s (%s)\n", filepath.Join(outDir, "results.md"), filepath.Join(outDir, "results.json"), res.Duration)
	return nil
}

// need makes sure command cmd exists, installing Debian package pkg with
// apt-get after saying so when it does not.
func need(cmd, pkg, why string) error {
	if _, err := exec.LookPath(cmd); err == nil {
		return nil
	}
	fmt.Fprintf(os.Stderr, "bench: %s not found; installing the Debian package %s with apt-get (needed for %s)\n", cmd, pkg, why)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", pkg}} {
		c := exec.CommandContext(ctx, "apt-get", args...)
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if _, err := exec.LookPath(cmd); err != nil {
		return fmt.Errorf("%s still missing after installing %s", cmd, pkg)
	}
	return nil
}

// natTool picks nft, or iptables when only that is there, and installs
// nftables when neither is.
func natTool() (string, error) {
	if _, err := exec.LookPath("nft"); err == nil {
		return "nft", nil
	}
	if _, err := exec.LookPath("iptables"); err == nil {
		return "iptables", nil
	}
	if err := need("nft", "nftables", "the kernel NAT row"); err != nil {
		return "nft", fmt.Errorf("no nft or iptables, and installing nftables failed: %v", err)
	}
	return "nft", nil
}

// loadAvg is the 1-minute load average: a busy neighbour shows here.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func iperfVersion() string {
	out, _ := exec.Command("iperf3", "--version").Output()
	f := strings.Fields(string(out))
	if len(f) >= 2 {
		return "iperf " + f[1]
	}
	return "iperf3"
}

// signalContext is cancelled on Ctrl-C or SIGTERM, or by its cancel,
// which also stops catching them. what names the run in the message, as
// everything it made is stopped and removed (by the caller's cleanup).
func signalContext(what string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
			fmt.Fprintf(os.Stderr, "\n%s: interrupted; stopping and removing what it made\n", what)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(sig); cancel() }
}
