package observe

import (
	"fmt"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/nat"
)

// DropCounter is one layer of a NAT that drops packets and counts them
// by reason: the engine by its verdicts (EngineDrops), the forwarding
// plane by what its links lose (forward.Router: link-down, impair-loss,
// queue-overflow). Drops calls fn for every reason the layer counts and
// the count so far, zeros included, always in the same order.
type DropCounter interface {
	Drops(fn func(reason string, n uint64))
}

var _ DropCounter = (*forward.Router)(nil)

// EngineDrops is the engine as a DropCounter: every verdict that drops a
// packet (all but forward and fragment-held), by its name.
type EngineDrops struct{ Engine *nat.Engine }

// Drops implements DropCounter.
func (d EngineDrops) Drops(fn func(reason string, n uint64)) {
	for _, v := range nat.Verdicts() {
		if IsDrop(v.String()) {
			fn(v.String(), d.Engine.Count(v))
		}
	}
}

// IsDrop reports whether a reason of a NAT's packet counts (a verdict, a
// link's drop reason) is a drop: all but forward and fragment-held.
func IsDrop(reason string) bool {
	return reason != nat.Forward.String() && reason != nat.HeldFragment.String()
}

// Layers are the DropCounters of one NAT, read one after the other.
type Layers []DropCounter

// Drops implements DropCounter.
func (ls Layers) Drops(fn func(reason string, n uint64)) {
	for _, l := range ls {
		l.Drops(fn)
	}
}

// NATDrops is every drop of one NAT: its engine's verdicts, then its
// links' drops if r is not nil. Each packet is counted once: a packet
// the engine dropped never reached a link, and one a link lost was
// forwarded by the engine (or, read from a down link, never reached it).
func NATDrops(e *nat.Engine, r *forward.Router) DropCounter {
	if r == nil {
		return EngineDrops{e}
	}
	return Layers{EngineDrops{e}, r}
}

// DropMeaning says in a line what a drop reason means, whichever layer
// counts it ("" for an unknown reason).
func DropMeaning(reason string) string {
	if m := forward.DropMeaning(reason); m != "" {
		return m
	}
	for _, v := range nat.Verdicts() {
		if v.String() == reason {
			return v.Meaning()
		}
	}
	return ""
}

// DropLines turns the counts of a DropCounter into DROP events, one per
// reason whose count rose since the last Poll: for the drops no packet
// event reports (a link's), which a watcher would otherwise never see.
type DropLines struct {
	NAT     string
	Counter DropCounter
	last    map[string]uint64
	at      time.Time
}

// Poll returns a DROP event for each reason whose count rose since the
// previous Poll (none on the first, which only takes the counts).
func (d *DropLines) Poll(now time.Time) []Event {
	first := d.last == nil
	if first {
		d.last = map[string]uint64{}
	}
	var out []Event
	d.Counter.Drops(func(reason string, n uint64) {
		prev := d.last[reason]
		d.last[reason] = n
		if first || n <= prev {
			return
		}
		out = append(out, Event{Time: now, NAT: d.NAT, Kind: "DROP", Reason: reason, Count: n - prev,
			Text: fmt.Sprintf("DROP %d packets in %s (%d in all)  reason=%s", n-prev, now.Sub(d.at).Round(time.Millisecond), n, reason)})
	})
	d.at = now
	return out
}
