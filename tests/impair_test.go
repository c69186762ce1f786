package tests

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lossySend runs gonat with 10% loss towards the outside, seeded, sends
// n numbered datagrams from A to the WAN at a bounded rate, and returns
// the numbers lost on the way and the impair-loss count gonat printed.
func lossySend(t *testing.T, seed string, n int) (lost []int, counted int) {
	tp := newTopo(t)
	tp.startNAT("--seed", seed, "--impair-out", "loss=10%")
	deepTUNQueue(t, tp.A)
	srv := udp(t, tp.WAN, net.JoinHostPort(srv1.String(), "7000"))
	cl := udp(t, tp.A, ":0")
	arrived, _ := sendNumbered(t, cl, srv, n)
	tp.stopNAT()
	got := make([]bool, n)
	for _, a := range arrived {
		got[a.seq] = true
	}
	for i, ok := range got {
		if !ok {
			lost = append(lost, i)
		}
	}
	return lost, packetCount(tp.stderr.String(), "impair-loss")
}

// deepTUNQueue lets gonat's TUN device in namespace n hold a second of
// the numbered datagrams (10,000) while gonat is not scheduled: on a
// loaded machine its default queue overflows, and datagrams lost before
// gonat would shift every impairment decision after them.
func deepTUNQueue(t *testing.T, n string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", n, "link", "set", "gnat0", "txqueuelen", "10000").CombinedOutput(); err != nil {
		t.Fatalf("txqueuelen: %v: %s", err, out)
	}
}

// arrival is a numbered datagram as it reached its receiver.
type arrival struct {
	seq int
	at  time.Time
}

// sendNumbered sends n datagrams numbered 0 to n-1 from cl to srv's
// address and returns those srv received, in the order they came (a
// duplicate twice), once all are sent and srv has heard nothing for a
// second, and when each was sent.
func sendNumbered(t *testing.T, cl, srv *net.UDPConn, n int) (arrived []arrival, sentAt []time.Time) {
	t.Helper()
	// A buffer no stall of this process overflows (FORCE: past
	// rmem_max), and each datagram stamped by the kernel as it arrives,
	// not as this process gets round to reading it.
	rc, err := srv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}
	}); err != nil || serr != nil {
		t.Fatalf("receive buffer and timestamps: %v %v", err, serr)
	}
	to := srv.LocalAddr().(*net.UDPAddr)
	sentAt = make([]time.Time, n)
	done := make(chan struct{})
	var allSent atomic.Bool // a stalled sender is not a quiet path
	go func() {
		defer close(done)
		buf, oob := make([]byte, 64), make([]byte, 64)
		for {
			srv.SetReadDeadline(time.Now().Add(time.Second))
			k, oobn, _, _, err := srv.ReadMsgUDP(buf, oob)
			if errors.Is(err, os.ErrDeadlineExceeded) && !allSent.Load() {
				continue
			}
			if err != nil {
				return
			}
			if k == 4 {
				if i := int(binary.BigEndian.Uint32(buf)); i < n {
					arrived = append(arrived, arrival{i, rxTime(oob[:oobn])})
				}
			}
		}
	}()
	// 10,000 datagrams a second, 10 at a time: far below what the path
	// carries, and short bursts for a reader that shares its CPU. From
	// one thread on one CPU: with per-CPU readers, a packet is read by
	// the reader of the CPU that sent it, and a sender that moved
	// between CPUs would hand the impairer the same packets in another
	// order (the decisions follow the order packets reach the link).
	sent := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread ends with the goroutine
		var cpu0 unix.CPUSet
		cpu0.Set(0)
		if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
			sent <- err
			return
		}
		var b [4]byte
		start := time.Now()
		for i := range n {
			binary.BigEndian.PutUint32(b[:], uint32(i))
			sentAt[i] = time.Now()
			if _, err := cl.WriteTo(b[:], to); err != nil {
				sent <- err
				return
			}
			if i%10 == 9 {
				time.Sleep(time.Until(start.Add(time.Duration(i+1) * 100 * time.Microsecond)))
			}
		}
		sent <- nil
	}()
	err = <-sent
	allSent.Store(true)
	if err != nil {
		t.Fatal(err)
	}
	<-done // a second without a datagram
	return arrived, sentAt
}

