package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gonat/gonat/internal/procfd"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/tun"
	"golang.org/x/sys/unix"
)

// gonat run --busy-poll translates as the default reader does, also
// behind a pcap tap (which must pass the polling through), and exits
// clean on SIGTERM (stopNAT checks exit 0 and no device left).
func TestBusyPollCLI(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--busy-poll", "100ms", "--tun-backend", "offload", "--pcap-outside", filepath.Join(t.TempDir(), "out.pcap"))
	m := mapped(t, udp(t, tp.A, ":5000"), stunServer)
	if m.Addr() != ext1 {
		t.Errorf("STUN server saw %s; want the external address %s", m, ext1)
	}
	checkPolled(t, tp.gonat.Process.Pid, false)
	// A second flow, from another host, gets its own mapping.
	if m2 := mapped(t, udp(t, tp.B, ":5000"), stunServer); m2 == m || m2.Addr() != ext1 {
		t.Errorf("second host mapped to %s (first %s); want a distinct endpoint on %s", m2, m, ext1)
	}
	tp.stopNAT()
}

// gonat run --tun-queues 2 translates with a reader per queue, behind a
// pcap tap (which must hand on every queue), alone and with busy-poll.
func TestTunQueuesCLI(t *testing.T) {
	for _, extra := range [][]string{nil, {"--busy-poll", "100ms"}} {
		t.Run(strings.Join(append([]string{"queues"}, extra...), " "), func(t *testing.T) {
			tp := newTopo(t)
			tp.startSTUN()
			tp.startNAT(append([]string{"--tun-queues", "2", "--tun-backend", "offload", "--pcap-outside", filepath.Join(t.TempDir(), "out.pcap")}, extra...)...)
			// Flows from 8 ports of two hosts: between them they use both
			// queues, and each must get its mapping.
			eightMappings(t, tp)
			checkPolled(t, tp.gonat.Process.Pid, extra == nil)
			tp.stopNAT()
		})
	}
}

// gonat lab up --busy-poll: a NAT behind a NAT, both busy-polling (in
// the background child, which must get the flag), still translate: the
// probe through both answers.
func TestLabBusyPoll(t *testing.T) {
	file, name, run := nestedLab(t)

	// With the water backend busy-poll cannot work: the lab must say why,
	// through the background child too, and leave nothing behind (this
	// once panicked in lab.Up's clean-up and left the namespaces).
	for _, detach := range []bool{false, true} {
		args := []string{"lab", "up", file, "--name", name, "--busy-poll", "100ms"}
		if detach {
			args = append(args, "-d")
		}
		cmd := exec.Command(gonatBin, args...)
		cmd.Env = append(os.Environ(), "GONAT_TUN_BACKEND=water")
		out, err := cmd.CombinedOutput()
		if exitCode(err) == 0 || !strings.Contains(string(out), "offload TUN backend") || strings.Contains(string(out), "panic") {
			t.Errorf("lab up -d=%v --busy-poll on water: exit %d\n%s\nwant a failure naming the offload TUN backend", detach, exitCode(err), out)
		}
		if left, _ := exec.Command("ip", "netns", "list").CombinedOutput(); strings.Contains(string(left), name) {
			t.Fatalf("a failed lab up -d=%v left namespaces:\n%s", detach, left)
		}
	}
	if os.Getenv("GONAT_TUN_BACKEND") == "water" {
		return // the rest needs the offload backend
	}
	if out, code := run("lab", "up", "-d", file, "--name", name, "--busy-poll", "100ms"); code != 0 {
		t.Fatalf("lab up: %d\n%s", code, out)
	}
	out, code := run("lab", "exec", "--lab", name, "alice", "--", gonatBin, "probe", "--server", "203.0.113.10", "--rto", "100ms", "--retries", "3")
	if code != 0 || !strings.Contains(out, "198.51.100.1") {
		t.Fatalf("probe through two busy-polling NATs: exit %d\n%s\nwant a mapping on the carrier's 198.51.100.1", code, out)
	}
	if out, code := run("lab", "down", "--lab", name); code != 0 {
		t.Fatalf("lab down: %d\n%s", code, out)
	}
	if out, code := run("lab", "up", file, "--name", name, "--busy-poll", "-5ms"); code != 2 || !strings.Contains(out, "--busy-poll") {
		t.Errorf("lab up --busy-poll -5ms: exit %d\n%s\nwant exit 2 naming --busy-poll", code, out)
	}
}

