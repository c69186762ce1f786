package tests

import (
	"encoding/binary"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/ns"
)

const pubImpairTopo = `
[[nat]]
name = "home"
external = "198.51.100.1"
inside = "10.0.1.0/24"

[[host]]
name = "alice"
network = "home"

[[host]]
name = "server"
network = "public"
address = "203.0.113.10"
impair = "delay=50ms"
seed = 11

[[host]]
name = "plain"
network = "public"
address = "203.0.113.20"
`

// A public host's link impaired through its wire: impair = "delay=50ms"
// on its [[host]] gives pings from behind a NAT RTTs of 100 ms and more;
// gonat lab impair server "loss=50%" at run time loses half of 200
// datagrams, counted as impair-loss on its link in lab status; off
// brings the link back; a public host without impair (a veth) is refused.
func TestLabPublicHostImpair(t *testing.T) {
	c := newLabCLI(t)
	name := c.upDetached(pubImpairTopo)
	pfx := lab.NamespacePrefix(name)
	ping := func(what string, n int) []float64 {
		t.Helper()
		out, err := inNS(t, 20*time.Second, pfx+"alice", "ping", "-n", "-c", strconv.Itoa(n), "-i", "0.01", "-W", "2", "203.0.113.10")
		ms := rttRE.FindAllStringSubmatch(out, -1)
		if err != nil || len(ms) != n {
			t.Fatalf("%s: ping: %v, %d replies of %d:\n%s", what, err, len(ms), n, out)
		}
		var rtts []float64
		for _, m := range ms {
			v, _ := strconv.ParseFloat(m[1], 64)
			rtts = append(rtts, v)
		}
		slices.Sort(rtts)
		t.Logf("%s: RTT min %.2f ms, median %.2f ms, max %.2f ms", what, rtts[0], rtts[len(rtts)/2], rtts[len(rtts)-1])
		return rtts
	}
	// 100 echoes: the p99 is the second slowest, so one stall of the
	// shared machine does not decide it.
	rtts := ping("delay=50ms", 100)
	if p99 := rtts[98]; rtts[0] < 100 || p99 >= 160 {
		t.Errorf("RTTs from %.2f ms, p99 %.2f ms; want >= 100 and < 160 with 50 ms each way on the server's link", rtts[0], p99)
	}

	out, code := c.run("lab", "impair", "--lab", name, "server", "loss=50%")
	oneLine(t, "lab impair server loss=50%", out, code, 0, "impair loss=50%")
	srv, err := ns.ListenPacket(pfx+"server")("udp4", "203.0.113.10:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl, err := ns.ListenPacket(pfx+"alice")("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 200
	to := &net.UDPAddr{IP: net.IPv4(203, 0, 113, 10), Port: 7000}
	var b [4]byte
	for i := range n {
		binary.BigEndian.PutUint32(b[:], uint32(i))
		if _, err := cl.WriteTo(b[:], to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	got := map[uint32]bool{}
	buf := make([]byte, 64)
	for {
		srv.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		k, _, err := srv.ReadFrom(buf)
		if err != nil {
			break
		}
		if k == 4 {
			got[binary.BigEndian.Uint32(buf)] = true
		}
	}
	lost := n - len(got)
	t.Logf("lost %d of %d", lost, n)
	if f := float64(lost) / n; math.Abs(f-0.5) > 0.12 {
		t.Errorf("lost %d of %d, want 50%% +- 12", lost, n)
	}
	// The LINK row: host, impairment, seed, packets.
	out, code = c.run("lab", "status", "--lab", name)
	if code != 0 || !rowHas(out, "server", "loss=50%", " 11 ", "impair-loss="+strconv.Itoa(lost)+"\n") {
		t.Errorf("lab status: exit %d, no LINK row for server with loss=50%%, seed 11 and impair-loss=%d:\n%s", code, lost, out)
	}

	out, code = c.run("lab", "impair", "--lab", name, "server", "off")
	oneLine(t, "lab impair server off", out, code, 0, "impairment off")
	if rtts := ping("off", 10); rtts[len(rtts)-1] >= 50 {
		t.Errorf("RTT up to %.2f ms after impairment off", rtts[len(rtts)-1])
	}

	out, code = c.run("lab", "impair", "--lab", name, "plain", "loss=1%")
	oneLine(t, "lab impair of a public host without impair", out, code, 1, "give its [[host]] impair in the topology")
}

// rowHas reports whether a line of out starts with the field row and
// holds each of want (the line's end as "\n").
func rowHas(out, row string, want ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 0 || f[0] != row {
			continue
		}
		all := true
		for _, w := range want {
			all = all && strings.Contains(l+"\n", w)
		}
		if all {
			return true
		}
	}
	return false
}
