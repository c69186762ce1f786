// Package observe makes what the NAT does visible: a hub that fans engine
// events out to watchers (gonat table --watch, the web view), packet
// captures in pcap form on both sides of the translation, and Prometheus
// metrics.
package observe

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonat/gonat/nat"
)

// Event is one line of the event stream, as watchers receive it. Every
// endpoint the text names is also a field of its own, for scripts.
type Event struct {
	Time     time.Time `json:"time"`
	NAT      string    `json:"nat"`
	Kind     string    `json:"kind"` // NEW | REFRESH | EXPIRE | DROP | XLATE, or a network event: LINK | REBIND | REBOOT | SET | FLUSH | MOVE
	Proto    string    `json:"proto"`
	Internal string    `json:"internal,omitempty"` // the inside endpoint
	External string    `json:"external,omitempty"` // the NAT's external endpoint
	Remote   string    `json:"remote,omitempty"`   // the endpoint on the far side of the NAT
	Reason   string    `json:"reason,omitempty"`   // DROP: filtered, no-mapping, ...
	Node     string    `json:"node,omitempty"`     // network events: the node it happened to
	Action   string    `json:"action,omitempty"`   // LINK: down | up
	// MOVE: the host's addresses before and after.
	OldAddress string `json:"old_address,omitempty"`
	NewAddress string `json:"new_address,omitempty"`
	// Count is, on a DROP line for a link's drops (DropLines), how many
	// packets were dropped for Reason since the line before.
	Count uint64 `json:"count,omitempty"`

	// Packet events (XLATE, REFRESH, DROP): which way the packet came
	// (outbound from an inside port, inbound from the outside), its
	// endpoints as it arrived and, unless dropped, as it was sent on.
	Direction             string `json:"direction,omitempty"`
	Source                string `json:"source,omitempty"`
	Destination           string `json:"destination,omitempty"`
	TranslatedSource      string `json:"translated_source,omitempty"`
	TranslatedDestination string `json:"translated_destination,omitempty"`

	Text string `json:"text"`
}

// Hub collects the events of one or more engines and hands each to every
// subscriber without ever blocking the packet path: a subscriber that
// falls behind loses events, and the loss is counted.
type Hub struct {
	mu      sync.Mutex
	subs    map[chan Event]*sub
	engines []*nat.Engine
	forced  bool // tracing on for everyone (--trace)
	refresh map[refreshKey]time.Time
	dropped atomic.Uint64
	created atomic.Uint64
	expired atomic.Uint64
	perNAT  sync.Map // NAT name -> *[2]atomic.Uint64 (created, expired)
}

type sub struct{ packets bool }

type refreshKey struct {
	nat                string
	proto              uint8
	internal, external netip.AddrPort
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{subs: map[chan Event]*sub{}, refresh: map[refreshKey]time.Time{}}
}

// Attach makes the hub the observer of engine e, under the NAT name
// natName. also, if set, gets every raw engine event too.
func (h *Hub) Attach(natName string, e *nat.Engine, also func(nat.Event)) {
	h.mu.Lock()
	h.engines = append(h.engines, e)
	tracing := h.forced || h.packetWatchersLocked() > 0
	h.mu.Unlock()
	e.SetTracing(tracing)
	e.SetObserver(func(ev nat.Event) {
		if also != nil {
			also(ev)
		}
		h.publish(natName, ev)
	})
}

// ForceTracing keeps per-packet events on whether or not anyone watches.
func (h *Hub) ForceTracing(on bool) {
	h.mu.Lock()
	h.forced = on
	h.mu.Unlock()
	h.updateTracing()
}

func (h *Hub) packetWatchersLocked() int {
	n := 0
	for _, s := range h.subs {
		if s.packets {
			n++
		}
	}
	return n
}

// Per-packet events cost a little on the packet path; they are on only
// while someone watches packets.
func (h *Hub) updateTracing() {
	h.mu.Lock()
	on := h.forced || h.packetWatchersLocked() > 0
	engines := append([]*nat.Engine(nil), h.engines...)
	h.mu.Unlock()
	for _, e := range engines {
		e.SetTracing(on)
	}
}

// Subscribe returns a channel of events until cancel is called. packets
// asks for per-packet events too (DROP, REFRESH, XLATE); mapping events
// (NEW, EXPIRE) always come.
func (h *Hub) Subscribe(packets bool) (<-chan Event, func()) {
	ch := make(chan Event, 1024)
	h.mu.Lock()
	h.subs[ch] = &sub{packets: packets}
	h.mu.Unlock()
	h.updateTracing()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
			close(ch)
			h.updateTracing()
		})
	}
}

