// End-to-end tests: real network namespaces, the real gonat binary, real
// TUN devices and real kernel sockets. They need root; under CI (CI=true)
// a missing privilege fails the run instead of skipping it.
//
// Every test's names (namespaces, labs, devices) are its own, so tests
// could run side by side; a few long ones that mostly wait on timeouts
// and whose checks have wide margins call t.Parallel, so that the suite
// runs them two at a time (GOMAXPROCS on a 2-core machine) after the
// others. Timing-sensitive tests (delay, rate, rate limits) stay alone.
package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/ns"
)

var (
	gonatBin string
	// runPrefix is unique per test process, so two runs on one host
	// never collide; every namespace name starts with it.
	runPrefix string
	nsCounter atomic.Int64
)

// Addresses of the standard topology (docs/nat-requirements.md §0).
var (
	hostA   = netip.MustParseAddr("10.0.0.2")
	hostB   = netip.MustParseAddr("10.0.0.3")
	hostC   = netip.MustParseAddr("10.0.0.4")
	gateway = netip.MustParseAddr("10.0.0.1")
	ext1    = netip.MustParseAddr("198.51.100.1")
	srv1    = netip.MustParseAddr("203.0.113.1") // A1
	srv2    = netip.MustParseAddr("203.0.113.2") // A2
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	runPrefix = fmt.Sprintf("gt%x-", os.Getpid())
	// Labs from labtest carry the run's prefix too: the leak check below
	// sees them.
	os.Setenv("GONAT_LABTEST_PREFIX", runPrefix+"l")
	// A race-built gonat sleeps a second at exit by default, so that
	// goroutines still running can report races; every gonat command a
	// test runs would pay it. Races found before exit are still reported
	// and still fail the command.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if why := cannotRun(); why != "" {
		if privtest.CI() {
			fmt.Fprintf(os.Stderr, "FAIL: end-to-end tests cannot run under CI: %s\n", why)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIP: end-to-end tests need root and /dev/net/tun: %s\n", why)
		return 0
	}
	dir, err := os.MkdirTemp("", "gonat-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	gonatBin = filepath.Join(dir, "gonat")
	args := []string{"build", "-o", gonatBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/gonat")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build gonat: %v\n", err)
		return 1
	}
	code := m.Run()
	// Whatever happened, nothing of ours may be left behind.
	names, _ := ns.List()
	for _, n := range names {
		if strings.HasPrefix(n, runPrefix) {
			fmt.Fprintf(os.Stderr, "FAIL: namespace %s leaked; removing it\n", n)
			ns.Delete(n)
			code = 1
		}
	}
	return code
}

func cannotRun() string {
	if why := privtest.Missing(); why != "" {
		return why
	}
	if _, err := privtest.LookTool("ip"); err != nil {
		return err.Error()
	}
	return ""
}

// topo is the standard test network: namespaces for hosts A, B and C
// (each its own inside port of one NAT) and a public namespace "wan"
// answering on 203.0.113.1 and .2.
type topo struct {
	t            *testing.T
	Name         string // the gonat run --name, for gonat table --lab
	A, B, C, WAN string
	gonat        *exec.Cmd
	stdout       *lineBuffer
	stderr       *lineBuffer
	stopped      bool
	waitErr      error
	waitDone     chan struct{}
}

