package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
)

var (
	ctlHost   = netip.MustParseAddrPort("10.0.1.2:5000")
	ctlServer = netip.MustParseAddrPort("203.0.113.10:3478")
)

// controlLab serves a lab of one NAT, without devices, on a control
// socket under a temporary state root. stopped is closed by OpDown.
func controlLab(t *testing.T) (l *Lab, e *nat.Engine, stopped chan struct{}) {
	t.Helper()
	root := StateRoot
	StateRoot = t.TempDir()
	t.Cleanup(func() { StateRoot = root })
	c, err := table.Preset("full-cone")
	if err != nil {
		t.Fatal(err)
	}
	c.External = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	e, err = nat.New(nat.Config{Table: c, Inside: []nat.InsidePort{
		{Hosts: []netip.Prefix{netip.PrefixFrom(ctlHost.Addr(), 24)}, Gateway: netip.MustParseAddr("10.0.1.1")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l = &Lab{Name: "ctl", Events: observe.NewHub(), nats: map[string]*NAT{"home": {Engine: e}}, natOrder: []string{"home"}}
	l.Events.Attach("home", e, nil)
	stopped = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- l.ServeControl(ctx, func() { close(stopped) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeControl: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := Call(l.Name, Request{Op: OpStatus})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotRunning) || time.Now().After(deadline) {
			t.Fatalf("the control socket does not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return l, e, stopped
}

// sendOut passes one UDP packet from the host to the server through e.
func sendOut(t *testing.T, e *nat.Engine) {
	t.Helper()
	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: ctlHost.Addr(), Dst: ctlServer.Addr(), Protocol: header.ProtoUDP, TTL: 64, ID: 1},
		header.UDPFields{SrcPort: ctlHost.Port(), DstPort: ctlServer.Port()}, []byte("hello"))
	if r := e.Process(1, b[:n], make([]byte, 1500), time.Now()); r.Verdict != nat.Forward {
		t.Fatalf("outbound packet: %v", r.Verdict)
	}
}

// raw sends one request line and returns the answer line as it travels.
func raw(t *testing.T, name, req string) string {
	t.Helper()
	c, err := net.Dial("unix", ControlSocket(name))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// The socket speaks one JSON object per line, and its table carries the
// mapping view under the names gonat table --json prints.
func TestControlWire(t *testing.T) {
	l, e, _ := controlLab(t)
	sendOut(t, e)

	var table struct {
		OK    bool             `json:"ok"`
		Table []map[string]any `json:"table"`
	}
	line := raw(t, l.Name, `{"op":"table"}`)
	if err := json.Unmarshal([]byte(line), &table); err != nil || !table.OK || len(table.Table) != 1 {
		t.Fatalf("table answer %q (%v), want ok and one mapping", line, err)
	}
	var keys []string
	for k := range table.Table[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"age", "bytes_in", "bytes_out", "expires_in", "external", "internal", "nat", "packets_in", "packets_out", "proto", "remotes"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("mapping fields %v, want %v", keys, want)
	}
	if m := table.Table[0]; m["nat"] != "home" || m["internal"] != ctlHost.String() || m["proto"] != "udp" {
		t.Errorf("mapping %v", m)
	}

	if line := raw(t, l.Name, `{"op":"teleport"}`); !strings.Contains(line, `"error":"unknown op \"teleport\" (`+strings.Join(ops, ", ")+`)"`) {
		t.Errorf("unknown op answered %q", line)
	}
	if line := raw(t, l.Name, `not json`); !strings.Contains(line, `"error":"bad request: `) {
		t.Errorf("bad request answered %q", line)
	}
}

func TestControlCalls(t *testing.T) {
	l, e, stopped := controlLab(t)
	sendOut(t, e)

	resp, err := Call(l.Name, Request{Op: OpStatus})
	if err != nil || resp.Status == nil || len(resp.Status.NATs) != 1 {
		t.Fatalf("status: %+v, %v", resp, err)
	}
	if n := resp.Status.NATs[0]; n.Name != "home" || n.Mappings != 1 || n.Packets["forward"] != 1 {
		t.Errorf("NAT status %+v, want home with 1 mapping and 1 packet forwarded", n)
	}

	resp, err = Call(l.Name, Request{Op: OpTable, NAT: "home"})
	if err != nil || len(resp.Table) != 1 || resp.Table[0].Internal != ctlHost.String() || resp.Table[0].Remotes[0] != ctlServer.String() {
		t.Errorf("table of home: %+v, %v", resp.Table, err)
	}
	if _, err := Call(l.Name, Request{Op: OpTable, NAT: "work"}); err == nil || !strings.Contains(err.Error(), `no NAT "work" in lab ctl (NATs: home)`) {
		t.Errorf("table of a NAT not in the lab: %v", err)
	}

	if _, err := Call(l.Name, Request{Op: OpFlush, NAT: "home"}); err != nil {
		t.Fatal(err)
	}
	if resp, err := Call(l.Name, Request{Op: OpTable}); err != nil || len(resp.Table) != 0 {
		t.Errorf("table after flush: %+v, %v", resp.Table, err)
	}

	// A watcher gets the NEW event of the next mapping, its endpoints as
	// fields.
	got := make(chan observe.Event, 1)
	watched := make(chan error, 1)
	go func() {
		watched <- Watch(l.Name, false, func(ev observe.Event) bool { got <- ev; return false })
	}()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case ev := <-got:
			if ev.Kind != "NEW" || ev.NAT != "home" || ev.Internal != ctlHost.String() {
				t.Errorf("watched %+v, want NEW of home for %s", ev, ctlHost)
			}
			break wait
		case <-tick.C:
			// The watcher may not be subscribed yet: a new mapping
			// each time until it sees one.
			e.Flush()
			sendOut(t, e)
		case <-deadline:
			t.Fatal("no event reached the watcher")
		}
	}
	if err := <-watched; err != nil {
		t.Errorf("Watch: %v", err)
	}

	if _, err := Call(l.Name, Request{Op: OpDown}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Error("down did not stop the lab")
	}
	if _, err := Call("nosuchlab", Request{Op: OpStatus}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("a lab without a socket: %v, want ErrNotRunning", err)
	}
}
