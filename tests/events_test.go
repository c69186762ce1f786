package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/observe"
)

// eventsTopo: alice behind home, a plain UDP server on the public side.
const eventsTopo = `
name = "events"
[[nat]]
name = "home"
preset = "full-cone"
port-assignment = "random"
external = ["198.51.100.1"]
inside = "10.0.0.0/24"

[[host]]
name = "alice"
network = "home"

[[host]]
name = "server"
network = "public"
address = ["203.0.113.20"]
`

var eventsServer = netip.MustParseAddrPort("203.0.113.20:9000")

// eventsLab brings eventsTopo up and serves its control socket, as `lab
// up` does, so the events go through the control op.
func eventsLab(t *testing.T) *labtest.Lab {
	t.Helper()
	l := labtest.Up(t, labtest.Parse(t, eventsTopo), labOpts())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { l.ServeControl(ctx, func() {}); close(served) }()
	t.Cleanup(func() {
		cancel()
		<-served
		os.RemoveAll(lab.StateDir(l.Name))
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := lab.Call(l.Name, lab.Request{Op: lab.OpStatus}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("control socket: %v", err)
		}
	}
	return l
}

// udpFlow sends a numbered datagram from alice to the server every
// interval; the server records, by number, the source it saw.
type udpFlow struct {
	mu   sync.Mutex
	seen map[int]netip.AddrPort
	sent int
	c    *net.UDPConn // alice's
	srv  *net.UDPConn
}

func startFlow(t *testing.T, l *labtest.Lab, interval time.Duration) *udpFlow {
	t.Helper()
	f := &udpFlow{seen: map[int]netip.AddrPort{}, c: nodeUDP(t, l, "alice", ":7000"), srv: nodeUDP(t, l, "server", eventsServer.String())}
	go func() {
		b := make([]byte, 64)
		for {
			n, from, err := f.srv.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			seq, _ := strconv.Atoi(string(b[:n]))
			f.mu.Lock()
			f.seen[seq] = from
			f.mu.Unlock()
		}
	}()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			f.mu.Lock()
			seq := f.sent
			f.sent++
			f.mu.Unlock()
			f.c.WriteToUDPAddrPort([]byte(strconv.Itoa(seq)), eventsServer)
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return f
}

// mark returns how many datagrams were sent so far.
func (f *udpFlow) mark() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

// lastSource waits until the server has a datagram numbered at least
// from, and returns the source it saw on the latest.
func (f *udpFlow) lastSource(t *testing.T, from int) netip.AddrPort {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		best, src := -1, netip.AddrPort{}
		for s, a := range f.seen {
			if s >= from && s > best {
				best, src = s, a
			}
		}
		f.mu.Unlock()
		if best >= 0 {
			return src
		}
	}
	t.Fatalf("the server got nothing numbered %d or later (the flow stopped)", from)
	return netip.AddrPort{}
}

// missing lists the datagrams numbered below to the server never got.
func (f *udpFlow) missing(to int) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for s := range to {
		if _, ok := f.seen[s]; !ok {
			out = append(out, s)
		}
	}
	return out
}