// gonat lab up --tun-queues 2 gives every NAT of the lab two queues per
// port, through the background child too; on water it is refused.
func TestLabTunQueues(t *testing.T) {
	file, name, run := nestedLab(t)
	cmd := exec.Command(gonatBin, "lab", "up", file, "--name", name, "--tun-queues", "2")
	cmd.Env = append(os.Environ(), "GONAT_TUN_BACKEND=water")
	if out, err := cmd.CombinedOutput(); exitCode(err) != 2 || !strings.Contains(string(out), "--tun-queues") {
		t.Errorf("lab up --tun-queues 2 on water: exit %d\n%s\nwant exit 2 naming --tun-queues", exitCode(err), out)
	}
	if os.Getenv("GONAT_TUN_BACKEND") == "water" {
		return // the rest needs the offload backend
	}
	// The lab's process holds a /dev/net/tun descriptor per queue (one
	// each read per device, which --tun-queues makes the default).
	one := labProbeFDs(t, file, name, run, "--per-cpu=false")
	two := labProbeFDs(t, file, name, run, "--tun-queues", "2")
	if one == 0 || two != 2*one {
		t.Errorf("TUN descriptors: %d with one queue, %d with two; want twice as many", one, two)
	}
}

// eightMappings asks the STUN server from 4 ports of each of hosts A and
// B and wants 8 distinct mappings on the external address.
func eightMappings(t *testing.T, tp *topo) {
	t.Helper()
	seen := map[string]bool{}
	for _, host := range []string{tp.A, tp.B} {
		for port := 5000; port < 5004; port++ {
			m := mapped(t, udp(t, host, fmt.Sprintf(":%d", port)), stunServer)
			if m.Addr() != ext1 || seen[m.String()] {
				t.Errorf("%s:%d mapped to %s: want a distinct endpoint on %s", host, port, m, ext1)
			}
			seen[m.String()] = true
		}
	}
}

// labProbeFDs brings the nested lab up in the background with extra
// flags, probes through both its NATs, counts the /dev/net/tun
// descriptors its process holds, and brings it down.
func labProbeFDs(t *testing.T, file, name string, run func(args ...string) (string, int), extra ...string) int {
	t.Helper()
	if out, code := run(append([]string{"lab", "up", "-d", file, "--name", name}, extra...)...); code != 0 {
		t.Fatalf("lab up %v: %d\n%s", extra, code, out)
	}
	st, err := lab.ReadState(name)
	if err != nil {
		t.Fatal(err)
	}
	fds := tunFDs(t, st.PID)
	out, code := run("lab", "exec", "--lab", name, "alice", "--", gonatBin, "probe", "--server", "203.0.113.10", "--rto", "100ms", "--retries", "3")
	if code != 0 || !strings.Contains(out, "198.51.100.1") {
		t.Fatalf("probe through two NATs (%v): exit %d\n%s\nwant a mapping on the carrier's 198.51.100.1", extra, code, out)
	}
	if out, code := run("lab", "down", "--lab", name); code != 0 {
		t.Fatalf("lab down: %d\n%s", code, out)
	}
	return fds
}

// taskID is the thread ID of /proc/PID/task/TID.
func taskID(dir string) int {
	id, _ := strconv.Atoi(filepath.Base(dir))
	return id
}

// tunFDs counts the /dev/net/tun descriptors process pid holds.
func tunFDs(t *testing.T, pid int) int {
	n, _ := tunFDsPolled(t, pid)
	return n
}

// tunFDsPolled counts the /dev/net/tun descriptors process pid holds,
// and how many of them are in Go's netpoller (procfd.Netpolled).
func tunFDsPolled(t *testing.T, pid int) (all, inEpoll int) {
	t.Helper()
	targets, err := procfd.Targets(pid)
	if err != nil {
		t.Fatal(err)
	}
	watched, err := procfd.Netpolled(pid)
	if err != nil {
		t.Fatal(err)
	}
	for fd, target := range targets {
		if target != "/dev/net/tun" {
			continue
		}
		all++
		if watched[fd] {
			inEpoll++
		}
	}
	return all, inEpoll
}

// checkPolled fails t unless the TUN descriptors of the NAT process are
// (want true) or are not in its netpoller: polling readers keep them out,
// since its edge-triggered epoll wakes an idle thread per packet.
func checkPolled(t *testing.T, pid int, want bool) {
	t.Helper()
	all, in := tunFDsPolled(t, pid)
	switch {
	case all == 0:
		t.Errorf("gonat (pid %d) holds no TUN descriptor", pid)
	case want && in != all:
		t.Errorf("%d of gonat's %d TUN descriptors are in its netpoller; want all (its readers wait there)", in, all)
	case !want && in != 0:
		t.Errorf("%d of gonat's %d TUN descriptors are in its netpoller; want none (its readers poll them)", in, all)
	}
}

