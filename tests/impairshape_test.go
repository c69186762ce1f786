package tests

import (
	"encoding/json"
	"math"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
)

// The shape of impairment, end to end through one gonat run whose
// outside link is re-impaired between checks (gonat lab impair): burst
// loss gives bursts of the configured mean length, duplication and
// reordering their shares, a rate limit its rate to iperf3's TCP.
func TestImpairShape(t *testing.T) {
	iperf3 := privtest.Tool(t, "iperf3")
	tp := newTopo(t)
	tp.startNAT("--seed", "2121")
	deepTUNQueue(t, tp.A)
	srv := udp(t, tp.WAN, net.JoinHostPort(srv1.String(), "7000"))
	cl := udp(t, tp.A, ":0")
	impairNAT := func(spec string) {
		t.Helper()
		if out, err := exec.Command(gonatBin, "lab", "impair", "--lab", tp.Name, tp.Name, spec).CombinedOutput(); err != nil {
			t.Fatalf("gonat lab impair %q: %v\n%s", spec, err, out)
		}
	}

	t.Run("gilbert-burst-length", func(t *testing.T) {
		// Mean loss p/(p+r) = 1/6; mean burst 1/r = 4 packets: about
		// 200 bursts in 5000 datagrams.
		const n, r = 5000, 0.25
		impairNAT("loss=gilbert:p=5%,r=25%")
		arrived, _ := sendNumbered(t, cl, srv, n)
		got := make([]bool, n)
		for _, a := range arrived {
			got[a.seq] = true
		}
		lost, bursts := 0, 0
		for i := range n {
			if !got[i] {
				lost++
				if i == 0 || got[i-1] {
					bursts++
				}
			}
		}
		if bursts == 0 {
			t.Fatalf("no loss in %d datagrams", n)
		}
		mean := float64(lost) / float64(bursts)
		t.Logf("lost %d of %d in %d bursts: mean burst %.2f packets (configured 1/r = %.2f)", lost, n, bursts, mean, 1/r)
		if math.Abs(mean-1/r) > 0.2/r {
			t.Errorf("mean burst %.2f packets, want %.2f +- 20%%", mean, 1/r)
		}
	})

	t.Run("duplicate-reorder", func(t *testing.T) {
		// Reordered packets leave at once, ahead of the ones delayed
		// 50 ms: each arrives well before 25 ms, and before the lower
		// numbers still in the queue (about 500 at 10,000 a second).
		// Told apart by how long each took, not only by arrival order:
		// two readers' writes go through the kernel's per-CPU backlogs,
		// which on a loaded machine can swap batches of delayed packets.
		const n, dup, reorder = 5000, 0.05, 0.10
		impairNAT("duplicate=5% reorder=10% delay=50ms")
		arrived, sentAt := sendNumbered(t, cl, srv, n)
		seen := make([]bool, n)
		dups, fast, early, missing := 0, 0, 0, 0 // missing: the lowest number not yet arrived
		for _, a := range arrived {
			if seen[a.seq] {
				dups++
				continue
			}
			seen[a.seq] = true
			if a.at.Sub(sentAt[a.seq]) < 25*time.Millisecond {
				fast++
			}
			if a.seq > missing {
				early++
			}
			for missing < n && seen[missing] {
				missing++
			}
		}
		unique := len(arrived) - dups
		fd, fr := float64(dups)/float64(unique), float64(fast)/float64(unique)
		t.Logf("%d datagrams arrived (%d distinct): %.2f%% duplicated (configured %g%%), %.2f%% sent on at once, ahead of the delayed ones (configured %g%%); %.2f%% arrived before a lower number",
			len(arrived), unique, 100*fd, 100*dup, 100*fr, 100*reorder, 100*float64(early)/float64(unique))
		if unique != n {
			t.Errorf("%d of %d distinct datagrams arrived: nothing is lost here", unique, n)
		}
		if math.Abs(fd-dup) > 0.02 || math.Abs(fr-reorder) > 0.02 {
			t.Errorf("duplicated %.2f%%, reordered %.2f%%; want %g%% and %g%%, each +- 2 points", 100*fd, 100*fr, 100*dup, 100*reorder)
		}
	})

	t.Run("rate-iperf3", func(t *testing.T) {
		const rate = 10e6
		// A queue of 200 ms keeps the link busy through the stalls of
		// a shared machine (a sender not scheduled for tens of ms).
		impairNAT("rate=10mbit queue=200ms")
		srvCmd := exec.Command("ip", "netns", "exec", tp.WAN, iperf3, "-s", "-1", "-B", srv1.String(), "-p", "5201")
		if err := srvCmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srvCmd.Process.Kill(); srvCmd.Wait() })
		var res struct {
			Error string
			End   struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			// The server may not listen yet: iperf3 says so at once,
			// and is run again.
			out, err := inNS(t, 20*time.Second, tp.A, iperf3, "-c", srv1.String(), "-p", "5201", "-t", "3", "-O", "1", "-J")
			res.Error = ""
			if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
				t.Fatalf("iperf3 -J: %v, %v\n%s", err, jerr, out)
			}
			if res.Error == "" && err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("iperf3: %v %s\n%s", err, res.Error, out)
			}
		}
		got := res.End.SumReceived.BitsPerSecond
		t.Logf("iperf3 TCP through rate=10mbit: %s Mbit/s received", strconv.FormatFloat(got/1e6, 'f', 2, 64))
		if math.Abs(got-rate) > 0.1*rate {
			t.Errorf("iperf3 TCP %.2f Mbit/s, want 10 +- 1", got/1e6)
		}
	})
	impairNAT("off")
}
