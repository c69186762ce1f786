package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonat/gonat/ns"
)

// row is one way of joining client and server, and what it measured.
// Zero means not measured (see Errors).
type row struct {
	Key     string `json:"key"`
	Name    string `json:"name"`
	Skipped string `json:"skipped,omitempty"`
	// IPv6 is the row's --ipv6 mode ("kernel" for the kernel's IPv6
	// forwarding): the row measures IPv6 between client and server, and
	// is compared with the kernel IPv6 row. Empty: IPv4, compared with
	// the kernel NAT.
	IPv6  string   `json:"ipv6,omitempty"`
	Flags []string `json:"-"` // gonat flags beyond the backend's

	TCP1Gbps float64 `json:"tcp_1_stream_gbit_s"`
	TCP4Gbps float64 `json:"tcp_4_streams_gbit_s"`
	// The share of the machine's CPU time that was busy during the best
	// TCP runs (cpuBusy): near 100 a path is bound by CPU, and its
	// throughput is its cost per bit.
	TCP1Busy    float64 `json:"tcp_1_stream_cpu_busy_percent,omitempty"`
	TCP4Busy    float64 `json:"tcp_4_streams_cpu_busy_percent,omitempty"`
	UDPkpps     float64 `json:"udp_64b_received_kpps"` // at full offered load
	UDPOffered  float64 `json:"udp_64b_offered_kpps"`
	UDPLoss     float64 `json:"udp_64b_max_loss_percent"`
	Loss40k     float64 `json:"udp_64b_loss_at_40kpps_percent"`
	UDPZeroLoss float64 `json:"udp_64b_kpps_at_low_loss"` // highest rate found with loss <= lowLoss
	RTTp50us    float64 `json:"rtt_p50_us"`
	RTTp99us    float64 `json:"rtt_p99_us"`
	MapsPerSec  float64 `json:"new_mappings_per_s"`
	MapsFailed  int     `json:"new_mappings_failed"`
	RSSMB       float64 `json:"gonat_peak_rss_mb,omitempty"`

	Ratio  map[string]float64 `json:"ratio_to_kernel_nat,omitempty"`
	Added  map[string]float64 `json:"added_latency_us_vs_kernel_nat,omitempty"`
	Errors map[string]string  `json:"errors,omitempty"`
}

func (r *row) fail(what string, err error) {
	if r.Errors == nil {
		r.Errors = map[string]string{}
	}
	r.Errors[what] = err.Error()
	fmt.Printf("   %s: %v\n", what, err)
}

