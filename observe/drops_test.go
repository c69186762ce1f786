package observe

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
)

// counts is a DropCounter of fixed counts, in the order given.
type counts []struct {
	reason string
	n      uint64
}

func (c counts) Drops(fn func(string, uint64)) {
	for _, x := range c {
		fn(x.reason, x.n)
	}
}

// NATDrops reads the engine's drop verdicts and then the links' drops,
// every reason once, with a meaning for each.
func TestNATDropsReadsBothLayers(t *testing.T) {
	c, err := table.Preset("full-cone")
	if err != nil {
		t.Fatal(err)
	}
	c.External = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	e, err := nat.New(nat.Config{Table: c, Inside: []nat.InsidePort{
		{Hosts: []netip.Prefix{netip.MustParsePrefix("10.0.1.2/24")}, Gateway: netip.MustParseAddr("10.0.1.1")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var order []string
	NATDrops(e, &forward.Router{}).Drops(func(reason string, n uint64) {
		seen[reason]++
		order = append(order, reason)
		if DropMeaning(reason) == "" {
			t.Errorf("%s has no meaning", reason)
		}
	})
	for _, r := range append([]string{"no-mapping", "filtered", "firewall"}, forward.DropReasons()...) {
		if seen[r] != 1 {
			t.Errorf("%s reported %d times, want once", r, seen[r])
		}
	}
	for _, r := range []string{"forward", "fragment-held"} {
		if seen[r] != 0 {
			t.Errorf("%s is not a drop but was reported", r)
		}
	}
	if got := order[len(order)-len(forward.DropReasons()):]; strings.Join(got, ",") != strings.Join(forward.DropReasons(), ",") {
		t.Errorf("the links' reasons come last: got %v", got)
	}
	n := 0
	NATDrops(e, nil).Drops(func(string, uint64) { n++ })
	if n != len(order)-len(forward.DropReasons()) {
		t.Errorf("without a router %d reasons, want the engine's %d", n, len(order)-len(forward.DropReasons()))
	}
}

// DropLines says nothing on its first poll and then a line per reason
// whose count rose, with the rise and the total.
func TestDropLinesOnePerRisingReason(t *testing.T) {
	c := counts{{"link-down", 0}, {"impair-loss", 4}}
	d := DropLines{NAT: "home", Counter: &c}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if evs := d.Poll(t0); len(evs) != 0 {
		t.Fatalf("first poll: %v", evs)
	}
	c[0].n, c[1].n = 12, 4
	evs := d.Poll(t0.Add(time.Second))
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1: %v", len(evs), evs)
	}
	ev := evs[0]
	if ev.Kind != "DROP" || ev.NAT != "home" || ev.Reason != "link-down" || ev.Count != 12 ||
		ev.Text != "DROP 12 packets in 1s (12 in all)  reason=link-down" {
		t.Errorf("event %+v", ev)
	}
	if evs := d.Poll(t0.Add(2 * time.Second)); len(evs) != 0 {
		t.Errorf("nothing rose, got %v", evs)
	}
}
