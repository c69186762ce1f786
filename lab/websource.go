package lab

import (
	"context"
	"strings"
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/web"
)

// WebSource presents the lab (or a gonat run NAT) to the web view.
func (l *Lab) WebSource() web.Source { return webSource{l} }

type webSource struct{ l *Lab }

func (s webSource) Snapshot(page web.Page) web.Snapshot {
	st := s.l.Status()
	snap := web.Snapshot{Name: st.Name}
	for _, n := range st.Nodes {
		snap.Nodes = append(snap.Nodes, web.Node{Name: n.Name, Kind: n.Kind, Network: n.Network, Addresses: n.Addresses})
	}
	now := time.Now()
	for _, n := range st.NATs {
		v := web.NAT{NAT: n.NAT}
		// Only the page's mappings, and their first remotes, are copied;
		// the rest are counted.
		v.MappingsTotal = s.l.NAT(n.Name).Engine.MappingWindow(now, page.Offset, page.Limit, page.Remotes, func(m nat.MappingInfo, sessions int) {
			row := observe.MappingOf(n.Name, m, now)
			if sessions > len(m.Remotes) {
				row.RemotesTotal = sessions
			}
			v.Mappings = append(v.Mappings, row)
		})
		snap.NATs = append(snap.NATs, v)
	}
	return snap
}

func (s webSource) Subscribe(ctx context.Context) <-chan web.Event {
	events, cancel := s.l.Events.Subscribe(true)
	out := make(chan web.Event, 256)
	go func() {
		defer close(out)
		defer cancel()
		send := func(ev observe.Event) bool {
			select {
			case out <- web.Event{Time: ev.Time, NAT: ev.NAT, Kind: ev.Kind, Text: plainText(ev.Kind, ev.Text), Reason: ev.Reason}:
			default: // the page shows its own count of what it missed
			}
			return true
		}
		// The links' drops, which no packet event reports, as a line
		// per reason (as table --watch shows them).
		t := time.NewTicker(dropLinesEvery)
		defer t.Stop()
		lines := s.l.linkDropLines()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pollDropLines(lines, send)
			case ev, ok := <-events:
				if !ok {
					return
				}
				send(ev)
			}
		}
	}()
	return out
}

// plainText drops what the page shows in its own columns: the kind in
// front and the drop reason behind.
func plainText(kind, text string) string {
	text = strings.TrimPrefix(text, kind+" ")
	if i := strings.Index(text, "  reason="); i >= 0 {
		text = text[:i]
	}
	return text
}
