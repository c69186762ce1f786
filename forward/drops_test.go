package forward

import (
	"slices"
	"testing"

	"github.com/gonat/gonat/impair"
)

// Drops reports each reason DropReasons lists, in that order, each with
// a meaning, and reads the counters the packet path adds to.
func TestDropsReportsEveryReason(t *testing.T) {
	r := &Router{}
	r.links.drops.Add(3)
	r.impairDrops[impair.Loss].Add(5)
	r.impairDrops[impair.QueueOverflow].Add(7)
	var reasons []string
	got := map[string]uint64{}
	r.Drops(func(reason string, n uint64) {
		reasons = append(reasons, reason)
		got[reason] = n
	})
	if !slices.Equal(reasons, DropReasons()) {
		t.Errorf("Drops reported %v, DropReasons lists %v", reasons, DropReasons())
	}
	want := map[string]uint64{"link-down": 3, "impair-loss": 5, "queue-overflow": 7}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	for _, reason := range DropReasons() {
		if DropMeaning(reason) == "" {
			t.Errorf("%s has no meaning", reason)
		}
	}
}
