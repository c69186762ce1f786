package nat

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gonat/gonat/table"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	EventCreated    EventKind = iota // a mapping was made
	EventExpired                     // a mapping lapsed
	EventTranslated                  // a packet was translated (tracing only)
	EventDrop                        // a packet was dropped (tracing only)
)

func (k EventKind) String() string {
	switch k {
	case EventCreated:
		return "NEW"
	case EventExpired:
		return "EXPIRE"
	case EventTranslated:
		return "XLATE"
	case EventDrop:
		return "DROP"
	}
	return "?"
}

// MappingInfo is a copy of a mapping, safe to keep after the table moves on.
// Outside the process a mapping travels as observe.Mapping, built from it.
type MappingInfo struct {
	Proto                                    table.Protocol
	Internal                                 netip.AddrPort
	External                                 netip.AddrPort
	Created                                  time.Time
	Expires                                  time.Time
	Remotes                                  []table.SessionInfo
	PacketsOut, PacketsIn, BytesOut, BytesIn uint64
}

// snapshot copies what m holds; an alias's host stands in for it (NAT64).
func (e *Engine) snapshot(m *table.Mapping) MappingInfo {
	mi := MappingInfo{
		Proto: m.Proto(), Internal: e.unalias(m.Internal()), External: m.External(),
		Created: m.Created(), Expires: m.Expires(),
		PacketsOut: m.PacketsOut(), PacketsIn: m.PacketsIn(), BytesOut: m.BytesOut(), BytesIn: m.BytesIn(),
	}
	m.Sessions(func(s table.SessionInfo) bool {
		mi.Remotes = append(mi.Remotes, s)
		return true
	})
	return mi
}

// Event is one thing the engine reports to its observer.
type Event struct {
	Kind    EventKind
	Time    time.Time
	Proto   table.Protocol
	Mapping MappingInfo // EventCreated, EventExpired

	// EventTranslated / EventDrop (only while tracing):
	Verdict        Verdict
	In, Out        Port
	Src, Dst       netip.AddrPort // before translation
	NewSrc, NewDst netip.AddrPort // after translation
	Created        bool           // the packet made a new mapping
	Hairpin        bool
	ICMPError      bool
	ICMPLimited    bool // EventDrop: the ICMP error answering it was held back by the rate limits
}

// String renders the event the way `gonat run -v` and --trace print it:
//
//	udp 10.0.0.2:5000 -> 203.0.113.1:3478  =>  198.51.100.1:40001 -> 203.0.113.1:3478  (new mapping)
func (ev Event) String() string {
	var b strings.Builder
	switch ev.Kind {
	case EventCreated, EventExpired:
		fmt.Fprintf(&b, "%s %s %s <-> %s", ev.Kind, ev.Proto, ev.Mapping.Internal, ev.Mapping.External)
		if ev.Kind == EventCreated {
			fmt.Fprintf(&b, " expires-in %s", ev.Mapping.Expires.Sub(ev.Time).Round(time.Second))
		}
	case EventTranslated:
		fmt.Fprintf(&b, "%s %s -> %s  =>  %s -> %s", protoName(ev), ev.Src, ev.Dst, ev.NewSrc, ev.NewDst)
		var notes []string
		if ev.Created {
			notes = append(notes, "new mapping")
		}
		if ev.Hairpin {
			notes = append(notes, "hairpin")
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, "  (%s)", strings.Join(notes, ", "))
		}
	case EventDrop:
		if !ev.Src.IsValid() {
			fmt.Fprintf(&b, "DROP packet from %s port  reason=%s", portName(ev.In), ev.Verdict)
			break
		}
		fmt.Fprintf(&b, "DROP %s %s -> %s  reason=%s", protoName(ev), ev.Src, ev.Dst, ev.Verdict)
		if ev.ICMPLimited {
			b.WriteString("  (ICMP error rate-limited)")
		}
	}
	return b.String()
}

func protoName(ev Event) string {
	if ev.ICMPError {
		return "icmp-error"
	}
	return ev.Proto.String()
}

// SetObserver installs fn to receive mapping events (and, while tracing,
// packet events). fn runs on the packet path: it must be quick and must
// not call back into the engine. nil removes it.
func (e *Engine) SetObserver(fn func(Event)) {
	if fn == nil {
		e.observer.Store(nil)
		return
	}
	e.observer.Store(&fn)
}

// SetTracing turns per-packet events on or off.
func (e *Engine) SetTracing(on bool) { e.tracing.Store(on) }

func (e *Engine) emit(ev Event) {
	if fn := e.observer.Load(); fn != nil {
		(*fn)(ev)
	}
}

func portName(p Port) string {
	if p == Outside {
		return "the outside"
	}
	return fmt.Sprintf("inside %d", int(p))
}
