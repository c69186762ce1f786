package forward

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gonat/gonat/nat"
)

// Link state: the link beyond a port can be taken down and brought back
// (a host's Wi-Fi drops, an uplink fails). While it is down, packets read
// from the port are dropped before the engine sees them (they never
// reached the NAT, so no mapping is made or refreshed by them) and
// packets the NAT would write to it are dropped after translation; both
// are counted by LinkDownDrops. Mappings are not touched.
//
// The drops are counted here, beside the impairment drops, not as an
// engine Verdict: the engine translates and the link is beyond it, and a
// packet written to a down link has already been through the engine as
// forwarded.

// linkState is which ports are down, by port; replaced whole on each
// change, so the packet path reads it with one atomic load per batch.
type linkState []bool

type links struct {
	mu    sync.Mutex // serialises changes
	state atomic.Pointer[linkState]
	drops atomic.Uint64
}

// SetLinkDown takes the link beyond port down (down true) or brings it
// back up. It reports whether the state changed.
func (r *Router) SetLinkDown(port nat.Port, down bool) (bool, error) {
	if int(port) < 0 || int(port) >= len(r.Ports) {
		return false, fmt.Errorf("no port %d (the router has %d)", port, len(r.Ports))
	}
	r.links.mu.Lock()
	defer r.links.mu.Unlock()
	next := make(linkState, len(r.Ports))
	if cur := r.links.state.Load(); cur != nil {
		copy(next, *cur)
	}
	if next[port] == down {
		return false, nil
	}
	next[port] = down
	anyDown := false
	for _, d := range next {
		anyDown = anyDown || d
	}
	if anyDown {
		r.links.state.Store(&next)
	} else {
		r.links.state.Store(nil)
	}
	return true, nil
}

// LinkDown reports whether the link beyond port is down.
func (r *Router) LinkDown(port nat.Port) bool {
	ls := r.links.state.Load()
	return ls != nil && int(port) < len(*ls) && (*ls)[port]
}

// LinkDownDrops counts packets dropped because the link they came from or
// were going to was down.
func (r *Router) LinkDownDrops() uint64 { return r.links.drops.Load() }

// linkDropped reports whether n packets for port to are lost to a down
// link, and counts them if so.
func (r *Router) linkDropped(to nat.Port, n int) bool {
	ls := r.links.state.Load()
	if ls == nil || !(*ls)[to] {
		return false
	}
	r.links.drops.Add(uint64(n))
	return true
}