// gonat run --per-cpu gives every port a queue per CPU and reads them
// from threads pinned one to each CPU, behind a pcap tap too; it
// translates, and exits clean. It refuses the flags it cannot go with.
func TestPerCPUCLI(t *testing.T) {
	for _, bad := range [][]string{{"--busy-poll", "1ms", "--tun-backend", "offload"}, {"--tun-queues", "2", "--tun-backend", "offload"}, {"--tun-backend", "water"}} {
		out, err := exec.Command(gonatBin, append([]string{"run", "--per-cpu", "--inside", "x=10.0.0.2/24", "--outside", "y", "--external", "198.51.100.1"}, bad...)...).CombinedOutput()
		if exitCode(err) != 2 || !strings.Contains(string(out), "--per-cpu") {
			t.Errorf("--per-cpu %s: exit %d\n%s\nwant exit 2 naming --per-cpu", strings.Join(bad, " "), exitCode(err), out)
		}
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	queues := tun.CPUQueues()

	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--per-cpu", "--tun-backend", "offload", "--pcap-outside", filepath.Join(t.TempDir(), "out.pcap"))
	eightMappings(t, tp)
	// Four ports (outside, three inside), a queue per CPU each.
	if got := tunFDs(t, tp.gonat.Process.Pid); got != 4*queues {
		t.Errorf("TUN descriptors: %d, want %d (4 ports x %d queues)", got, 4*queues, queues)
	}
	checkPolled(t, tp.gonat.Process.Pid, false)
	// A reader thread pinned to each CPU the process may use, in
	// SCHED_BATCH (so that it does not preempt the sender beside it).
	pinned := map[string]bool{}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", tp.gonat.Process.Pid))
	for _, task := range tasks {
		status, err := os.ReadFile(filepath.Join(task, "status"))
		if err != nil {
			continue // a thread that ended
		}
		cpus := ""
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				cpus = strings.TrimSpace(v)
			}
		}
		var policy int
		if attr, err := unix.SchedGetAttr(taskID(task), 0); err == nil {
			policy = int(attr.Policy)
		}
		if policy == unix.SCHED_BATCH {
			pinned[cpus] = true
		}
	}
	for c := range queues {
		if allowed.IsSet(c) && !pinned[strconv.Itoa(c)] {
			t.Errorf("no SCHED_BATCH thread of gonat pinned to CPU %d (such threads' CPU lists: %v)", c, pinned)
		}
	}
	tp.stopNAT()
}

// gonat lab up -d: the background child reads per CPU by default (a
// queue per CPU on every port, where --per-cpu=false has one), gets
// either flag as given, and a probe through two NATs answers each time.
func TestLabPerCPU(t *testing.T) {
	if os.Getenv("GONAT_TUN_BACKEND") == "water" {
		t.Skip("--per-cpu needs the offload backend; TestPerCPUCLI checks the refusal and TestDefaultReaders the default on water")
	}
	if tun.CPUQueues() == 1 {
		t.Skip("one CPU: per-CPU and per-device reading both have one queue per port")
	}
	file, name, run := nestedLab(t)
	perDevice := labProbeFDs(t, file, name, run, "--per-cpu=false")
	plain := labProbeFDs(t, file, name, run)
	perCPU := labProbeFDs(t, file, name, run, "--per-cpu")
	if q := tun.CPUQueues(); perDevice == 0 || plain != q*perDevice || perCPU != plain {
		t.Errorf("TUN descriptors: %d with --per-cpu=false, %d by default, %d with --per-cpu; want the last two %d times the first (a queue per CPU)",
			perDevice, plain, perCPU, q)
	}
}

// Left alone, gonat run reads per CPU where the offload backend works (a
// queue per CPU on every port, kept out of the netpoller), per device on
// water; --per-cpu=false reads per device (one queue, in the
// netpoller). The ready line says which.
func TestDefaultReaders(t *testing.T) {
	water := os.Getenv("GONAT_TUN_BACKEND") == "water"
	queues := tun.CPUQueues()
	for _, c := range []struct {
		name   string
		extra  []string
		perCPU bool
	}{
		{"default", nil, !water},
		{"per-cpu=false", []string{"--per-cpu=false"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := newTopo(t)
			tp.startSTUN()
			tp.startNAT(c.extra...)
			eightMappings(t, tp)
			fds, desc := 4, "; readers per-device;"
			if c.perCPU {
				fds, desc = 4*queues, fmt.Sprintf("; readers per-cpu (%d queues);", queues)
			}
			if got := tunFDs(t, tp.gonat.Process.Pid); got != fds {
				t.Errorf("TUN descriptors: %d, want %d (4 ports)", got, fds)
			}
			checkPolled(t, tp.gonat.Process.Pid, !c.perCPU)
			if out := tp.stdout.String(); !strings.Contains(out, desc) {
				t.Errorf("ready line does not say %q:\n%s", desc, out)
			}
			tp.stopNAT()
		})
	}
}
