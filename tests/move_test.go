package tests

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
)

// moveTopo: alice behind home, bob behind work (which keeps a free port
// for a host moving in), a server on the public side.
const moveTopo = `
name = "move"
[[nat]]
name = "home"
preset = "full-cone"
external = ["198.51.100.1"]
inside = "10.0.0.0/24"

[[nat]]
name = "work"
preset = "full-cone"
external = ["198.51.100.2"]
inside = "10.0.1.0/24"
free-ports = 1

[[host]]
name = "alice"
network = "home"

[[host]]
name = "bob"
network = "work"

[[host]]
name = "server"
network = "public"
address = ["203.0.113.20"]
`

// A host that moves gets the next free address of the other network and
// its traffic a new mapping at the other NAT: the server sees work's
// external address; a socket bound to the old address can no longer
// send; names resolve, hers to the new address; home's mapping is left
// to lapse. Moving back recycles the port and address the host left. A
// NAT with no free port refuses a host.
func TestHostMove(t *testing.T) {
	l := labtest.Up(t, labtest.Parse(t, moveTopo), labOpts())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { l.ServeControl(ctx, func() {}); close(served) }()
	t.Cleanup(func() {
		cancel()
		<-served
		os.RemoveAll(lab.StateDir(l.Name))
	})
	events, unsubscribe := l.Events.Subscribe(false)
	defer unsubscribe()
	server := nodeUDP(t, l, "server", eventsServer.String())
	alice := nodeUDP(t, l, "alice", ":7000")
	bound := nodeUDP(t, l, "alice", "10.0.0.2:7001")
	seen := func(c interface {
		WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
	}) netip.AddrPort {
		t.Helper()
		for range 20 {
			if _, err := c.WriteToUDPAddrPort([]byte("hello"), eventsServer); err != nil {
				t.Fatalf("send: %v", err)
			}
			if msg, from, err := recvFrom(server, 200*time.Millisecond); err == nil && msg == "hello" {
				return from
			}
		}
		t.Fatal("the server got nothing")
		return netip.AddrPort{}
	}
	before := seen(alice)
	if before.Addr() != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("before the move the server saw %s, want home's address", before)
	}

	if _, err := lab.Call(l.Name, lab.Request{Op: lab.OpMove, Node: "bob", NAT: "home"}); err == nil || !strings.Contains(err.Error(), "nat home has no free inside port") {
		t.Errorf("move bob home (no free port there): %v", err)
	}
	if _, err := lab.Call(l.Name, lab.Request{Op: lab.OpMove, Node: "alice", NAT: "work"}); err != nil {
		t.Fatalf("move alice work: %v", err)
	}
	moved := netip.MustParseAddr("10.0.1.3") // bob has .2
	if ev := nextOf(t, events, observe.KindMove); ev.Node != "alice" || ev.NAT != "work" || ev.OldAddress != "10.0.0.2" || ev.NewAddress != moved.String() {
		t.Errorf("move event %+v", ev)
	} else {
		t.Logf("%s", ev.Text)
	}
	if got := l.Status().Nodes; !nodeHas(got, "alice", moved.String()) || nodeHas(got, "alice", "10.0.0.2") {
		t.Errorf("status after the move: %+v", got)
	}
	out, err := l.Node("alice").Command("ip", "-4", "-o", "addr").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " "+moved.String()+"/24") || strings.Contains(string(out), "10.0.0.2") {
		t.Errorf("alice's addresses after the move (%v):\n%s", err, out)
	}
	// Names resolve as before, the lab's DNS server reached through work,
	// and alice's name follows her.
	if got := getent(t, l.Node("alice"), "server"); got != "203.0.113.20" {
		t.Errorf("alice resolves server as %s after the move", got)
	}
	if got := getent(t, l.Node("bob"), "alice"); got != moved.String() {
		t.Errorf("bob resolves alice as %s after the move, want %s", got, moved)
	}
	if _, err := bound.WriteToUDPAddrPort([]byte("hello"), eventsServer); err == nil {
		t.Error("a socket bound to the old address still sends")
	} else {
		t.Logf("a socket bound to the old address: %v", err)
	}

	after := seen(alice)
	t.Logf("the server saw alice as %s before the move, %s after", before, after)
	if after.Addr() != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("after the move the server saw %s, want work's address 198.51.100.2", after)
	}
	if _, err := server.WriteToUDPAddrPort([]byte("reply"), after); err != nil {
		t.Fatal(err)
	}
	if msg, _, err := recvFrom(alice, 2*time.Second); err != nil || msg != "reply" {
		t.Errorf("reply through work: %q, %v", msg, err)
	}
	// The flow's mappings, by its inside port (the DNS lookup made others).
	internals := func(natName string) []string {
		var out []string
		l.NAT(natName).Engine.Mappings(time.Now(), func(m nat.MappingInfo) {
			if m.Proto == table.UDP && m.Internal.Port() == 7000 {
				out = append(out, m.Internal.String())
			}
		})
		return out
	}
	if got := internals("home"); len(got) != 1 || got[0] != "10.0.0.2:7000" {
		t.Errorf("home's mappings after the move: %v, want alice's old one left to lapse", got)
	}
	if got := internals("work"); len(got) != 1 || got[0] != moved.String()+":7000" {
		t.Errorf("work's mappings after the move: %v, want alice's new one", got)
	}
	// What still comes to alice's old endpoint finds no host behind home.
	noRoute := l.NAT("home").Engine.Count(nat.DropNoRoute)
	if _, err := server.WriteToUDPAddrPort([]byte("stale"), before); err != nil {
		t.Fatal(err)
	}
	if msg, _, err := recvFrom(alice, 300*time.Millisecond); err == nil {
		t.Errorf("alice got %q through home after the move", msg)
	}
	if n := l.NAT("home").Engine.Count(nat.DropNoRoute) - noRoute; n != 1 {
		t.Errorf("home dropped %d packets as no-route after the move, want the 1 sent to alice's old endpoint", n)
	}

	// Back home: the port and the address alice left are free again.
	if _, err := lab.Call(l.Name, lab.Request{Op: lab.OpMove, Node: "alice", NAT: "home"}); err != nil {
		t.Fatalf("move alice home: %v", err)
	}
	if ev := nextOf(t, events, observe.KindMove); ev.NewAddress != "10.0.0.2" {
		t.Errorf("move back event %+v", ev)
	}
	if back := seen(alice); back != before {
		t.Errorf("back home the server saw %s, want %s (home's mapping had not lapsed)", back, before)
	}

	// A move that fails half-way leaves the host where it was: work's
	// free port is renamed away under the lab, so it cannot come in.
	free := lab.NamespacePrefix(l.Name) + "_free"
	out, err = exec.Command("ip", "-n", free, "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link in %s: %v\n%s", free, err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] != "lo:" {
			dev := strings.TrimSuffix(strings.Split(f[1], "@")[0], ":")
			if out, err := exec.Command("ip", "-n", free, "link", "set", dev, "name", "x"+dev).CombinedOutput(); err != nil {
				t.Fatalf("rename %s: %v\n%s", dev, err, out)
			}
		}
	}
	if _, err := lab.Call(l.Name, lab.Request{Op: lab.OpMove, Node: "alice", NAT: "work"}); err == nil || !strings.Contains(err.Error(), "it stays on home") {
		t.Errorf("move with work's port gone: %v", err)
	} else {
		t.Logf("move with work's port gone: %v", err)
	}
	if back := seen(alice); back != before {
		t.Errorf("after the failed move the server saw %s, want %s", back, before)
	}
	if got := l.Status().Nodes; !nodeHas(got, "alice", "10.0.0.2") {
		t.Errorf("status after the failed move: %+v", got)
	}
}