func (b *bench) measureRow(ctx context.Context, r *row, natTool string) {
	var t *topo
	var err error
	switch {
	case r.Key == "route":
		t, err = b.kernelTopo(ctx, false, false, natTool)
	case r.Key == "nat":
		t, err = b.kernelTopo(ctx, true, false, natTool)
	case r.IPv6 == "kernel":
		t, err = b.kernelTopo(ctx, false, true, natTool)
	case r.IPv6 != "":
		t, err = b.gonatTopo6(ctx, r.IPv6)
	case r.Key == "water":
		t, err = b.gonatTopo(ctx, "water", r.Flags...)
	default:
		t, err = b.gonatTopo(ctx, "offload", r.Flags...)
	}
	if err != nil {
		r.Skipped = "setup failed: " + err.Error()
		fmt.Printf("   %s\n", r.Skipped)
		return
	}
	defer t.teardown()

	if latencyOnly {
		b.measureLatency(ctx, r, t)
		return
	}
	srv, _, err := b.start("ip", "netns", "exec", t.server, "iperf3", "-s", "-B", t.serverAddr)
	if err != nil {
		r.Skipped = "iperf3 server: " + err.Error()
		return
	}
	defer stop(srv)
	if err := waitListen(ctx, t.server, ":5201"); err != nil {
		r.Skipped = "iperf3 server: " + err.Error()
		return
	}
	secs := strconv.Itoa(b.secs)
	iperf := func(args ...string) (*iperfEnd, error) {
		return b.iperf(ctx, t, append([]string{"-t", secs, "-O", "1"}, args...)...)
	}
	// TCP: the best of b.runs runs, every row alike, so a neighbour's
	// burst on a shared machine costs less.
	// The CPU is sampled inside the measured seconds: from just after
	// the omitted first one to just before the end.
	window := time.Duration(b.secs)*time.Second - 400*time.Millisecond
	best := func(what string, args ...string) (gbps, busy float64) {
		for range b.runs {
			cpu := cpuBusy(ctx, 1200*time.Millisecond, window)
			e, err := iperf(args...)
			if err != nil {
				r.fail(what, err)
				continue
			}
			if v := e.SumReceived.BitsPerSecond / 1e9; v > gbps {
				gbps, busy = v, <-cpu
			}
		}
		if gbps > 0 {
			delete(r.Errors, what)
		}
		return gbps, busy
	}
	r.TCP1Gbps, r.TCP1Busy = best("tcp1")
	fmt.Printf("   TCP 1 stream   %6.2f Gbit/s, CPU %.0f%% busy\n", r.TCP1Gbps, r.TCP1Busy)
	r.TCP4Gbps, r.TCP4Busy = best("tcp4", "-P", "4")
	fmt.Printf("   TCP 4 streams  %6.2f Gbit/s, CPU %.0f%% busy\n", r.TCP4Gbps, r.TCP4Busy)
	if e, err := iperf("-u", "-l", "64", "-b", "0"); err != nil {
		r.fail("udp-max", err)
	} else if s := e.SumReceived; s.LostPackets >= s.Packets {
		// iperf3 counts what is still in flight at its end as lost: a
		// delay queue can hold more than was received after it.
		r.fail("udp-max", fmt.Errorf("iperf3 -u -b 0: %d of %d datagrams counted lost, more than the path can have lost", s.LostPackets, s.Packets))
	} else {
		r.UDPkpps = float64(s.Packets-s.LostPackets) / s.Seconds / 1e3
		r.UDPOffered = float64(e.SumSent.Packets) / e.SumSent.Seconds / 1e3
		r.UDPLoss = s.LostPercent
		fmt.Printf("   UDP 64 B       %6.1f kpps received of %.1f kpps offered (%.1f%% lost)\n", r.UDPkpps, r.UDPOffered, r.UDPLoss)
	}
	// iperf3 counts payload bits: 40 000 datagrams of 64 bytes a second.
	if e, err := iperf("-u", "-l", "64", "-b", strconv.Itoa(40000*64*8)); err != nil {
		r.fail("udp-40k", err)
	} else {
		r.Loss40k = e.SumReceived.LostPercent
		fmt.Printf("   UDP @40 kpps   %6.2f%% lost\n", r.Loss40k)
	}
	if r.UDPkpps > 0 {
		r.UDPZeroLoss = b.lossSearch(ctx, t, r.Loss40k)
		fmt.Printf("   UDP 64 B       %6.1f kpps with <= %.1f%% loss (search)\n", r.UDPZeroLoss, lowLoss)
	}
	stop(srv)
	b.measureLatency(ctx, r, t)
	// Mappings are IPv4's: routed IPv6 makes none, NPTv6 is stateless.
	if r.IPv6 == "" {
		if rate, failed, err := mappings(ctx, t.client, t.server, b.flows); err != nil {
			r.fail("mappings", err)
		} else {
			r.MapsPerSec, r.MapsFailed = rate, failed
			fmt.Printf("   new mappings   %6.0f /s (%d flows unanswered)\n", rate, failed)
		}
	}
	if t.gonat != nil {
		if kb, err := peakRSS(t.gonat.Process.Pid); err != nil {
			r.fail("rss", err)
		} else {
			r.RSSMB = float64(kb) / 1024
			fmt.Printf("   gonat peak RSS %6.1f MB\n", r.RSSMB)
		}
	}
}