// rxTime is the kernel's receive time in a datagram's control messages
// (SO_TIMESTAMPNS), or now if it has none.
func rxTime(oob []byte) time.Time {
	msgs, _ := unix.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			return time.Unix(int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:])))
		}
	}
	return time.Now()
}

// With 10% loss on the outside link, 10,000 datagrams lose 10% +- 1.5%,
// counted as impair-loss on exit, and a rerun with the same --seed loses
// exactly the same ones.
func TestImpairLossSeeded(t *testing.T) {
	const n = 10000
	lost, counted := lossySend(t, "4242", n)
	f := float64(len(lost)) / n
	t.Logf("lost %d of %d (%.2f%%), counted %d", len(lost), n, 100*f, counted)
	if math.Abs(f-0.10) > 0.015 {
		t.Errorf("lost %.2f%%, want 10%% +- 1.5", 100*f)
	}
	if counted != len(lost) {
		t.Errorf("gonat counted impair-loss=%d, %d lost", counted, len(lost))
	}
	again, _ := lossySend(t, "4242", n)
	if !slices.Equal(lost, again) {
		i := 0
		for i < min(len(lost), len(again)) && lost[i] == again[i] {
			i++
		}
		t.Errorf("same seed, different losses: %d then %d lost, first difference at loss %d: %v / %v", len(lost), len(again), i, lost[i:min(i+5, len(lost))], again[i:min(i+5, len(again))])
	}
}

var rttRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// 50 ms of delay each way: pings from an inside host take at least
// 100 ms and under 110 ms at the 99th percentile.
func TestImpairDelayPing(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--impair", "delay=50ms")
	// 300 echoes: p99 is the third slowest, not the slowest of 50, so
	// one stall of the shared machine does not decide it.
	out, err := inNS(t, 30*time.Second, tp.A, "ping", "-n", "-c", "300", "-i", "0.01", "-W", "2", srv1.String())
	if err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	var rtts []float64
	for _, m := range rttRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		rtts = append(rtts, v)
	}
	if len(rtts) != 300 {
		t.Fatalf("%d replies, want 300\n%s", len(rtts), out)
	}
	slices.Sort(rtts)
	p99 := rtts[int(math.Ceil(0.99*float64(len(rtts))))-1]
	t.Logf("RTT min %.2f ms, median %.2f ms, p99 %.2f ms", rtts[0], rtts[len(rtts)/2], p99)
	if rtts[0] < 100 || p99 >= 110 {
		t.Errorf("RTTs from %.2f ms, p99 %.2f ms; want >= 100 and < 110", rtts[0], p99)
	}
	tp.stopNAT()
	if s := tp.stderr.String(); packetCount(s, "impair-loss") != 0 || packetCount(s, "queue-overflow") != 0 {
		t.Errorf("drops counted with delay only:\n%s", s)
	}
}

// A bad impairment spec is a usage error naming the flag and the key.
func TestImpairBadSpec(t *testing.T) {
	tp := newTopo(t)
	base := []string{"run", "--inside", tp.A + "=10.0.0.2/24", "--outside", tp.WAN, "--external", "198.51.100.1"}
	for _, c := range []struct{ flag, spec, want string }{
		{"--impair", "loss=10", "loss=10: expected a percentage"},
		{"--impair-in", "delay=soon", "delay=soon: expected a duration"},
		{"--impair-out", "speed=1mbit", `unknown key "speed"`},
	} {
		out, err := exec.Command(gonatBin, append(base, c.flag, c.spec)...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if code := exitCode(err); code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.flag) || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s %q: exit %d, output:\n%s\nwant exit 2 and one line naming %s and %q", c.flag, c.spec, code, out, c.flag, c.want)
		}
	}
}
