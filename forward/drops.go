package forward

import "github.com/gonat/gonat/impair"

// ReasonLinkDown is the drop reason of packets lost to a down link
// (SetLinkDown).
const ReasonLinkDown = "link-down"

// dropReasons are the reasons the Router drops packets for, in the order
// Drops reports them, each with what it means for people.
var dropReasons = []struct{ reason, meaning string }{
	{ReasonLinkDown, "the link the packet came from or was going to was down (gonat lab link): dropped before the engine saw it, or after it translated it"},
	{impair.Loss.String(), "lost by the link's impairment (loss=, random or Gilbert-Elliott bursts), after the engine counted it as forwarded"},
	{impair.QueueOverflow.String(), "the link's delay or rate queue was full (tail drop), after the engine counted it as forwarded"},
}

// Drops calls fn with every reason the Router drops packets for and the
// count so far, zeros included, always in the same order: the drops on
// the links beyond the engine, which the engine's verdicts do not count.
func (r *Router) Drops(fn func(reason string, n uint64)) {
	fn(ReasonLinkDown, r.LinkDownDrops())
	for why := impair.Loss; why < impair.NumReasons; why++ {
		fn(why.String(), r.ImpairDrops(why))
	}
}

// DropMeaning says in a line what a reason Drops reports means ("" for
// a reason it does not report).
func DropMeaning(reason string) string {
	for _, d := range dropReasons {
		if d.reason == reason {
			return d.meaning
		}
	}
	return ""
}

// DropReasons lists the reasons Drops reports, in its order.
func DropReasons() []string {
	out := make([]string, len(dropReasons))
	for i, d := range dropReasons {
		out[i] = d.reason
	}
	return out
}