// Counts reports mappings created and expired, and events lost to slow
// watchers, since the hub started.
func (h *Hub) Counts() (created, expired, dropped uint64) {
	return h.created.Load(), h.expired.Load(), h.dropped.Load()
}

// refreshEvery limits REFRESH to one per mapping per second: a mapping in
// use is refreshed by every packet, which no one wants to read.
const refreshEvery = time.Second

// NATCounts reports mappings created and expired by one NAT.
func (h *Hub) NATCounts(natName string) (created, expired uint64) {
	if v, ok := h.perNAT.Load(natName); ok {
		c := v.(*[2]atomic.Uint64)
		return c[0].Load(), c[1].Load()
	}
	return 0, 0
}

func (h *Hub) natCounter(natName string) *[2]atomic.Uint64 {
	v, _ := h.perNAT.LoadOrStore(natName, new([2]atomic.Uint64))
	return v.(*[2]atomic.Uint64)
}

func (h *Hub) publish(natName string, ev nat.Event) {
	switch ev.Kind {
	case nat.EventCreated:
		h.created.Add(1)
		h.natCounter(natName)[0].Add(1)
	case nat.EventExpired:
		h.expired.Add(1)
		h.natCounter(natName)[1].Add(1)
	}
	out, packet, ok := h.convert(natName, ev)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch, s := range h.subs {
		if packet && !s.packets {
			continue
		}
		select {
		case ch <- out:
		default:
			h.dropped.Add(1)
		}
	}
}

func (h *Hub) convert(natName string, ev nat.Event) (Event, bool, bool) {
	out := Event{Time: ev.Time, NAT: natName, Proto: ev.Proto.String(), Kind: ev.Kind.String()}
	switch ev.Kind {
	case nat.EventCreated, nat.EventExpired:
		out.Internal, out.External = ev.Mapping.Internal.String(), ev.Mapping.External.String()
		out.Text = ev.String()
		return out, false, true
	case nat.EventDrop:
		out.Reason = ev.Verdict.String()
		out.Text = ev.String()
		out.Direction = direction(ev.In)
		if ev.Src.IsValid() {
			out.Source, out.Destination = ev.Src.String(), ev.Dst.String()
			// The far side is the source of what came in, the
			// destination of what went out.
			if ev.In == nat.Outside {
				out.Remote, out.External = out.Source, out.Destination
			} else {
				out.Internal, out.Remote = out.Source, out.Destination
			}
		}
		return out, true, true
	case nat.EventTranslated:
		var k refreshKey
		k.nat, k.proto = natName, uint8(ev.Proto)
		remote := ev.Dst
		if ev.In == nat.Outside {
			k.internal, k.external, remote = ev.NewDst, ev.Dst, ev.Src
		} else {
			k.internal, k.external = ev.Src, ev.NewSrc
		}
		refresh := !ev.Created && !ev.ICMPError
		if refresh {
			// A packet on an existing mapping: at most one REFRESH a
			// second, decided before any text is made for it.
			h.mu.Lock()
			last, seen := h.refresh[k]
			emit := !seen || ev.Time.Sub(last) >= refreshEvery
			if emit {
				if len(h.refresh) > 100000 {
					h.refresh = map[refreshKey]time.Time{}
				}
				h.refresh[k] = ev.Time
			}
			h.mu.Unlock()
			if !emit {
				return out, true, false
			}
		}
		out.Internal, out.External, out.Remote = k.internal.String(), k.external.String(), remote.String()
		out.Direction = direction(ev.In)
		out.Source, out.Destination = ev.Src.String(), ev.Dst.String()
		out.TranslatedSource, out.TranslatedDestination = ev.NewSrc.String(), ev.NewDst.String()
		if !refresh {
			out.Kind = "XLATE"
			out.Text = ev.String()
			return out, true, true
		}
		out.Kind = "REFRESH"
		out.Text = fmt.Sprintf("REFRESH %s %s <-> %s (by %s)", out.Proto, out.Internal, out.External, ev.String())
		return out, true, true
	}
	return out, false, false
}

// direction names the way a packet that came in on port in travels.
func direction(in nat.Port) string {
	if in == nat.Outside {
		return "inbound"
	}
	return "outbound"
}
