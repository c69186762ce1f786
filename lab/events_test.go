package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/tuntest"
)

// eventLab is controlLab with a router (not running: link state needs
// only its ports) and the nodes of a host alice behind NAT home.
func eventLab(t *testing.T) (*Lab, *nat.Engine) {
	t.Helper()
	l, e, _ := controlLab(t)
	n := l.nats["home"]
	n.Router = &forward.Router{Engine: e, Ports: []tun.Device{tuntest.NewChannel("out"), tuntest.NewChannel("alice")}}
	n.spec.Inside = []InsideSpec{{Namespace: "ctl.alice"}}
	l.nodes = map[string]*Node{
		"alice":  {Name: "alice", Namespace: "ctl.alice", Kind: "host", Network: "home"},
		"home":   {Name: "home", Namespace: "ctl.home", Kind: "nat", Network: Public},
		"server": {Name: "server", Namespace: "ctl.server", Kind: "host", Network: Public},
	}
	return l, e
}

// nextEvent waits for the next event of kind on events.
func nextEvent(t *testing.T, events <-chan observe.Event, kind string) observe.Event {
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

func TestControlLink(t *testing.T) {
	l, _ := eventLab(t)
	events, cancel := l.Events.Subscribe(false)
	defer cancel()
	r := l.nats["home"].Router
	for _, c := range []struct {
		node, state string
		port        nat.Port
		down        bool
	}{
		{"alice", "down", 1, true},
		{"home", "down", nat.Outside, true},
		{"alice", "up", 1, false},
		{"home", "up", nat.Outside, false},
	} {
		before := time.Now()
		if _, err := Call(l.Name, Request{Op: OpLink, Node: c.node, State: c.state}); err != nil {
			t.Fatalf("link %s %s: %v", c.node, c.state, err)
		}
		if r.LinkDown(c.port) != c.down {
			t.Fatalf("link %s %s: port %d down is %v", c.node, c.state, c.port, r.LinkDown(c.port))
		}
		ev := nextEvent(t, events, observe.KindLink)
		if ev.Node != c.node || ev.Action != c.state || ev.NAT != "home" || ev.Time.Before(before) ||
			!strings.HasPrefix(ev.Text, "LINK "+c.node+" "+c.state) {
			t.Fatalf("link %s %s: event %+v", c.node, c.state, ev)
		}
	}
	for _, bad := range []struct{ node, state, want string }{
		{"alice", "sideways", "want down or up"},
		{"server", "down", "not behind a NAT"},
		{"nobody", "down", `no node "nobody"`},
	} {
		_, err := Call(l.Name, Request{Op: OpLink, Node: bad.node, State: bad.state})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("link %s %s: %v, want %q", bad.node, bad.state, err, bad.want)
		}
	}
}

func TestControlRebindReboot(t *testing.T) {
	l, e := eventLab(t)
	events, cancel := l.Events.Subscribe(false)
	defer cancel()
	sendOut(t, e)
	var before []string
	e.Mappings(time.Now(), func(m nat.MappingInfo) { before = append(before, m.External.String()) })
	if _, err := Call(l.Name, Request{Op: OpRebind, NAT: "home"}); err != nil {
		t.Fatal(err)
	}
	var after []string
	e.Mappings(time.Now(), func(m nat.MappingInfo) { after = append(after, m.External.String()) })
	if len(before) != 1 || len(after) != 1 || before[0] == after[0] {
		t.Fatalf("mappings %v before the rebind, %v after", before, after)
	}
	if ev := nextEvent(t, events, observe.KindRebind); ev.Node != "home" || ev.Text != "REBIND home: 1 mappings moved to new external ports" {
		t.Fatalf("rebind event %+v", ev)
	}
	if _, err := Call(l.Name, Request{Op: OpReboot, NAT: "home"}); err != nil {
		t.Fatal(err)
	}
	if n := e.LiveMappings(time.Now()); n[table.UDP] != 0 {
		t.Fatalf("mappings after the reboot: %v", n)
	}
	if ev := nextEvent(t, events, observe.KindReboot); ev.Node != "home" {
		t.Fatalf("reboot event %+v", ev)
	}
	l.nodes["home"].Addresses = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	l.nodes["server"].Addresses = []netip.Addr{netip.MustParseAddr("203.0.113.10")}
	for _, bad := range []struct{ nat, addr, want string }{
		{"away", "", `no NAT "away"`},
		{"away", "nonsense", `no NAT "away"`}, // the NAT is looked up first
		{"home", "2001:db8::1", "an external address is IPv4"},
		{"home", "203.0.113.10", "is server's"},
		{"home", "nonsense", "address: "},
	} {
		_, err := Call(l.Name, Request{Op: OpRebind, NAT: bad.nat, Address: bad.addr})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("rebind %s --address %q: %v, want %q", bad.nat, bad.addr, err, bad.want)
		}
	}
	l.nodes["home"].Network = "carrier"
	if _, err := Call(l.Name, Request{Op: OpReboot, NAT: "home", Address: "198.51.100.9"}); err == nil || !strings.Contains(err.Error(), "behind nat carrier") {
		t.Errorf("reboot of a nested NAT with a new address: %v", err)
	}
}

