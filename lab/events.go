package lab

// Network events of a running lab: links that fail and return, NATs that
// rebind their mappings or reboot. Each is a control op (docs/control.md)
// and appears in the event stream (observe.Announce) with its time.

import (
	"fmt"
	"strings"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
)

// The network event ops.
const (
	OpLink = "link" // Request.Node's link goes Request.State: down or up
)

// linkPort finds the link of node: a host's is its NAT's inside port for
// it, a NAT's is its own outside port (its uplink).
func (l *Lab) linkPort(node string) (*NAT, string, nat.Port, error) {
	n := l.nodes[node]
	if n == nil {
		return nil, "", 0, fmt.Errorf("no node %q in lab %s", node, l.Name)
	}
	switch n.Kind {
	case "nat":
		if m := l.nats[node]; m != nil {
			return m, node, nat.Outside, nil
		}
	case "host":
		m := l.nats[n.Network]
		if m == nil {
			return nil, "", 0, fmt.Errorf("host %s is on the %s network, not behind a NAT: it has no NAT link to fail", node, n.Network)
		}
		for i, in := range m.spec.Inside {
			if in.Namespace == n.Namespace {
				return m, n.Network, nat.Port(i + 1), nil
			}
		}
	}
	return nil, "", 0, fmt.Errorf("%s %s has no link gonat can fail (a host behind a NAT, or a NAT's uplink)", n.Kind, node)
}

// Link takes node's link down (down true) or brings it back up. Packets
// on it are dropped and counted (link-down) while it is down; mappings
// stay.
func (l *Lab) Link(node string, down bool) error {
	m, natName, port, err := l.linkPort(node)
	if err != nil {
		return err
	}
	changed, err := m.Router.SetLinkDown(port, down)
	if err != nil {
		return err
	}
	state := map[bool]string{true: "down", false: "up"}[down]
	where := "uplink of " + natName
	if port != nat.Outside {
		where = fmt.Sprintf("inside port %d of %s", port, natName)
	}
	text := fmt.Sprintf("LINK %s %s (%s)", node, state, where)
	if !changed {
		text += ", as it was"
	}
	l.Events.Announce(observe.Event{NAT: natName, Kind: observe.KindLink, Node: node, Action: state, Text: text})
	return nil
}

// parseLinkState reads a link op's state word.
func parseLinkState(s string) (down bool, err error) {
	switch strings.ToLower(s) {
	case "down":
		return true, nil
	case "up":
		return false, nil
	}
	return false, fmt.Errorf("link state %q: want down or up", s)
}

// handleEvent answers the network event ops.
func (l *Lab) handleEvent(req Request) error {
	switch req.Op {
	case OpLink:
		down, err := parseLinkState(req.State)
		if err != nil {
			return err
		}
		return l.Link(req.Node, down)
	}
	return fmt.Errorf("unknown op %q", req.Op)
}
