package nat

import (
	"reflect"
	"testing"
	"time"
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