// set and flush, by the command or on a schedule, show in the event
// stream.
func TestControlSetFlush(t *testing.T) {
	l, e := eventLab(t)
	events, cancel := l.Events.Subscribe(false)
	defer cancel()
	sendOut(t, e)
	if _, err := Call(l.Name, Request{Op: OpSet, NAT: "home", Preset: "symmetric", Settings: map[string]string{"udp-timeout": "5s"}}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events, observe.KindSet)
	if want := "SET home --preset symmetric --udp-timeout=5s: mapping"; ev.NAT != "home" || !strings.HasPrefix(ev.Text, want) {
		t.Errorf("set event %+v, want text %q...", ev, want)
	}
	sendOut(t, e)
	l.Topo = &Topology{Events: []EventNode{{At: 0, Request: Request{Op: OpFlush, NAT: "home"}}}}
	l.StartEvents(nil)
	defer func() {
		l.stopEvents()
		l.events.Wait()
	}()
	if ev := nextEvent(t, events, observe.KindFlush); ev.NAT != "home" || ev.Text != "FLUSH home: every mapping dropped" {
		t.Errorf("flush event %+v", ev)
	}
	if n := e.LiveMappings(time.Now()); n[table.UDP] != 0 {
		t.Errorf("mappings after the scheduled flush: %v", n)
	}
}

// A move names a host behind a NAT and another NAT's network; anything
// else is refused before anything changes.
func TestControlMoveRefused(t *testing.T) {
	l, _ := eventLab(t)
	l.Topo = &Topology{}
	l.nodes[Public] = &Node{Name: Public, Namespace: "ctl.public", Kind: "public"}
	for _, bad := range []struct{ host, network, want string }{
		{"nobody", "home", `no host "nobody" in lab ctl`},
		{"home", "home", "home is a NAT: only a host moves"},
		{"public", "home", "public is the public network, not a host"},
		{"alice", "nowhere", `no network "nowhere" in lab ctl (a NAT's name: home)`},
		{"alice", "public", "a host moves to a NAT's network, not to public"},
		{"alice", "home", "host alice is on network home already"},
		{"server", "home", "host server is on the public network: only a host behind a NAT moves"},
	} {
		_, err := Call(l.Name, Request{Op: OpMove, Node: bad.host, NAT: bad.network})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("move %s %s: %v, want %q", bad.host, bad.network, err, bad.want)
		}
	}
}

// StartEvents runs each event at its time and again every Every; one
// that fails shows as EVENT-FAILED.
func TestStartEvents(t *testing.T) {
	l, e := eventLab(t)
	l.nodes["server"].Addresses = []netip.Addr{netip.MustParseAddr("203.0.113.10")}
	l.Topo = &Topology{Events: []EventNode{
		{At: 0, Request: Request{Op: OpRebind, NAT: "home", Address: "203.0.113.10"}, Line: 7},
		{At: 50 * time.Millisecond, Every: 100 * time.Millisecond, Request: Request{Op: OpRebind, NAT: "home"}, Line: 9},
	}}
	sendOut(t, e)
	events, cancel := l.Events.Subscribe(false)
	defer cancel()
	start := time.Now()
	l.StartEvents(nil)
	l.StartEvents(nil) // a second call starts nothing more
	defer func() {
		l.stopEvents()
		l.events.Wait()
	}()
	ev := nextEvent(t, events, observe.KindEventFailed)
	if !strings.Contains(ev.Text, "scheduled event rebind home --address 203.0.113.10 (line 7) failed: address 203.0.113.10 is server's") || ev.Node != "home" {
		t.Errorf("failed event %+v", ev)
	}
	for i, want := range []time.Duration{50 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond} {
		ev := nextEvent(t, events, observe.KindRebind)
		if off := ev.Time.Sub(start); off < want || off > want+150*time.Millisecond {
			t.Errorf("rebind #%d at +%s, want +%s", i+1, off, want)
		}
	}
}