// newTopo creates the namespaces (removed in t.Cleanup, whatever happens).
func newTopo(t *testing.T) *topo {
	t.Helper()
	id := nsCounter.Add(1)
	p := fmt.Sprintf("%s%d", runPrefix, id)
	tp := &topo{t: t, Name: p, A: p + "a", B: p + "b", C: p + "c", WAN: p + "w"}
	for _, n := range []string{tp.A, tp.B, tp.C, tp.WAN} {
		if err := ns.Create(n); err != nil {
			t.Fatalf("create namespace: %v", err)
		}
		n := n
		t.Cleanup(func() {
			if err := ns.Delete(n); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	if err := ns.AddLocalAddrs(tp.WAN, netip.PrefixFrom(srv1, 32), netip.PrefixFrom(srv2, 32)); err != nil {
		t.Fatalf("wan addresses: %v", err)
	}
	return tp
}

// startNAT runs `gonat run` with A, B and C inside and the given extra
// flags, and waits for its ready line.
func (tp *topo) startNAT(extra ...string) {
	t := tp.t
	t.Helper()
	args := []string{"run",
		"--inside", tp.A + "=" + hostA.String() + "/24",
		"--inside", tp.B + "=" + hostB.String() + "/24",
		"--inside", tp.C + "=" + hostC.String() + "/24",
		"--outside", tp.WAN, "--external", ext1.String(), "-v", "--name", tp.Name}
	args = append(args, extra...)
	cmd := exec.Command(gonatBin, args...)
	tp.stdout, tp.stderr = newLineBuffer(), newLineBuffer()
	cmd.Stdout, cmd.Stderr = tp.stdout, tp.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Pdeathsig follows the thread that started the child, not the
	// process: a thread Go ends (a goroutine that exits locked to it, as
	// a test's pinned sender does) would take gonat with it. This
	// goroutine keeps its thread until gonat has exited.
	started := make(chan error, 1)
	tp.waitDone = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		tp.waitErr = cmd.Wait()
		close(tp.waitDone)
	}()
	if err := <-started; err != nil {
		t.Fatalf("start gonat: %v", err)
	}
	tp.gonat = cmd
	// Registered after the namespaces: runs before their removal.
	t.Cleanup(func() { tp.stopNAT() })
	deadline := time.After(15 * time.Second)
	for !tp.stdout.contains("ready") {
		select {
		case <-tp.waitDone:
			t.Fatalf("gonat exited before ready: %v\nstderr: %s", tp.waitErr, tp.stderr.String())
		case <-deadline:
			t.Fatalf("gonat not ready after 15s\nstdout: %s\nstderr: %s", tp.stdout.String(), tp.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stopNAT sends SIGTERM and checks gonat exits 0 and removed its devices.
func (tp *topo) stopNAT() {
	t := tp.t
	if tp.gonat == nil || tp.stopped {
		return
	}
	tp.stopped = true
	tp.gonat.Process.Signal(syscall.SIGTERM)
	select {
	case <-tp.waitDone:
	case <-time.After(10 * time.Second):
		tp.gonat.Process.Kill()
		<-tp.waitDone
		t.Errorf("gonat did not exit within 10s of SIGTERM")
		return
	}
	if tp.waitErr != nil {
		t.Errorf("gonat exit: %v\nstderr: %s", tp.waitErr, tp.stderr.String())
	}
	if t.Failed() {
		t.Logf("gonat stdout:\n%s\ngonat stderr:\n%s", tp.stdout.String(), tp.stderr.String())
	}
	for _, n := range []string{tp.A, tp.B, tp.C, tp.WAN} {
		out, _ := exec.Command("ip", "-n", n, "-o", "link", "show").CombinedOutput()
		if strings.Contains(string(out), "gnat") {
			t.Errorf("namespace %s still has a gonat device after exit:\n%s", n, out)
		}
	}
}

// udp opens a UDP socket in namespace n bound to laddr (":0" for any).
func udp(t *testing.T, n, laddr string) *net.UDPConn {
	t.Helper()
	c, err := ns.ListenPacket(n)("udp4", laddr)
	if err != nil {
		t.Fatalf("udp socket in %s on %s: %v", n, laddr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// recvFrom waits up to d for one datagram.
func recvFrom(c *net.UDPConn, d time.Duration) (string, netip.AddrPort, error) {
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	return string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), nil
}

// inNS runs a command in namespace n with a time bound.
func inNS(t *testing.T, d time.Duration, n string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n, name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lineBuffer collects a process's output for polling.
type lineBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func newLineBuffer() *lineBuffer { return &lineBuffer{} }

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lineBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lineBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }

// lines returns the lines containing s.
func (l *lineBuffer) lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}

var _ io.Writer = (*lineBuffer)(nil)
