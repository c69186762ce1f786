package observe

import "time"

// Kinds of the network events (Announce): what happened to the lab's
// network rather than to a packet or a mapping.
const (
	KindLink   = "LINK"   // a link went down or came up (Event.Action: down, up)
	KindRebind = "REBIND" // a NAT moved its live mappings to new external ports or address
	KindReboot = "REBOOT" // a NAT lost every mapping, maybe taking a new external address
	KindSet    = "SET"    // a NAT took a new behaviour (its mappings dropped)
	KindFlush  = "FLUSH"  // a NAT's mappings were dropped
	KindMove   = "MOVE"   // a host moved to another NAT's network (Event.NAT), from OldAddress to NewAddress
	// KindEventFailed is a scheduled network event that could not be made.
	KindEventFailed = "EVENT-FAILED"
)

// Announce hands a network event to every subscriber, whether or not it
// watches packets: it is rare, and a log of a failing run needs it. A
// zero Time is now.
func (h *Hub) Announce(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			h.dropped.Add(1)
		}
	}
}
