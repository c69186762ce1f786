package lab

// Scheduled network events: [[event]] tables of a topology file, run
// once the lab is ready (StartEvents).
//
//	[[event]]
//	at    = "5s"        # when, after the lab is ready; default: every
//	every = "30s"       # optional: again at this interval
//	link  = "alice"     # one action: link (with state), rebind or reboot
//	state = "down"      # link: down or up
//
//	[[event]]
//	every   = "1m"
//	rebind  = "home"    # or reboot = "home"
//	address = "198.51.100.9"  # optional, as --address
//
//	[[event]]
//	at      = "10s"
//	set     = "home"    # as gonat lab set: a preset and/or settings
//	preset  = "symmetric"
//	udp-timeout = "5s"  # any behaviour setting of table.Settings()
//
//	[[event]]
//	at    = "20s"
//	flush = "home"      # as gonat lab flush
//
//	[[event]]
//	at      = "30s"
//	move    = "alice"   # as gonat lab move alice work
//	network = "work"
import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
)

// Keys of an [[event]] table.
const (
	keyEvent  = "event"
	keyAt     = "at"
	keyEvery  = "every"
	keyLink   = "link"
	keyState  = "state"
	keyRebind = "rebind"
	keyReboot = "reboot"
	keySet    = "set"
	keyFlush  = "flush"
)

// eventActions are the keys that name an event's action, one per event.
var eventActions = []string{keyLink, keyRebind, keyReboot, keySet, keyFlush, keyMove}

var eventKeys = append(append([]string{keyAt, keyEvery, keyState, keyAddress, keyPreset, keyNetwork}, eventActions...), table.SettingNames()...)

// EventNode is one [[event]] entry: a control request to make at At after
// the lab is up and then, if Every is set, every Every.
type EventNode struct {
	At, Every time.Duration
	Request   Request // OpLink, OpRebind, OpReboot, OpSet, OpFlush or OpMove, as the commands send them
	Line      int     // of its [[event]] header, for messages
}

// String says what the event does, as its command would: "link alice down".
func (ev EventNode) String() string {
	r := ev.Request
	switch r.Op {
	case OpLink:
		return fmt.Sprintf("link %s %s", r.Node, r.State)
	case OpSet:
		return "set " + r.NAT + setArgs(r)
	case OpMove:
		return fmt.Sprintf("move %s %s", r.Node, r.NAT)
	}
	s := r.Op + " " + r.NAT
	if r.Address != "" {
		s += " --address " + r.Address
	}
	return s
}

