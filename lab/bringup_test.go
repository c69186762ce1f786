package lab

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// parallel reports the failure of the lowest index, whichever finishes
// first, and every index below it has run: as a loop that stops at the
// first error would report.
func TestParallelFirstErrorInOrder(t *testing.T) {
	for _, w := range []int{1, 2, 4, 16} {
		t.Run(fmt.Sprint(w, " workers"), func(t *testing.T) {
			var mu sync.Mutex
			ran := map[int]bool{}
			err := parallel(100, w, func(i int) error {
				mu.Lock()
				ran[i] = true
				mu.Unlock()
				if i == 30 || i == 31 || i == 70 {
					return fmt.Errorf("item %d", i)
				}
				return nil
			})
			if err == nil || err.Error() != "item 30" {
				t.Fatalf("err = %v, want item 30", err)
			}
			for i := range 31 {
				if !ran[i] {
					t.Errorf("item %d not run, yet below the failure reported", i)
				}
			}
			// Nothing is handed out after a failure. Only one worker
			// bounds what ran: others may take items while item 30
			// runs, as many as the scheduler lets them.
			if w == 1 && len(ran) != 31 {
				t.Errorf("%d items ran with one worker; want 31, none after item 30 failed", len(ran))
			}
		})
	}
}

func TestParallelBoundsWorkers(t *testing.T) {
	var now, most atomic.Int32
	release := make(chan struct{})
	go func() {
		for range 50 {
			release <- struct{}{}
		}
	}()
	if err := parallel(50, 3, func(int) error {
		n := now.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		now.Add(-1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m > 3 {
		t.Fatalf("%d calls at once with 3 workers", m)
	}
	if err := parallel(0, 3, func(int) error { return errors.New("called") }); err != nil {
		t.Fatalf("no items: %v", err)
	}
}

// natLevels puts each NAT after its upstream, the NATs of a depth
// together in topology order.
func TestNATLevels(t *testing.T) {
	topo := &Topology{NATs: []NATNode{
		{Name: "home1", Upstream: "carrier"},
		{Name: "carrier", Upstream: Public},
		{Name: "solo", Upstream: Public},
		{Name: "inner", Upstream: "home1"},
		{Name: "home2", Upstream: "carrier"},
	}}
	var got [][]string
	for _, level := range natLevels(topo) {
		var names []string
		for _, n := range level {
			names = append(names, n.Name)
		}
		got = append(got, names)
	}
	want := [][]string{{"carrier", "solo"}, {"home1", "home2"}, {"inner"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("natLevels = %v, want %v", got, want)
	}
}
