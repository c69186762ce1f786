package nat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gonat/gonat/table"
)

// A host that leaves its port leaves its mapping behind: replies to it
// are dropped as no-route, the port's source check refuses it. A free
// port that takes the host's new address carries its packets, through a
// new mapping.
func TestSetInsideHosts(t *testing.T) {
	c, err := table.Preset("full-cone")
	if err != nil {
		t.Fatal(err)
	}
	c.External = []netip.Addr{ext}
	moved := netip.MustParseAddr("10.0.0.9")
	e, err := New(Config{Table: c, Inside: []InsidePort{
		{Hosts: []netip.Prefix{netip.PrefixFrom(hostA, 24)}, Gateway: gw},
		{Free: true, Gateway: gw},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r, p := process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"), t0)
	if r.Verdict != Forward {
		t.Fatalf("outbound before the move: %v", r.Verdict)
	}
	old := p.Src
	if err := e.SetInsideHosts(1, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.SetInsideHosts(2, []netip.Prefix{netip.PrefixFrom(moved, 24)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := process(t, e, Outside, udpPkt(ap(srv1, 3478), old, 64, "y"), t0); r.Verdict != DropNoRoute {
		t.Errorf("reply to the mapping of the host that left: %v, want %v", r.Verdict, DropNoRoute)
	}
	if r, _ := process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"), t0); r.Verdict == Forward {
		t.Error("the port the host left still carries its address")
	}
	r, p = process(t, e, 2, udpPkt(ap(moved, 5000), ap(srv1, 3478), 64, "x"), t0)
	if r.Verdict != Forward || p.Src == old {
		t.Fatalf("outbound after the move: %v from %s (before: %s)", r.Verdict, p.Src, old)
	}
	r, p = process(t, e, Outside, udpPkt(ap(srv1, 3478), p.Src, 64, "y"), t0)
	if r.Verdict != Forward || r.Out != 2 || p.Dst != ap(moved, 5000) {
		t.Errorf("reply after the move: %v to port %d, %s", r.Verdict, r.Out, p.Dst)
	}
	for _, bad := range []struct {
		port Port
		host string
		want string
	}{
		{3, "10.0.0.5/24", "no inside port 3"},
		{1, "10.0.0.9/24", "given twice"},
	} {
		err := e.SetInsideHosts(bad.port, []netip.Prefix{netip.MustParsePrefix(bad.host)})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("SetInsideHosts(%d, %s): %v, want %q", bad.port, bad.host, err, bad.want)
		}
	}
}
