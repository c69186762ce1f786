package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonat/gonat/lab"
)

// The scale benchmark (-scale N,...) measures a lab of N NATs the way a
// user brings one up: a generated topology file given to `gonat lab up`
// (the binary of -gonat, in the foreground). Each NAT has one host behind
// it; one public server (203.0.113.1) answers pings. For each N it
// reports the time to the `ready` line, the time from Ctrl-C until the
// process has exited and every namespace of the lab is gone, the gonat
// process's peak RSS (VmHWM), its thread count once ready (and the most
// while it goes down), and whether a ping from the last NAT's host
// reaches the server.

// scaleServer is the public server's address.
const scaleServer = "203.0.113.1"

// scaleResult is one N's figures.
type scaleResult struct {
	N int // NATs
	// Up is from starting `gonat lab up` to its ready line; Namespaces
	// and NATs split it: until the first NAT starts (namespaces, veths),
	// then until the last NAT has its readers.
	Up, Namespaces, NATs time.Duration
	Down                 time.Duration
	Exited               time.Duration // of Down, until the process had exited
	RSSMB                float64       // VmHWM at ready, after the ping
	Threads              int           // once ready
	MaxThreads           int           // the most seen while it came up
	DownThreads          int           // the most seen while it went down
	Ping                 bool
	Load                 string // 1-minute load average before the run
}

// scaleTopology is a topology of n NATs n1..nN, each with host hI behind
// it, and the public server.
func scaleTopology(n int) string {
	var b strings.Builder
	b.WriteString("name = \"scale\"\n")
	for i := 1; i <= n; i++ {
		// External addresses from 198.18.0.0/15 (RFC 2544, benchmarking).
		fmt.Fprintf(&b, "\n[[nat]]\nname = \"n%d\"\npreset = \"port-restricted-cone\"\nexternal = \"198.18.%d.%d\"\ninside = \"10.0.0.0/24\"\n",
			i, i/250, i%250+1)
		fmt.Fprintf(&b, "\n[[host]]\nname = \"h%d\"\nnetwork = \"n%d\"\n", i, i)
	}
	fmt.Fprintf(&b, "\n[[host]]\nname = \"server\"\nnetwork = \"public\"\naddress = %q\n", scaleServer)
	return b.String()
}

// runScale measures each of ns in turn, printing a line per N and a
// table at the end. Every lab is named gs<pid>-<N> and removed on the way
// out, whatever happens.
func runScale(gonat string, ns []int) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces and TUN devices")
	}
	if _, err := os.Stat(gonat); err != nil {
		return fmt.Errorf("gonat binary: %v (build it with `make build`)", err)
	}
	gonat, _ = filepath.Abs(gonat)
	if err := need("ping", "iputils-ping", "the ping from the last host"); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gonat-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := signalContext("scale")
	defer cancel()
	fmt.Printf("scale: %d cores, kernel %s; gonat lab up of N NATs, one host each, and a public server\n", runtime.NumCPU(), kernel())
	var res []scaleResult
	for _, n := range ns {
		if ctx.Err() != nil {
			break
		}
		r, err := scaleOnce(ctx, gonat, dir, n)
		if err != nil {
			return fmt.Errorf("%d NATs: %w", n, err)
		}
		fmt.Printf("scale: %d NATs: up %s (namespaces %s, NATs %s), down %s, RSS %.0f MB, threads %d (at most %d coming up, %d going down), ping %s; load %s\n",
			r.N, secs(r.Up), secs(r.Namespaces), secs(r.NATs), secs(r.Down)+" (exited at "+secs(r.Exited)+")", r.RSSMB, r.Threads, r.MaxThreads, r.DownThreads, okFail(r.Ping), r.Load)
		res = append(res, r)
	}
	fmt.Println()
	fmt.Print(scaleTable(res))
	return ctx.Err()
}