// measureLatency fills the ping RTT column of r (the only one a
// -latency-only run fills).
func (b *bench) measureLatency(ctx context.Context, r *row, t *topo) {
	if p50, p99, err := latency(ctx, t, pings); err != nil {
		r.fail("rtt", err)
	} else {
		r.RTTp50us, r.RTTp99us = p50, p99
		fmt.Printf("   ping RTT       p50 %.0f µs, p99 %.0f µs\n", p50, p99)
	}
}

// waitListen polls until something listens on TCP port addr in namespace n.
func waitListen(ctx context.Context, n, port string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := sh(ctx, 5*time.Second, "ip", "netns", "exec", n, "ss", "-Hltn")
		if strings.Contains(out, port) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on %s after 10 s", port)
}

type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Packets       int64   `json:"packets"`
	LostPackets   int64   `json:"lost_packets"`
	LostPercent   float64 `json:"lost_percent"`
}

type iperfEnd struct {
	SumSent     iperfSum `json:"sum_sent"`
	SumReceived iperfSum `json:"sum_received"`
}

// iperf runs one bounded iperf3 client in t's client namespace and
// parses its JSON report.
func (b *bench) iperf(ctx context.Context, t *topo, args ...string) (*iperfEnd, error) {
	args = append([]string{"netns", "exec", t.client, "iperf3", "-c", t.serverAddr, "-J"}, args...)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.secs+15)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).Output()
	var rep struct {
		End   iperfEnd `json:"end"`
		Error string   `json:"error"`
	}
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		if err == nil {
			err = jerr
		}
		return nil, fmt.Errorf("iperf3 %s: %v", strings.Join(args[5:], " "), err)
	}
	if rep.Error != "" {
		return nil, fmt.Errorf("iperf3 %s: %s", strings.Join(args[5:], " "), rep.Error)
	}
	if rep.End.SumReceived.Seconds == 0 {
		return nil, fmt.Errorf("iperf3 %s: no receiver report", strings.Join(args[5:], " "))
	}
	return &rep.End, nil
}

// latency is ping(8) under light load: count echo requests 2 ms apart
// from the client to the server, whose kernel answers; the percentiles
// of the round trips in microseconds. The server end has no process to
// wake, so what a path adds shows undiluted.
func latency(ctx context.Context, t *topo, count int) (p50, p99 float64, err error) {
	out, err := sh(ctx, time.Duration(count)*3*time.Millisecond+10*time.Second, "ip", "netns", "exec", t.client,
		"ping", "-n", "-i", "0.002", "-W", "1", "-c", strconv.Itoa(count), t.serverAddr)
	if err != nil {
		return 0, 0, err
	}
	var rtts []float64
	for _, line := range strings.Split(out, "\n") {
		_, t, ok := strings.Cut(line, "time=")
		if !ok {
			continue
		}
		ms, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(t), " ms"), 64)
		if err == nil {
			rtts = append(rtts, ms*1000)
		}
	}
	if len(rtts) < count/2 {
		return 0, 0, fmt.Errorf("only %d of %d echo replies", len(rtts), count)
	}
	slices.Sort(rtts)
	return rtts[len(rtts)*50/100], rtts[len(rtts)*99/100], nil
}

