// Package web serves a live view of a running NAT or lab in a browser: the
// topology drawn from its nodes, each NAT's behaviour, packet counters and
// live mappings, and a log of what the NATs do (new mappings, refreshes,
// expiries, drops with their reason, translations).
//
// It is meant for people who study NATs and for teachers: open it on a
// projector while hosts send packets, and watch mappings appear, count
// down and expire. The page is rendered on the server and is complete
// without JavaScript (it then reloads itself every few seconds); with
// JavaScript it follows the NATs live over server-sent events. Everything
// it needs is embedded in the binary: no external fonts, scripts or CDNs.
//
// Routes (relative, so the handler can be mounted under a prefix with
// http.StripPrefix):
//
//	GET /              the page
//	GET /api/snapshot  the Snapshot as JSON
//	GET /api/snapshot?offset=N&limit=N&remotes=N  a page of each NAT's mappings
//	GET /events        server-sent events: "nat" (an Event, JSON), "snapshot"
//	                   (a Snapshot, JSON, once a second), "dropped" (how many
//	                   events this connection missed because it was too slow);
//	                   503 past Options.MaxStreams open at once
//	GET /topology.svg  the topology drawing on its own (for slides)
//	GET /assets/...    the page's CSS and JavaScript
//
// The page shows what anyone who can reach the address can see; serve it
// on a loopback address (127.0.0.1:PORT) unless the audience is meant to
// connect from elsewhere.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gonat/gonat/observe"
)

// Source is what the page shows. The lead adapts running NATs and labs to
// it.
type Source interface {
	// Snapshot returns the current state, each NAT's mappings cut to
	// page. It is called about once a second per open page, so it
	// should be cheap, and cost no more for mappings outside the page
	// than counting them.
	Snapshot(page Page) Snapshot
	// Subscribe returns live events until ctx ends; the channel is
	// closed then. A source must never block on a slow subscriber: it
	// drops (and may count) the events the subscriber has no room for.
	// The handler keeps a single subscription open while pages are
	// connected, however many there are.
	Subscribe(ctx context.Context) <-chan Event
}

// Page selects which of each NAT's live mappings a Snapshot carries: from
// the Offset-th (0 is the first), at most Limit, in the NAT's table order
// (stable while the table does not change). A Limit of 0 carries none,
// only their number. Of each mapping's remotes it carries the first
// Remotes, and their number in RemotesTotal when there are more.
type Page struct{ Offset, Limit, Remotes int }

// DefaultPageLimit is how many mappings of each NAT the page and the
// event stream show, and /api/snapshot returns unless asked
// (?offset=N&limit=N, at most MaxPageLimit): a table of hundreds of
// thousands of mappings costs no more to show than this.
const (
	DefaultPageLimit = 1000
	MaxPageLimit     = 10000
)

// DefaultRemotes is how many remotes of each mapping the page and the
// event stream show, and /api/snapshot returns unless asked
// (?remotes=N, at most MaxRemotes): a mapping with a million sessions
// costs no more to show than this.
const (
	DefaultRemotes = 100
	MaxRemotes     = 10000
)

// In reports whether the i-th mapping belongs to the page.
func (p Page) In(i int) bool { return i >= p.Offset && i-p.Offset < p.Limit }

// Snapshot is the state of a lab or a single NAT at one moment.
type Snapshot struct {
	Name string `json:"name"` // lab or NAT name
	// Nodes are the hosts, NATs and the public network, for the
	// topology drawing, which keeps their order: a source gives them in
	// the same order every time, or the drawing moves between refreshes.
	Nodes []Node `json:"nodes"`
	NATs  []NAT  `json:"nats"`
}

// Node is one box of the topology drawing.
type Node struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // "host" | "nat" | "public"
	// Network is, for hosts, the NAT they sit behind or "public"; for
	// NATs, their upstream ("public" or a NAT's name). Unused for the
	// public network.
	Network   string   `json:"network"`
	Addresses []string `json:"addresses"`
}

// NAT is one NAT's behaviour, counters (the fields lab status shows
// too) and live mappings.
type NAT struct {
	observe.NAT
	// Mappings are the live mappings of the page asked for, in the form
	// gonat table --json prints them.
	Mappings []observe.Mapping `json:"mappings"`
	// MappingsTotal is how many mappings the NAT has, in the page or
	// not.
	MappingsTotal int `json:"mappings_total"`
}

// Event is one line of the event log.
type Event struct {
	Time time.Time `json:"time"`
	NAT  string    `json:"nat"`
	Kind string    `json:"kind"` // NEW | REFRESH | EXPIRE | DROP | XLATE
	// Text is the human line, e.g.
	//   udp 10.0.1.2:5000 -> 203.0.113.10:3478  =>  198.51.100.1:40001 -> 203.0.113.10:3478  (new mapping)
	Text   string `json:"text"`
	Reason string `json:"reason,omitempty"` // for DROP: filtered, no-mapping, ...
}

// Options bound what the clients of the live view can cost.
type Options struct {
	// MaxStreams caps the /events connections open at once; one more is
	// answered 503 Service Unavailable and counted. 0 means
	// DefaultMaxStreams.
	MaxStreams int
	// Stats, if set, counts the streams (for the metrics).
	Stats *Stats
}

// DefaultMaxStreams is enough for a classroom of pages on one lab.
const DefaultMaxStreams = 64

// Stats counts /events connections.
type Stats struct {
	open    atomic.Int64
	refused atomic.Uint64
}

// Open is how many event streams are open.
func (s *Stats) Open() int64 { return s.open.Load() }

// Refused is how many event streams were turned away, over the cap.
func (s *Stats) Refused() uint64 { return s.refused.Load() }

// Handler returns the live view of src. It subscribes to src while at
// least one page is connected to /events, and remembers the last events
// it saw so that a page opened (or reloaded) later shows them too.
func Handler(src Source, opts Options) http.Handler {
	return newServer(src, opts)
}

// ListenAndServe listens on addr (the lead passes 127.0.0.1:PORT; port 0
// picks a free one) and serves Handler(src) in the background until ctx
// ends; open event streams end then too. It returns the address it
// listens on. Unlike Handler alone, it keeps its subscription to src for
// its whole life, so a page opened later shows the events before it.
func ListenAndServe(ctx context.Context, addr string, src Source, opts Options) (net.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := newServer(src, opts)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	release := s.hub.acquire()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// Requests (event streams included) end when ctx ends.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			// Serve only fails this way when the listener breaks;
			// nothing is left to serve then.
			ln.Close()
		}
	}()
	go func() {
		<-ctx.Done()
		release()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	return ln.Addr(), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
