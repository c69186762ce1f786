package nat

import (
	"reflect"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// MappingPages lists what Mappings lists, in the same order, in pages
// bounded by their entries (a mapping and each of its sessions), and
// stops when told to.
func TestMappingPages(t *testing.T) {
	e := newEngine(t, "full-cone")
	for p := uint16(0); p < 50; p++ {
		// Mapping p has p%4+1 sessions.
		for r := uint16(0); r <= p%4; r++ {
			process(t, e, 1, udpPkt(ap(hostA, 5000+p), ap(srv1, 3478+r), 64, "x"), t0)
		}
	}
	now := t0.Add(time.Second)
	var want []MappingInfo
	e.Mappings(now, func(m MappingInfo) { want = append(want, m) })
	if len(want) != 50 {
		t.Fatalf("%d mappings, want 50", len(want))
	}
	for _, size := range []int{1, 7, 1000} {
		var got []MappingInfo
		e.MappingPages(now, size, func(page []MappingInfo) bool {
			n := 0
			for i, m := range page {
				if i > 0 && n >= size {
					t.Errorf("size %d: a page goes on past %d entries", size, n)
				}
				n += 1 + len(m.Remotes)
			}
			got = append(got, page...)
			return true
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("size %d: pages list %d mappings, not those Mappings lists (%d)", size, len(got), len(want))
		}
	}
	pages := 0
	e.MappingPages(now, 1, func([]MappingInfo) bool { pages++; return pages < 3 })
	if pages != 3 {
		t.Errorf("%d pages after fn said stop at the third", pages)
	}
	// Mappings lapsed at now are not listed.
	e.MappingPages(t0.Add(time.Hour), 10, func(page []MappingInfo) bool {
		t.Errorf("a page of %d lapsed mappings", len(page))
		return true
	})
}

// MappingWindow lists a window of what Mappings lists, each mapping's
// remotes cut but counted, and the number of live mappings.
func TestMappingWindow(t *testing.T) {
	e := newEngine(t, "full-cone")
	for p := uint16(0); p < 20; p++ {
		for r := uint16(0); r <= p%5; r++ { // mapping p has p%5+1 sessions
			process(t, e, 1, udpPkt(ap(hostA, 5000+p), ap(srv1, 3478+r), 64, "x"), t0)
		}
	}
	now := t0.Add(time.Second)
	var all []MappingInfo
	e.Mappings(now, func(m MappingInfo) { all = append(all, m) })
	for _, c := range []struct{ first, n, remotes int }{{0, 20, 10}, {0, 5, 2}, {15, 10, 0}, {19, 1, 3}, {20, 5, 1}, {0, 0, 1}} {
		var got []MappingInfo
		live := e.MappingWindow(now, c.first, c.n, c.remotes, func(m MappingInfo, sessions int) {
			full := all[c.first+len(got)]
			if sessions != len(full.Remotes) {
				t.Errorf("%+v: mapping %d has %d sessions, want %d", c, c.first+len(got), sessions, len(full.Remotes))
			}
			full.Remotes = full.Remotes[:min(c.remotes, len(full.Remotes))]
			if len(full.Remotes) == 0 {
				full.Remotes = nil
			}
			if !reflect.DeepEqual(m, full) {
				t.Errorf("%+v: mapping %d is %+v, want %+v", c, c.first+len(got), m, full)
			}
			got = append(got, m)
		})
		if want := max(0, min(c.n, 20-c.first)); live != 20 || len(got) != want {
			t.Errorf("%+v: %d of %d live listed, want %d of 20", c, len(got), live, want)
		}
	}
}

// LiveMappings counts what Mappings lists, per protocol.
func TestLiveMappings(t *testing.T) {
	e := newEngine(t, "full-cone")
	for p := uint16(0); p < 5; p++ {
		process(t, e, 1, udpPkt(ap(hostA, 5000+p), ap(srv1, 3478), 64, "x"), t0)
	}
	process(t, e, 1, tcpPkt(ap(hostA, 6000), ap(srv1, 80), header.TCPSyn), t0)
	want := map[table.Protocol]int{}
	e.Mappings(t0, func(m MappingInfo) { want[m.Proto]++ })
	if got := e.LiveMappings(t0); !reflect.DeepEqual(got, want) || got[table.UDP] != 5 || got[table.TCP] != 1 {
		t.Errorf("LiveMappings %v, want %v (5 UDP, 1 TCP)", got, want)
	}
	if got := e.LiveMappings(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("LiveMappings of lapsed mappings %v, want none", got)
	}
}