// mappings opens many short UDP flows, each from a port of its own (a
// new mapping for any NAT): bind, send one datagram, wait for the echo,
// close. Flows per second over the run (at most flows, at most 5 s).
func mappings(ctx context.Context, client, server string, flows int) (rate float64, failed int, err error) {
	echo, err := ns.ListenPacket(server)("udp4", serverAddr+":8")
	if err != nil {
		return 0, 0, err
	}
	defer echo.Close()
	for range 2 {
		go func() {
			buf := make([]byte, 64)
			for {
				n, from, err := echo.ReadFrom(buf)
				if err != nil {
					return
				}
				echo.WriteTo(buf[:n], from)
			}
		}()
	}
	const workers, firstPort = 16, 10000
	flows = min(flows, 60000-firstPort)
	var next, done, lost atomic.Int64
	deadline := time.Now().Add(5 * time.Second)
	srv := unix.SockaddrInet4{Port: 8, Addr: netip.MustParseAddr(serverAddr).As4()}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A thread in the client namespace, so the plain socket
			// calls below make sockets there.
			errs <- ns.Do(client, func() error {
				buf := make([]byte, 64)
				tv := unix.Timeval{Usec: 500000}
				for ctx.Err() == nil && time.Now().Before(deadline) {
					i := next.Add(1) - 1
					if i >= int64(flows) {
						return nil
					}
					fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
					if err != nil {
						return err
					}
					unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
					err = unix.Bind(fd, &unix.SockaddrInet4{Port: firstPort + int(i), Addr: netip.MustParseAddr(clientAddr).As4()})
					if err == nil {
						err = unix.Sendto(fd, []byte("m"), 0, &srv)
					}
					if err == nil {
						_, _, err = unix.Recvfrom(fd, buf, 0)
					}
					unix.Close(fd)
					if err != nil {
						lost.Add(1)
					} else {
						done.Add(1)
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	close(errs)
	for e := range errs {
		if e != nil {
			return 0, 0, e
		}
	}
	if done.Load() == 0 {
		return 0, int(lost.Load()), fmt.Errorf("no flow was answered (%d tried)", lost.Load())
	}
	return float64(done.Load()) / elapsed, int(lost.Load()), nil
}

// cpuBusy measures the machine's CPU time (all CPUs, any process: the
// path's own work and the kernel's on its behalf, iperf3's too) from
// after to after+span from now, and sends the percentage that was busy
// (0 when it could not be read, or ctx ended first). Stolen time (the
// hypervisor's) counts as neither busy nor idle.
func cpuBusy(ctx context.Context, after, span time.Duration) <-chan float64 {
	ch := make(chan float64, 1)
	go func() {
		sample := func(d time.Duration) (busy, all uint64, ok bool) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return 0, 0, false
			case <-t.C:
			}
			b, err := os.ReadFile("/proc/stat")
			if err != nil {
				return 0, 0, false
			}
			busy, all, err = parseCPUStat(string(b))
			return busy, all, err == nil
		}
		b0, a0, ok0 := sample(after)
		b1, a1, ok1 := sample(span)
		if !ok0 || !ok1 || a1 <= a0 {
			ch <- 0
			return
		}
		ch <- 100 * float64(b1-b0) / float64(a1-a0)
	}()
	return ch
}

// parseCPUStat reads the "cpu" line of /proc/stat: busy is user, nice,
// system, irq and softirq time; all adds idle and iowait.
func parseCPUStat(stat string) (busy, all uint64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: no cpu line in %q", line)
	}
	var v [7]uint64 // user nice system idle iowait irq softirq
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: cpu field %d: %v", i+1, err)
		}
	}
	busy = v[0] + v[1] + v[2] + v[5] + v[6]
	return busy, busy + v[3] + v[4], nil
}

// peakRSS is a process's peak resident set (VmHWM) in KB.
func peakRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// lowLoss is the loss the rate search accepts as none: a few datagrams
// in a thousand go astray on a busy 2-core machine whatever the path.
const lowLoss = 0.5

// lossSearch bisects the offered rate of 64-byte datagrams (2 s runs)
// for the highest with at most lowLoss percent lost, between 0 and 250
// kpps, starting from the 40 kpps run already made. A 40 kpps run that
// lost more is not tried again: the search then looks below it.
func (b *bench) lossSearch(ctx context.Context, t *topo, loss40k float64) float64 {
	lo, hi := 0.0, 250.0
	if loss40k <= lowLoss {
		lo = 40
	} else {
		hi = 40
	}
	// A rate fails only if two runs at it lose too much: one bad run on
	// a shared machine would otherwise halve the answer.
	ok := func(kpps float64) bool {
		for range 2 {
			e, err := b.iperf(ctx, t, "-t", "2", "-u", "-l", "64", "-b", strconv.Itoa(int(kpps*1000)*64*8))
			if err == nil && e.SumReceived.LostPercent <= lowLoss {
				return true
			}
		}
		return false
	}
	for range 5 {
		mid := (lo + hi) / 2
		if ok(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}
