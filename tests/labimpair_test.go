package tests

import (
	"encoding/binary"
	"math"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gonat/gonat/lab/labtest"
)

// impair = "loss=10%" on a host's link: 5,000 datagrams from the host to
// a public server lose 10% +- 2%, and lab status counts each loss as
// impair-loss. impair-out = "delay=50ms" on another host's link delays
// what it sends only: its pings take 50 ms more, not 100, and its
// datagrams take them while the answers do not.
func TestLabHostImpairLoss(t *testing.T) {
	topo := labtest.Parse(t, `
[[nat]]
name = "home"
external = "198.51.100.1"
inside = "10.0.1.0/24"
seed = 21

[[host]]
name = "alice"
network = "home"
impair = "loss=10%"

[[host]]
name = "bob"
network = "home"
impair-out = "delay=50ms"

[[host]]
name = "server"
network = "public"
address = "203.0.113.10"
`)
	l := labtest.Up(t, topo, labOpts())
	srv := nodeUDP(t, l, "server", "203.0.113.10:7000")
	srv.SetReadBuffer(8 << 20)
	cl := nodeUDP(t, l, "alice", ":0")
	const n = 5000
	got := make([]bool, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			srv.SetReadDeadline(time.Now().Add(time.Second))
			k, err := srv.Read(buf)
			if err != nil {
				return
			}
			if k == 4 {
				if i := int(binary.BigEndian.Uint32(buf)); i < n {
					got[i] = true
				}
			}
		}
	}()
	to := &net.UDPAddr{IP: net.IPv4(203, 0, 113, 10), Port: 7000}
	var b [4]byte
	start := time.Now()
	for i := range n {
		binary.BigEndian.PutUint32(b[:], uint32(i))
		if _, err := cl.WriteTo(b[:], to); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 { // 10,000 a second, in bursts of 10
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * 100 * time.Microsecond)))
		}
	}
	<-done
	lost := 0
	for _, ok := range got {
		if !ok {
			lost++
		}
	}
	f := float64(lost) / n
	counted := natPackets(t, l, "home")["impair-loss"]
	t.Logf("lost %d of %d (%.2f%%), counted impair-loss=%d", lost, n, 100*f, counted)
	if math.Abs(f-0.10) > 0.02 {
		t.Errorf("lost %.2f%%, want 10%% +- 2", 100*f)
	}
	if counted != uint64(lost) {
		t.Errorf("lab status counts impair-loss=%d, %d lost", counted, lost)
	}

	out, err := l.Node("bob").Command("ping", "-n", "-c", "10", "-i", "0.05", "-W", "2", "203.0.113.10").CombinedOutput()
	ms := rttRE.FindAllStringSubmatch(string(out), -1)
	if err != nil || len(ms) != 10 {
		t.Fatalf("ping from bob: %v, %d replies:\n%s", err, len(ms), out)
	}
	rtts := make([]float64, len(ms))
	for i, m := range ms {
		rtts[i], _ = strconv.ParseFloat(m[1], 64)
	}
	slices.Sort(rtts)
	lo, med := rtts[0], rtts[len(rtts)/2]
	t.Logf("bob, impair-out delay=50ms: RTT %.2f to %.2f ms, median %.2f", lo, rtts[len(rtts)-1], med)
	// The median, not the maximum, must stay under both ways' 100 ms: one
	// slow reply on a loaded machine is no second delay.
	if lo < 50 || med >= 100 {
		t.Errorf("RTT from %.2f ms, median %.2f, with 50 ms one way on bob's link: want >= 50 and < 100", lo, med)
	}

	// The way delayed is the one bob sends: one clock times both ways of
	// a datagram and its answer (the least of 5 each way).
	bc := nodeUDP(t, l, "bob", ":0")
	up, down := time.Hour, time.Hour
	buf := make([]byte, 64)
	for range 5 {
		sent := time.Now()
		if _, err := bc.WriteTo([]byte("up"), to); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, from, err := srv.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("server: %v", err)
		}
		up = min(up, time.Since(sent))
		sent = time.Now()
		if _, err := srv.WriteToUDP([]byte("down"), from); err != nil {
			t.Fatal(err)
		}
		bc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := bc.Read(buf); err != nil {
			t.Fatalf("bob: %v", err)
		}
		down = min(down, time.Since(sent))
	}
	t.Logf("bob, one way: sent in %v, received in %v", up, down)
	if up < 50*time.Millisecond || down >= 25*time.Millisecond {
		t.Errorf("bob sends in %v and receives in %v: want >= 50ms and < 25ms", up, down)
	}
}

// gonat lab impair NAT delay=50ms while the lab runs: pings from a host
// behind it take at least 100 ms (50 ms each way on the uplink); off
// brings them back under 50 ms. A host's link takes a spec the same way,
// and a public host without impair (a veth) is refused.
func TestLabImpairAtRunTime(t *testing.T) {
	c := newLabCLI(t)
	name := c.upDetached(homeTopo)
	rtts := func(what string) (lo, hi float64) {
		t.Helper()
		out, code := c.run("lab", "exec", "--lab", name, "alice", "--", "ping", "-n", "-c", "20", "-i", "0.05", "-W", "2", "203.0.113.10")
		ms := rttRE.FindAllStringSubmatch(out, -1)
		if code != 0 || len(ms) != 20 {
			t.Fatalf("%s: ping exit %d, %d replies:\n%s", what, code, len(ms), out)
		}
		lo = math.Inf(1)
		for _, m := range ms {
			v, _ := strconv.ParseFloat(m[1], 64)
			lo, hi = min(lo, v), max(hi, v)
		}
		t.Logf("%s: RTT %.2f to %.2f ms", what, lo, hi)
		return lo, hi
	}
	if _, hi := rtts("before"); hi >= 50 {
		t.Errorf("RTT up to %.2f ms before any impairment", hi)
	}
	out, code := c.run("lab", "impair", "--lab", name, "home", "delay=50ms")
	oneLine(t, "lab impair home delay=50ms", out, code, 0, "impair delay=50ms")
	if lo, _ := rtts("delay=50ms"); lo < 100 {
		t.Errorf("RTT from %.2f ms with 50 ms each way on the uplink, want >= 100", lo)
	}
	out, code = c.run("lab", "impair", "--lab", name, "home", "off")
	oneLine(t, "lab impair home off", out, code, 0, "impairment off")
	if _, hi := rtts("off"); hi >= 50 {
		t.Errorf("RTT up to %.2f ms after impairment off", hi)
	}
	out, code = c.run("lab", "impair", "--lab", name, "alice", "delay=30ms")
	oneLine(t, "lab impair alice delay=30ms", out, code, 0, "impair delay=30ms")
	if lo, _ := rtts("alice delay=30ms"); lo < 60 {
		t.Errorf("RTT from %.2f ms with 30 ms each way on alice's link, want >= 60", lo)
	}
	out, code = c.run("lab", "impair", "--lab", name, "stun", "loss=1%")
	oneLine(t, "lab impair of a public host", out, code, 1, "give its [[host]] impair in the topology")
	out, code = c.run("lab", "impair", "--lab", name, "home", "loss=1")
	oneLine(t, "lab impair with a bad spec", out, code, 1, `impair "loss=1"`)
}