func scaleTable(rs []scaleResult) string {
	var b strings.Builder
	b.WriteString("| NATs | up | (namespaces + NATs) | down | peak RSS | threads (most going down) | ping | load |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|:--:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %d | %s | %s + %s | %s | %.0f MB | %d (%d) | %s | %s |\n",
			r.N, secs(r.Up), secs(r.Namespaces), secs(r.NATs), secs(r.Down), r.RSSMB, r.Threads, r.DownThreads, okFail(r.Ping), r.Load)
	}
	return b.String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func okFail(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

// scaleOnce brings up and tears down one lab of n NATs.
func scaleOnce(ctx context.Context, gonat, dir string, n int) (r scaleResult, err error) {
	r = scaleResult{N: n, Load: loadAvg()}
	name := fmt.Sprintf("gs%x-%d", os.Getpid(), n)
	file := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(file, []byte(scaleTopology(n)), 0o644); err != nil {
		return r, err
	}
	cmd := exec.Command(gonat, "lab", "up", file, "--name", name)
	// Its own process group, killed with us: Ctrl-C here must not reach
	// it before the teardown is timed, and nothing may outlive the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	errs, err := cmd.StderrPipe()
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	exited := make(chan struct{})
	defer func() {
		// On failure or Ctrl-C: the process and every namespace of the
		// lab go. Ctrl-C first, as a user would: gonat then closes its
		// NATs together, where a killed process's devices close one by
		// one as it exits (a minute for 1000 NATs); killed if it hangs.
		select {
		case <-exited:
		default:
			syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
			select {
			case <-exited:
			case <-time.After(time.Minute):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		if _, rerr := lab.Remove(name); rerr != nil && err == nil {
			err = rerr
		}
	}()

	// stderr: progress lines, timed as they come; the last few kept for
	// an error message.
	var mu sync.Mutex
	var firstNAT time.Duration
	var tail []string
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		sc := bufio.NewScanner(errs)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			if firstNAT == 0 && strings.Contains(line, ": starting nat ") {
				firstNAT = time.Since(start)
			}
			if tail = append(tail, line); len(tail) > 8 {
				tail = tail[1:]
			}
			mu.Unlock()
		}
	}()
	ready := make(chan struct{}) // closed at the ready line, readyAt set
	var readyAt time.Duration
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready:") && readyAt == 0 {
				readyAt = time.Since(start)
				close(ready)
			}
		}
	}()
	go func() { cmd.Wait(); close(exited) }()
	failed := func(what string) error {
		<-stderrDone
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("%s; its last lines:\n  %s", what, strings.Join(tail, "\n  "))
	}
	pid := cmd.Process.Pid
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(time.Duration(n)*100*time.Millisecond + time.Minute)
	switch err := watch(ctx, ready, exited, timeout, tick.C, pid, &r.MaxThreads); {
	case errors.Is(err, errStopped):
		return r, failed("gonat lab up exited before it was ready")
	case errors.Is(err, errLimit):
		return r, failed("not ready in time")
	case err != nil:
		return r, err
	}
	r.Up = readyAt
	mu.Lock()
	r.Namespaces, r.NATs = firstNAT, r.Up-firstNAT
	mu.Unlock()
	r.Threads, _ = procStatus(pid, "Threads")
	r.MaxThreads = max(r.MaxThreads, r.Threads)

	// The last host reaches the server through its NAT (a few tries: the
	// first packet may race the neighbour entries).
	last := fmt.Sprintf("%s.h%d", name, n)
	for try := 0; try < 3 && !r.Ping && ctx.Err() == nil; try++ {
		err := exec.CommandContext(ctx, "ip", "netns", "exec", last, "ping", "-c", "1", "-W", "2", scaleServer).Run()
		r.Ping = err == nil
	}
	hwm, _ := procStatus(pid, "VmHWM")
	r.RSSMB = float64(hwm) / 1024

	// Down: Ctrl-C, as a user stops a foreground lab, until the process
	// is gone and so is every namespace of the lab.
	down := time.Now()
	syscall.Kill(pid, syscall.SIGINT)
	switch err := watch(ctx, exited, nil, time.After(time.Minute), tick.C, pid, &r.DownThreads); {
	case errors.Is(err, errLimit):
		return r, failed("still running a minute after Ctrl-C")
	case err != nil:
		return r, err
	}
	r.Exited = time.Since(down)
	for {
		left, err := lab.NamespacesOf(name)
		if err != nil {
			return r, err
		}
		if len(left) == 0 {
			break
		}
		if time.Since(down) > time.Minute {
			return r, fmt.Errorf("%d namespaces left a minute after Ctrl-C", len(left))
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Down = time.Since(down)
	return r, nil
}

// Why watch gave up.
var (
	errStopped = errors.New("stopped first")
	errLimit   = errors.New("time limit")
)

// watch waits until done is closed, raising *most to process pid's thread
// count at every tick. It gives up with errStopped if stop (nil: never) is
// closed first, with errLimit at limit, or with ctx's error.
func watch(ctx context.Context, done, stop <-chan struct{}, limit, tick <-chan time.Time, pid int, most *int) error {
	for {
		select {
		case <-done:
			return nil
		case <-stop:
			return errStopped
		case <-limit:
			return errLimit
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
			mostThreads(pid, most)
		}
	}
}

// mostThreads raises *most to process pid's thread count if that is
// higher.
func mostThreads(pid int, most *int) {
	if t, _ := procStatus(pid, "Threads"); t > *most {
		*most = t
	}
}

// procStatus reads one numeric field of /proc/PID/status ("Threads",
// "VmHWM" in kB).
func procStatus(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[0])
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// parseScale reads -scale's list, "100,500,1000".
func parseScale(s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale %s: want NAT counts >= 1, e.g. 100,500,1000", s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}