// A link down for 2 s loses the flow's packets in that window, each
// counted as link-down; the mapping survives and the flow resumes on it,
// replies included. Both kinds of link: a host's and a NAT's uplink.
func TestLinkDownUp(t *testing.T) {
	l := eventsLab(t)
	for _, node := range []string{"alice", "home"} {
		t.Run(node, func(t *testing.T) {
			events, cancel := l.Events.Subscribe(false)
			defer cancel()
			f := startFlow(t, l, 20*time.Millisecond)
			before := f.lastSource(t, 0)
			dropsBefore := l.Status().NATs[0].Packets["link-down"]
			// A packet watcher, as table --watch is, gets DROP lines
			// for the link's drops.
			var watchedDrops, stopWatch atomic.Uint64
			watching := make(chan struct{})
			var once sync.Once
			go lab.Watch(l.Name, true, func(ev observe.Event) bool {
				once.Do(func() { close(watching) })
				if ev.Kind == "DROP" && ev.Reason == "link-down" {
					watchedDrops.Add(ev.Count)
				}
				return stopWatch.Load() == 0
			})
			defer stopWatch.Store(1)
			select {
			case <-watching: // the flow's first REFRESH: the watch is on
			case <-time.After(5 * time.Second):
				t.Fatal("the watcher saw no event of the flow")
			}
			if _, err := lab.Call(l.Name, lab.Request{Op: lab.OpLink, Node: node, State: "down"}); err != nil {
				t.Fatal(err)
			}
			downAt := f.mark()
			if ev := nextOf(t, events, observe.KindLink); ev.Node != node || ev.Action != "down" || ev.NAT != "home" {
				t.Errorf("down event %+v", ev)
			}
			downAtTime := time.Now()
			time.Sleep(2 * time.Second)
			upAt := f.mark()
			if _, err := lab.Call(l.Name, lab.Request{Op: lab.OpLink, Node: node, State: "up"}); err != nil {
				t.Fatal(err)
			}
			if ev := nextOf(t, events, observe.KindLink); ev.Node != node || ev.Action != "up" || ev.Time.Sub(downAtTime) < 2*time.Second {
				t.Errorf("up event %+v, %s after down", ev, ev.Time.Sub(downAtTime))
			}
			if after := f.lastSource(t, upAt+1); after != before {
				t.Errorf("after the link came back the server saw %s, before %s: the mapping did not survive", after, before)
			}
			end := f.mark()
			time.Sleep(200 * time.Millisecond) // the last ones arrive
			lost := f.missing(end)
			drops := l.Status().NATs[0].Packets["link-down"] - dropsBefore
			window := upAt - downAt
			t.Logf("link %s down for 2 s: %d datagrams sent in the window, %d lost, %d counted link-down", node, window, len(lost), drops)
			if window < 50 {
				t.Fatalf("only %d datagrams in 2 s", window)
			}
			// Everything sent while the link was down is lost; one at
			// each edge may go either way.
			if len(lost) < window || len(lost) > window+2 {
				t.Errorf("lost %d datagrams (%v), want the %d sent while the link was down", len(lost), lost, window)
			}
			for _, s := range lost {
				if s < downAt-1 || s > upAt {
					t.Errorf("datagram %d lost outside the down window [%d, %d)", s, downAt, upAt)
				}
			}
			if drops != uint64(len(lost)) {
				t.Errorf("link-down counted %d, but %d datagrams were lost", drops, len(lost))
			}
			for deadline := time.Now().Add(3 * time.Second); watchedDrops.Load() < drops && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			if n := watchedDrops.Load(); n != drops {
				t.Errorf("the watcher's DROP link-down lines count %d, status %d", n, drops)
			}
			// Replies reach alice through the same mapping.
			if _, err := f.srv.WriteToUDPAddrPort([]byte("reply"), before); err != nil {
				t.Fatal(err)
			}
			if msg, _, err := recvFrom(f.c, 2*time.Second); err != nil || msg != "reply" {
				t.Errorf("reply after the link came back: %q, %v", msg, err)
			}
			f.c.Close()
			f.srv.Close()
		})
	}
}

// nextOf waits for the next event of kind on events.
func nextOf(t *testing.T, events <-chan observe.Event, kind string) observe.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// A rebind moves a live UDP flow to a new external port, then to a new
// external address: the server sees the new source, nothing is lost, and
// replies to the new endpoint reach the host while the old one is dead.
// A reboot makes the next packet a new mapping, from a new address when
// given one.
func TestRebindReboot(t *testing.T) {
	l := eventsLab(t)
	events, cancel := l.Events.Subscribe(false)
	defer cancel()
	f := startFlow(t, l, 10*time.Millisecond)
	reply := func(to netip.AddrPort) bool {
		t.Helper()
		f.srv.WriteToUDPAddrPort([]byte("reply"), to)
		for {
			msg, _, err := recvFrom(f.c, 500*time.Millisecond)
			if err != nil {
				return false
			}
			if msg == "reply" {
				return true
			}
		}
	}
	step := func(op, addr string) (before, after netip.AddrPort) {
		t.Helper()
		before = f.lastSource(t, f.mark())
		if _, err := lab.Call(l.Name, lab.Request{Op: op, NAT: "home", Address: addr}); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		at := f.mark()
		after = f.lastSource(t, at+1)
		time.Sleep(100 * time.Millisecond)
		t.Logf("%s --address %q: the server saw %s, then %s", op, addr, before, after)
		if lost := f.missing(at); len(lost) > 0 {
			t.Errorf("%s: datagrams %v lost", op, lost)
		}
		return before, after
	}

	before, after := step(lab.OpRebind, "")
	if after.Addr() != before.Addr() || after.Port() == before.Port() {
		t.Errorf("rebind: the server saw %s, then %s; want a new port on the same address", before, after)
	}
	if ev := nextOf(t, events, observe.KindRebind); ev.NAT != "home" {
		t.Errorf("rebind event %+v", ev)
	}
	if !reply(after) {
		t.Error("rebind: a reply to the new endpoint did not reach alice")
	}
	if reply(before) {
		t.Error("rebind: a reply to the old endpoint still reached alice")
	}

	newAddr := netip.MustParseAddr("198.51.100.77")
	before, after = step(lab.OpRebind, newAddr.String())
	if after.Addr() != newAddr {
		t.Errorf("rebind --address: the server saw %s, then %s; want %s", before, after, newAddr)
	}
	if ev := nextOf(t, events, observe.KindRebind); ev.External != newAddr.String() {
		t.Errorf("rebind event %+v", ev)
	}
	if !reply(after) {
		t.Error("rebind --address: a reply to the new endpoint did not reach alice")
	}
	if reply(before) {
		t.Error("rebind --address: a reply to the old address still reached alice")
	}
	if got := l.Status().Nodes; !nodeHas(got, "home", newAddr.String()) {
		t.Errorf("status nodes %+v: home does not show %s", got, newAddr)
	}
	if got := getent(t, l.Node("server"), "home"); got != newAddr.String() {
		t.Errorf("the server resolves home as %s after rebind --address, want %s", got, newAddr)
	}

	created, _ := l.Events.NATCounts("home")
	before, after = step(lab.OpReboot, "")
	if ev := nextOf(t, events, observe.KindReboot); ev.NAT != "home" {
		t.Errorf("reboot event %+v", ev)
	}
	if now, _ := l.Events.NATCounts("home"); now != created+1 {
		t.Errorf("reboot: %d mappings made after it, want 1 (the flow's next packet)", now-created)
	}
	if after == before {
		t.Errorf("reboot: the server saw %s before and after (random port assignment)", after)
	}
	if reply(before) {
		t.Error("reboot: a reply to the old endpoint still reached alice")
	}

	third := netip.MustParseAddr("198.51.100.78")
	_, after = step(lab.OpReboot, third.String())
	if after.Addr() != third {
		t.Errorf("reboot --address: the server saw %s, want %s", after, third)
	}
}

