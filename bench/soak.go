package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonat/gonat/ns"
)

// The soak (-soak DURATION): one `gonat run` between a client and a
// server namespace, with churn at a bounded rate for the whole duration:
//
//	short UDP flows  a new socket (a new mapping) per flow: send, await the
//	                 echo, close; soakOpts.udpRate per second
//	short TCP flows  connect, one line and its echo, close; tcpRate per second
//	long flows       soakLongUDP UDP sockets and soakLongTCP TCP connections
//	                 open from start to end, one echo a second each
//
// Every soakOpts.every it prints gonat's resident set, goroutines (when
// the metrics export them), threads, open fds and live mappings, then a
// table and a verdict. Mappings expire after soakTimeout (the UDP and TCP
// transitory timeouts are set to it), so the table churns all the way
// through instead of only growing.
//
// Flat: after the warm-up (the first half of the samples), the largest
// RSS is at most 10% above the first half's largest, and the open fds at
// most 10% (plus 4) above theirs. The live mappings level off once the
// first ones expire (soakTimeout), but the resident set went on rising
// for about four minutes in the runs measured (docs/performance.md), so a
// run shorter than soakMinVerdict gets no verdict.

const (
	soakLongUDP = 8
	soakLongTCP = 4
	soakTimeout = 60 * time.Second
	soakPort    = 7 // the echo port on the server

	soakMinVerdict = 6 * time.Minute
)

type soakOpts struct {
	d, every         time.Duration
	udpRate, tcpRate int
}

// sample is one line of the soak.
type sample struct {
	At                     time.Duration
	RSSKB                  int
	Goroutines             int // -1: not exported
	Threads, FDs           int
	Mappings               int
	Created, Expired       int
	Short, ShortFailed     int64
	LongEchoes, LongMissed int64
}

func runSoak(gonat string, o soakOpts) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it creates network namespaces and TUN devices")
	}
	if _, err := os.Stat(gonat); err != nil {
		return fmt.Errorf("gonat binary: %v (build it with `make build`)", err)
	}
	gonat, _ = filepath.Abs(gonat)
	b := &bench{prefix: fmt.Sprintf("gs%x-", os.Getpid()), gonat: gonat}
	ctx, cancel := signalContext("soak")
	defer cancel()
	defer b.cleanup()

	port, err := freePort()
	if err != nil {
		return err
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", port)
	t, err := b.gonatTopo(ctx, "auto", "--metrics", metrics,
		"--udp-timeout", soakTimeout.String(), "--tcp-transitory-timeout", soakTimeout.String())
	if err != nil {
		return err
	}
	defer t.teardown()
	pid := t.gonat.Process.Pid

	var st soakStats
	if err := serveEcho(ctx, t.server, &st); err != nil {
		return err
	}
	fmt.Printf("soak: %s, a line every %s; %d short UDP and %d short TCP flows/s, %d+%d long flows; mappings expire after %s idle\n",
		o.d, o.every, o.udpRate, o.tcpRate, soakLongUDP, soakLongTCP, soakTimeout)
	wctx, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	churn(wctx, &wg, t.client, o, &st)

	start := time.Now()
	var samples []sample
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	end := time.After(o.d)
loop:
	for {
		select {
		case <-tick.C:
		case <-end:
			break loop
		case <-ctx.Done():
			break loop
		}
		s, err := sampleGonat(pid, metrics)
		if err != nil {
			stopWork()
			wg.Wait()
			return err
		}
		s.At = time.Since(start).Round(time.Second)
		s.Short, s.ShortFailed = st.short.Load(), st.shortFailed.Load()
		s.LongEchoes, s.LongMissed = st.longEchoes.Load(), st.longMissed.Load()
		samples = append(samples, s)
		fmt.Printf("soak: %s rss %.1f MB goroutines %s threads %d fds %d mappings %d (created %d expired %d) short flows %d (%d failed) long echoes %d (%d missed)\n",
			s.At, float64(s.RSSKB)/1024, goroutines(s.Goroutines), s.Threads, s.FDs, s.Mappings, s.Created, s.Expired,
			s.Short, s.ShortFailed, s.LongEchoes, s.LongMissed)
	}
	stopWork()
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Println()
	fmt.Print(soakTable(samples))
	if o.d < soakMinVerdict {
		fmt.Printf("soak: no verdict: a run under %s ends before the warm-up does\n", soakMinVerdict)
		return nil
	}
	ok, why := flat(samples)
	if !ok {
		return fmt.Errorf("soak: NOT flat: %s", why)
	}
	fmt.Println("soak: flat:", why)
	return nil
}

