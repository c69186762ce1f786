package web

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var rectRE = regexp.MustCompile(`<g class="node (\w+)" data-name="([^"]*)"><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"`)

type rect struct {
	kind, name string
	x, y, w, h float64
}

func rects(t *testing.T, svg string) map[string]rect {
	t.Helper()
	out := map[string]rect{}
	for _, m := range rectRE.FindAllStringSubmatch(svg, -1) {
		f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		out[m[2]] = rect{m[1], m[2], f(m[3]), f(m[4]), f(m[5]), f(m[6])}
	}
	return out
}

func TestTopologyLayout(t *testing.T) {
	// cgnat: two homes behind a carrier NAT, a server on the public
	// network.
	s := Snapshot{Name: "cgnat", Nodes: []Node{
		{Name: "alice", Kind: "host", Network: "home1", Addresses: []string{"10.0.1.2"}},
		{Name: "bob", Kind: "host", Network: "home2", Addresses: []string{"10.0.1.2"}},
		{Name: "server", Kind: "host", Network: "public", Addresses: []string{"203.0.113.10", "203.0.113.11"}},
		{Name: "carrier", Kind: "nat", Network: "public", Addresses: []string{"198.51.100.1"}},
		{Name: "home1", Kind: "nat", Network: "carrier", Addresses: []string{"100.64.0.2"}},
		{Name: "home2", Kind: "nat", Network: "carrier", Addresses: []string{"100.64.0.3"}},
		{Name: "public", Kind: "public"},
	}}
	svg := topology(s, true)
	wellFormed(t, svg)
	r := rects(t, svg)
	if len(r) != 7 {
		t.Fatalf("%d boxes, want 7:\n%s", len(r), svg)
	}
	below := func(a, b string) {
		if r[a].y <= r[b].y+r[b].h {
			t.Errorf("%s (y %.0f) not below %s (y %.0f..%.0f)", a, r[a].y, b, r[b].y, r[b].y+r[b].h)
		}
	}
	below("carrier", "public")
	below("server", "public")
	below("home1", "carrier")
	below("home2", "carrier")
	below("alice", "home1")
	below("bob", "home2")
	if r["server"].y != r["carrier"].y {
		t.Errorf("server and carrier on different rows")
	}
	// Each home above its own host; siblings side by side, not
	// overlapping; the public network spans everything.
	for _, pair := range [][2]string{{"home1", "alice"}, {"home2", "bob"}} {
		a, b := r[pair[0]], r[pair[1]]
		if ac, bc := a.x+a.w/2, b.x+b.w/2; ac != bc {
			t.Errorf("%s centred at %.1f, %s at %.1f", pair[0], ac, pair[1], bc)
		}
	}
	if r["home1"].x+r["home1"].w > r["home2"].x || r["carrier"].x+r["carrier"].w > r["server"].x {
		t.Errorf("siblings overlap: %+v", r)
	}
	for _, b := range r {
		if b.x < r["public"].x || b.x+b.w > r["public"].x+r["public"].w {
			t.Errorf("%s sticks out of the public network", b.name)
		}
	}
	for _, want := range []string{"<style>", "Topology of cgnat", "host alice (10.0.1.2) on home1"} {
		if !strings.Contains(svg, want) {
			t.Errorf("drawing lacks %q", want)
		}
	}
	if strings.Contains(topology(s, false), "<style>") {
		t.Errorf("inline drawing carries its own styles")
	}

	// A loop of upstreams, an unknown upstream and no public node still
	// draw every box, under the public network.
	loop := Snapshot{Nodes: []Node{
		{Name: "a", Kind: "nat", Network: "b"},
		{Name: "b", Kind: "nat", Network: "a"},
		{Name: "c", Kind: "nat", Network: "nowhere"},
		{Name: "h", Kind: "host", Network: "a"},
	}}
	svg = topology(loop, true)
	wellFormed(t, svg)
	r = rects(t, svg)
	if len(r) != 5 {
		t.Fatalf("%d boxes, want 5:\n%s", len(r), svg)
	}
	below("h", "a")
	if r["a"].y != r["c"].y || r["b"].y != r["c"].y {
		t.Errorf("looped NATs not on the first row: %+v", r)
	}
	if topology(Snapshot{}, false) != "" {
		t.Error("empty snapshot drew something")
	}
}