func nodeHas(nodes []lab.NodeStatus, name, addr string) bool {
	for _, n := range nodes {
		if n.Name == name {
			for _, a := range n.Addresses {
				if a == addr {
					return true
				}
			}
		}
	}
	return false
}

// A scheduled [[event]] happens at its time after `lab up` (within
// 300 ms) and shows in `gonat table --watch --json`: a link that fails
// and returns, then a move to another NAT's network; `gonat lab move`
// moves the host back.
func TestScheduledEvents(t *testing.T) {
	privtest.Require(t)
	c := newLabCLI(t)
	file := filepath.Join(t.TempDir(), "events.toml")
	topo := eventsTopo + `
[[event]]
at = "2s"
link = "alice"
state = "down"

[[event]]
at = "3s"
link = "alice"
state = "up"

[[nat]]
name = "work"
external = ["198.51.100.2"]
inside = "10.0.1.0/24"

[[event]]
at = "4s"
move = "alice"
network = "work"
`
	if err := os.WriteFile(file, []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	name := labtest.Name()
	t.Cleanup(func() { c.run("lab", "down", "--lab", name) })
	// The schedule starts as the lab answers on its control socket: the
	// first answer is the time the events count from.
	root := lab.StateRoot
	lab.StateRoot = c.state
	t.Cleanup(func() { lab.StateRoot = root })
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, code := c.run("lab", "up", "-d", file, "--name", name)
		done <- result{out, code}
	}()
	var upAt time.Time
	var finished *result
	for upAt.IsZero() {
		if _, err := lab.Call(name, lab.Request{Op: lab.OpStatus}); err == nil {
			upAt = time.Now()
			break
		}
		select {
		case r := <-done:
			if r.code != 0 {
				t.Fatalf("lab up -d: exit %d\n%s", r.code, r.out)
			}
			finished = &r
		case <-time.After(5 * time.Millisecond):
		}
	}
	if finished == nil {
		if r := <-done; r.code != 0 {
			t.Fatalf("lab up -d: exit %d\n%s", r.code, r.out)
		}
	}
	watch := exec.Command(gonatBin, "table", "--lab", name, "--watch", "--json")
	watch.Env = c.env
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Process.Kill(); watch.Wait() })
	got := make(chan observe.Event, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev observe.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && (ev.Kind == observe.KindLink || ev.Kind == observe.KindMove) {
				got <- ev
			}
		}
	}()
	for _, want := range []struct {
		action string
		at     time.Duration
	}{{"down", 2 * time.Second}, {"up", 3 * time.Second}, {"move", 4 * time.Second}} {
		select {
		case ev := <-got:
			off := ev.Time.Sub(upAt)
			t.Logf("%s: at +%s after the lab answered (scheduled +%s)", ev.Text, off.Round(time.Millisecond), want.at)
			if want.action == "move" {
				if ev.Kind != observe.KindMove || ev.Node != "alice" || ev.NAT != "work" || ev.OldAddress != "10.0.0.2" || ev.NewAddress != "10.0.1.2" {
					t.Errorf("event %+v, want alice's move from 10.0.0.2 to work's 10.0.1.2", ev)
				}
			} else if ev.Kind != observe.KindLink || ev.Node != "alice" || ev.Action != want.action {
				t.Errorf("event %+v, want alice %s", ev, want.action)
			}
			if off < want.at-300*time.Millisecond || off > want.at+300*time.Millisecond {
				t.Errorf("link %s happened %s after the lab was up, scheduled %s", want.action, off, want.at)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event in table --watch --json", want.action)
		}
	}
	out, code := c.run("lab", "move", "--lab", name, "alice", "home")
	oneLine(t, "lab move alice home", out, code, 0, "lab "+name+": alice moved to network home, address 10.0.0.2")
	select {
	case ev := <-got:
		if ev.Kind != observe.KindMove || ev.NAT != "home" || ev.NewAddress != "10.0.0.2" {
			t.Errorf("after lab move: %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no MOVE event for lab move")
	}
	out, code = c.run("lab", "move", "--lab", name, "alice", "home")
	oneLine(t, "lab move alice home again", out, code, 1, "host alice is on network home already")
}