func goroutines(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// flat judges the samples (see the package comment of the soak).
func flat(s []sample) (bool, string) {
	if len(s) < 2 {
		return false, fmt.Sprintf("%d samples: run longer than two intervals", len(s))
	}
	h := len(s) / 2
	maxOf := func(ss []sample, f func(sample) int) int {
		m := 0
		for _, x := range ss {
			m = max(m, f(x))
		}
		return m
	}
	rss := func(x sample) int { return x.RSSKB }
	fds := func(x sample) int { return x.FDs }
	r1, r2 := maxOf(s[:h], rss), maxOf(s[h:], rss)
	f1, f2 := maxOf(s[:h], fds), maxOf(s[h:], fds)
	why := fmt.Sprintf("max RSS %.1f MB in the first half, %.1f MB in the second (limit +10%%); max fds %d, then %d",
		float64(r1)/1024, float64(r2)/1024, f1, f2)
	return r2 <= r1+r1/10 && f2 <= f1+f1/10+4, why
}

// soakTable is the samples as a Markdown table.
func soakTable(s []sample) string {
	var b strings.Builder
	b.WriteString("| time | RSS MB | goroutines | threads | fds | live mappings | created | expired | short flows (failed) | long echoes (missed) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range s {
		fmt.Fprintf(&b, "| %s | %.1f | %s | %d | %d | %d | %d | %d | %d (%d) | %d (%d) |\n",
			x.At, float64(x.RSSKB)/1024, goroutines(x.Goroutines), x.Threads, x.FDs, x.Mappings, x.Created, x.Expired,
			x.Short, x.ShortFailed, x.LongEchoes, x.LongMissed)
	}
	return b.String()
}

type soakStats struct {
	short, shortFailed     atomic.Int64
	longEchoes, longMissed atomic.Int64
}

// serveEcho answers UDP and TCP on the server's echo port until ctx ends.
func serveEcho(ctx context.Context, server string, st *soakStats) error {
	addr := net.JoinHostPort(serverAddr, strconv.Itoa(soakPort))
	pc, err := ns.ListenPacket(server)("udp4", addr)
	if err != nil {
		return err
	}
	ln, err := ns.Listen(server, "tcp4", addr)
	if err != nil {
		pc.Close()
		return err
	}
	go func() { <-ctx.Done(); pc.Close(); ln.Close() }()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				go func() { <-ctx.Done(); c.Close() }()
				io.Copy(c, c)
			}()
		}
	}()
	return nil
}

// churn starts the flows of the soak in the client namespace; they stop
// when ctx ends, wg counting them.
func churn(ctx context.Context, wg *sync.WaitGroup, client string, o soakOpts, st *soakStats) {
	addr := net.JoinHostPort(serverAddr, strconv.Itoa(soakPort))
	// dial makes a connection from the client namespace.
	dial := func(network string) (net.Conn, error) {
		return ns.DialContext(ctx, client, &net.Dialer{Timeout: 2 * time.Second}, network, addr)
	}
	// echo sends one line on c and waits for it to come back.
	echo := func(c net.Conn, r *bufio.Reader, line string) bool {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte(line)); err != nil {
			return false
		}
		if r == nil {
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			return err == nil && string(buf[:n]) == line
		}
		got, err := r.ReadString('\n')
		return err == nil && got == line
	}
	// every runs fn perSecond times a second, from workers goroutines.
	every := func(perSecond, workers int, fn func()) {
		if perSecond <= 0 {
			return
		}
		workers = max(1, min(workers, perSecond))
		gap := time.Second * time.Duration(workers) / time.Duration(perSecond)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(gap)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						fn()
					}
				}
			}()
		}
	}
	short := func(network string) func() {
		return func() {
			ok := false
			if c, err := dial(network); err == nil {
				var r *bufio.Reader
				if network == "tcp4" {
					r = bufio.NewReader(c)
				}
				ok = echo(c, r, "short\n")
				c.Close()
			}
			if ctx.Err() != nil {
				return
			}
			st.short.Add(1)
			if !ok {
				st.shortFailed.Add(1)
			}
		}
	}
	every(o.udpRate, 4, short("udp4"))
	every(o.tcpRate, 2, short("tcp4"))
	for i := range soakLongUDP + soakLongTCP {
		network := "udp4"
		if i >= soakLongUDP {
			network = "tcp4"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(network)
			if err != nil {
				st.longMissed.Add(1)
				return
			}
			defer c.Close()
			var r *bufio.Reader
			if network == "tcp4" {
				r = bufio.NewReader(c)
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if echo(c, r, fmt.Sprintf("long %d\n", seq)) {
					st.longEchoes.Add(1)
				} else if ctx.Err() == nil {
					st.longMissed.Add(1)
					if network == "udp4" {
						// A late echo would answer the next line.
						c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
						c.Read(make([]byte, 64))
					} else {
						return // the stream is out of step; the miss is counted
					}
				}
			}
		}()
	}
}

// sampleGonat reads one sample of process pid and its metrics endpoint.
func sampleGonat(pid int, metrics string) (sample, error) {
	s := sample{Goroutines: -1}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("gonat (pid %d) is gone: %v", pid, err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			s.RSSKB, _ = strconv.Atoi(f[1])
		case "Threads:":
			s.Threads, _ = strconv.Atoi(f[1])
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(fds)
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + metrics + "/metrics")
	if err != nil {
		return s, fmt.Errorf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := metricLine(sc.Text())
		if !ok {
			continue
		}
		switch name {
		case "gonat_mappings":
			s.Mappings += v
		case "gonat_mappings_created_total":
			s.Created += v
		case "gonat_mappings_expired_total":
			s.Expired += v
		case "go_goroutines":
			s.Goroutines = v
		}
	}
	return s, sc.Err()
}

// metricLine splits a Prometheus text line into its metric name (labels
// dropped) and integer value.
func metricLine(line string) (string, int, bool) {
	if line == "" || line[0] == '#' {
		return "", 0, false
	}
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return "", 0, false
	}
	name := line[:sp]
	if i := strings.IndexByte(name, '{'); i >= 0 {
		name = name[:i]
	}
	return name, int(v), true
}

// freePort is a TCP port on loopback nothing listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
