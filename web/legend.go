package web

import (
	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/nat"
)

// term is one entry of the page's legend: a word the page shows and
// what it means.
type term struct{ Name, Meaning string }

// eventKinds are the kinds of the event log, in the order the page offers
// them as filters.
var eventKinds = []term{
	{"NEW", "a mapping was made: an inside endpoint got an external endpoint"},
	{"XLATE", "a packet translated and sent on, before => after: the packet that made a mapping, or an ICMP error"},
	{"REFRESH", "packets on a live mapping kept it alive (at most one line a second per mapping)"},
	{"EXPIRE", "a mapping lapsed: nothing renewed it within its timeout, and its external endpoint is free again"},
	{"DROP", "a packet was not sent on; its reason says why (below)"},
	{"LINK", "a host's link to its NAT, or a NAT's uplink, went down or came up (gonat lab link); packets on a down link count as link-down"},
	{"REBIND", "a NAT moved its live mappings to new external ports, or to a new external address (gonat lab rebind)"},
	{"REBOOT", "a NAT lost every mapping, maybe taking a new external address (gonat lab reboot)"},
	{"SET", "a NAT took a new behaviour, its mappings dropped (gonat lab set)"},
	{"FLUSH", "a NAT's mappings were dropped (gonat lab flush)"},
	{"MOVE", "a host moved to another NAT's network, from its old address to a new one (gonat lab move); its old NAT's mappings lapse"},
	{"EVENT-FAILED", "a scheduled network event ([[event]] in the topology file) could not be made; the text says why"},
}

// verdicts explains every verdict and every drop reason of the links
// beyond the engine: the NAT panels count packets by them, and a DROP's
// reason is one. They come from the engine and the forwarding plane
// themselves, so the legend cannot fall behind them.
var verdicts = func() []term {
	var out []term
	for _, v := range nat.Verdicts() {
		out = append(out, term{v.String(), v.Meaning()})
	}
	for _, r := range forward.DropReasons() {
		out = append(out, term{r, forward.DropMeaning(r)})
	}
	return out
}()

// meaning looks name up in terms ("" when it is not there).
func meaning(terms []term, name string) string {
	for _, t := range terms {
		if t.Name == name {
			return t.Meaning
		}
	}
	return ""
}
