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
//	GET /events        server-sent events: "nat" (an Event, JSON), "snapshot"
//	                   (a Snapshot, JSON, once a second), "dropped" (how many
//	                   events this connection missed because it was too slow)
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
	"time"

	"github.com/gonat/gonat/observe"
)

// Source is what the page shows. The lead adapts running NATs and labs to
// it.
type Source interface {
	// Snapshot returns the current state. It is called about once a
	// second per open page, so it should be cheap.
	Snapshot() Snapshot
	// Subscribe returns live events until ctx ends; the channel is
	// closed then. A source must never block on a slow subscriber: it
	// drops (and may count) the events the subscriber has no room for.
	// The handler keeps a single subscription open while pages are
	// connected, however many there are.
	Subscribe(ctx context.Context) <-chan Event
}

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

// NAT is one NAT's behaviour, counters and live mappings.
type NAT struct {
	Name           string `json:"name"`
	Mapping        string `json:"mapping"`         // endpoint-independent | address-dependent | address-and-port-dependent (or eim, adm, apdm)
	Filtering      string `json:"filtering"`       // the same, for filtering (or eif, adf, apdf)
	PortAssignment string `json:"port_assignment"` // preserve | sequential | random
	Hairpin        bool   `json:"hairpin"`
	// Packets counts packets per verdict: forward, filtered,
	// no-mapping, ... (as in gonat lab status).
	Packets map[string]uint64 `json:"packets"`
	// Mappings are the live mappings, in the form gonat table --json
	// prints them.
	Mappings []observe.Mapping `json:"mappings"`
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

// Handler returns the live view of src. It subscribes to src while at
// least one page is connected to /events, and remembers the last events
// it saw so that a page opened (or reloaded) later shows them too.
func Handler(src Source) http.Handler {
	return newServer(src)
}

// ListenAndServe listens on addr (the lead passes 127.0.0.1:PORT; port 0
// picks a free one) and serves Handler(src) in the background until ctx
// ends; open event streams end then too. It returns the address it
// listens on. Unlike Handler alone, it keeps its subscription to src for
// its whole life, so a page opened later shows the events before it.
func ListenAndServe(ctx context.Context, addr string, src Source) (net.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := newServer(src)
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