// parseEvent decodes the i-th [[event]] table; names are checked against
// the nodes later (checkEvents).
func (p *parser) parseEvent(i int, m map[string]any) (EventNode, bool) {
	ev := EventNode{Line: p.pos.section(keyEvent, i)}
	line := func(k string) int { return p.pos.key(keyEvent, i, k) }
	who := fmt.Sprintf("event #%d", i+1)
	p.unknownKeys(m, keyEvent, who, eventKeys, line)
	ok := true
	dur := func(k string) (time.Duration, bool) {
		s, given := p.str(m, k, who, line(k), "5s")
		if !given {
			_, present := m[k]
			return 0, !present
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || (k == keyEvery && d < 100*time.Millisecond) {
			min := "0s"
			if k == keyEvery {
				min = "100ms"
			}
			p.errorf(line(k), "%s: %s %q: want a duration of at least %s such as \"5s\"", who, k, s, min)
			return 0, false
		}
		return d, true
	}
	var okAt, okEvery bool
	ev.At, okAt = dur(keyAt)
	ev.Every, okEvery = dur(keyEvery)
	_, hasAt := m[keyAt]
	_, hasEvery := m[keyEvery]
	if !okAt || !okEvery {
		ok = false
	} else if !hasAt && !hasEvery {
		p.errorf(ev.Line, "%s: missing \"at\" or \"every\" (when: e.g. at = \"5s\")", who)
		ok = false
	} else if !hasAt {
		ev.At = ev.Every
	}

	var actions []string
	for _, k := range eventActions {
		if _, has := m[k]; has {
			actions = append(actions, k)
		}
	}
	if len(actions) != 1 {
		p.errorf(ev.Line, "%s: want one action, link = NODE (with state), rebind = NAT, reboot = NAT, set = NAT (with preset or settings), flush = NAT or move = HOST (with network); got %d", who, len(actions))
		return ev, false
	}
	act := actions[0]
	name, given := p.str(m, act, who, line(act), "home")
	if !given {
		return ev, false
	}
	state, hasState := p.str(m, keyState, who, line(keyState), "down")
	addr, hasAddr := p.str(m, keyAddress, who, line(keyAddress), "198.51.100.9")
	preset, settings, behOK := p.behaviorKeys(m, who, line)
	_, hasPreset := m[keyPreset]
	hasBehavior := hasPreset || len(settings) > 0 || !behOK
	if hasBehavior && act != keySet {
		p.errorf(ev.Line, "%s: preset and behaviour settings go with set, not %s", who, act)
		ok = false
	}
	if hasState && act != keyLink {
		p.errorf(line(keyState), "%s: state goes with link, not %s", who, act)
		ok = false
	}
	network, hasNetwork := p.str(m, keyNetwork, who, line(keyNetwork), "work")
	if _, present := m[keyNetwork]; present && act != keyMove {
		p.errorf(line(keyNetwork), "%s: network goes with move, not %s", who, act)
		ok = false
	}
	if hasAddr && act != keyRebind && act != keyReboot {
		p.errorf(line(keyAddress), "%s: address goes with rebind or reboot, not %s", who, act)
		ok = false
	}
	switch act {
	case keyLink:
		ev.Request = Request{Op: OpLink, Node: name, State: state}
		if _, err := parseLinkState(state); !hasState || err != nil {
			p.errorf(line(keyState), "%s: link needs state = \"down\" or \"up\"", who)
			ok = false
		}
	case keySet:
		ev.Request = Request{Op: OpSet, NAT: name, Preset: preset}
		if len(settings) > 0 {
			ev.Request.Settings = settings
		}
		if !behOK {
			ok = false
		} else if !hasBehavior {
			p.errorf(line(act), "%s: set %q: nothing to set: give preset = \"...\" and/or behaviour settings (e.g. filtering = \"eif\")", who, name)
			ok = false
		}
	case keyFlush:
		ev.Request = Request{Op: OpFlush, NAT: name}
	case keyMove:
		ev.Request = Request{Op: OpMove, Node: name, NAT: network}
		if !hasNetwork {
			p.errorf(line(act), "%s: move %q needs network = NAT, the network it moves to", who, name)
			ok = false
		}
	default:
		ev.Request = Request{Op: act, NAT: name, Address: addr}
		if hasAddr {
			if a, err := netip.ParseAddr(addr); err != nil || !a.Is4() {
				p.errorf(line(keyAddress), "%s: address %q: want the NAT's new external IPv4 address", who, addr)
				ok = false
			}
		}
	}
	return ev, ok
}

// checkEvents reports events naming nodes that do not exist or cannot
// take their action.
func (p *parser) checkEvents(t *Topology, events []EventNode, i0 []int) {
	kind := map[string]string{}
	network := map[string]string{}
	for _, n := range t.NATs {
		kind[n.Name], network[n.Name] = "nat", n.Upstream
	}
	for _, h := range t.Hosts {
		kind[h.Name], network[h.Name] = "host", h.Network
	}
	for j, ev := range events {
		who := fmt.Sprintf("event #%d", i0[j]+1)
		r := ev.Request
		switch r.Op {
		case OpLink:
			line := p.pos.key(keyEvent, i0[j], keyLink)
			switch {
			case kind[r.Node] == "":
				p.errorf(line, "%s: link %q: no such host or NAT", who, r.Node)
			case kind[r.Node] == "host" && network[r.Node] == Public:
				p.errorf(line, "%s: link %q: a public host has no NAT link to fail", who, r.Node)
			}
		case OpMove:
			line := p.pos.key(keyEvent, i0[j], keyMove)
			switch {
			case kind[r.Node] != "host":
				p.errorf(line, "%s: move %q: no such host (a host behind a NAT moves)", who, r.Node)
			case network[r.Node] == Public:
				p.errorf(line, "%s: move %q: a public host does not move (only a host behind a NAT: its link is the NAT's inside port)", who, r.Node)
			case kind[r.NAT] != "nat":
				p.errorf(p.pos.key(keyEvent, i0[j], keyNetwork), "%s: move %q: network %q: no such NAT (a host moves to a NAT's network)", who, r.Node, r.NAT)
			default:
				if n := dualStack(t, network[r.Node], r.NAT); n != "" {
					p.errorf(line, "%s: move %q: nat %s has inside6: a host moves between IPv4-only networks", who, r.Node, n)
				}
			}
		default:
			line := p.pos.key(keyEvent, i0[j], r.Op)
			switch {
			case kind[r.NAT] != "nat":
				p.errorf(line, "%s: %s %q: no such NAT", who, r.Op, r.NAT)
			case r.Address != "" && network[r.NAT] != Public:
				p.errorf(p.pos.key(keyEvent, i0[j], keyAddress), "%s: %s %q --address: only a NAT on the public network can take a new address", who, r.Op, r.NAT)
			}
		}
	}
}

// StartEvents starts the topology's [[event]] schedule, its times
// counted from now: a goroutine per event, asleep between its times,
// until the lab closes. Up leaves it to its caller, to call once the lab
// is ready for use (`lab up` once its control socket answers). logf, if
// set, reports events that fail. A second call does nothing.
func (l *Lab) StartEvents(logf func(string, ...any)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Topo == nil || len(l.Topo.Events) == 0 || l.stopEvents != nil || l.closed {
		return
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	l.stopEvents = cancel
	for _, ev := range l.Topo.Events {
		l.events.Add(1)
		go func() {
			defer l.events.Done()
			next := start.Add(ev.At)
			t := time.NewTimer(time.Until(next))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if err := l.handleEvent(ev.Request); err != nil {
					msg := fmt.Sprintf("scheduled event %s (line %d) failed: %v", ev, ev.Line, err)
					logf("%s", msg)
					node := ev.Request.Node // link's
					if node == "" {
						node = ev.Request.NAT // rebind's and reboot's
					}
					l.Events.Announce(observe.Event{Kind: observe.KindEventFailed, Node: node, NAT: ev.Request.NAT, Text: msg})
				}
				if ev.Every <= 0 {
					return
				}
				// Keep to the schedule: a late run does not push the
				// next one back.
				for next = next.Add(ev.Every); !next.After(time.Now()); next = next.Add(ev.Every) {
				}
				t.Reset(time.Until(next))
			}
		}()
	}
}
