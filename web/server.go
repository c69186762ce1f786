package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonat/gonat/table"
)

//go:embed assets
var assets embed.FS

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

type server struct {
	src        Source
	hub        *hub
	mux        *http.ServeMux
	tick       time.Duration // how often /events sends a snapshot
	maxStreams int64
	stats      *Stats

	// The event streams' snapshot, shared: made at most once per half
	// tick however many pages are open.
	snapMu   sync.Mutex
	snapAt   time.Time
	snapJSON []byte
}

// streamSnapshot is the default page's snapshot as JSON for the event
// streams: a copy at most half a tick old.
func (s *server) streamSnapshot() []byte {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.snapJSON != nil && time.Since(s.snapAt) < s.tick/2 {
		return s.snapJSON
	}
	b, err := json.Marshal(s.src.Snapshot(defaultPage))
	if err != nil {
		return nil
	}
	s.snapJSON, s.snapAt = b, time.Now()
	return b
}

func newServer(src Source, opts Options) *server {
	s := &server{src: src, hub: newHub(src), mux: http.NewServeMux(), tick: time.Second,
		maxStreams: int64(opts.MaxStreams), stats: opts.Stats}
	if s.maxStreams <= 0 {
		s.maxStreams = DefaultMaxStreams
	}
	if s.stats == nil {
		s.stats = new(Stats)
	}
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.HandleFunc("GET /api/snapshot", func(w http.ResponseWriter, r *http.Request) {
		page, err := pageOf(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, s.src.Snapshot(page))
	})
	s.mux.HandleFunc("GET /events", s.events)
	s.mux.HandleFunc("GET /topology.svg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "no-store")
		// The lone drawing carries its own <style>.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		// ?inline leaves the styles out, for the page to put it in
		// its own.
		_, inline := r.URL.Query()["inline"]
		svg := topology(s.src.Snapshot(Page{}), !inline)
		if svg == "" {
			svg = `<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>`
		}
		fmt.Fprintln(w, svg)
	})
	sub, _ := fs.Sub(assets, "assets")
	s.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(sub)))
	return s
}

// defaultPage is the mappings the page and the event stream show.
var defaultPage = Page{Limit: DefaultPageLimit, Remotes: DefaultRemotes}

// pageOf reads ?offset=N&limit=N&remotes=N of /api/snapshot; a limit
// above MaxPageLimit is cut to it, remotes above MaxRemotes to that.
func pageOf(r *http.Request) (Page, error) {
	p := defaultPage
	q := r.URL.Query()
	for _, f := range []struct {
		name string
		v    *int
	}{{"offset", &p.Offset}, {"limit", &p.Limit}, {"remotes", &p.Remotes}} {
		if s := q.Get(f.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return Page{}, fmt.Errorf("%s=%q: want a number from 0", f.name, s)
			}
			*f.v = n
		}
	}
	p.Limit = min(p.Limit, MaxPageLimit)
	p.Remotes = min(p.Remotes, MaxRemotes)
	return p, nil
}

// moreText follows a mapping's remotes when the snapshot cut them:
// shown of total.
func moreText(shown, total int) string {
	if total <= shown {
		return ""
	}
	return fmt.Sprintf(" and %d more", total-shown)
}

// shownText is the mapping count of a NAT's table caption: the total, and
// how many the page shows when that is fewer.
func shownText(shown, total int) string {
	if shown >= total {
		return countText(total)
	}
	return fmt.Sprintf("%s (the first %d shown)", countText(total), shown)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	s.mux.ServeHTTP(w, r)
}

// events streams server-sent events: first a snapshot and the
// remembered events the page has not seen, then live ones, a snapshot
// every tick, and how many events this connection missed whenever that
// number grows.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	// Each stream holds a connection, a goroutine, a queue and a
	// snapshot a second: past the cap, a new one is turned away (the
	// browser's EventSource does not retry a 503).
	if n := s.stats.open.Add(1); n > s.maxStreams {
		s.stats.open.Add(-1)
		s.stats.refused.Add(1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("too many event streams: %d are open, the most this gonat serves (--web-streams); close a page, or raise it", s.maxStreams),
			http.StatusServiceUnavailable)
		return
	}
	defer s.stats.open.Add(-1)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("after")
	}
	c, backlog, leave := s.hub.join(s.hub.after(last))
	defer leave()
	w.WriteHeader(http.StatusOK)

	ctx := r.Context()
	var buf bytes.Buffer
	sendJSON := func(event, id string, data []byte) {
		if data == nil {
			return
		}
		if id != "" {
			buf.WriteString("id: " + id + "\n")
		}
		buf.WriteString("event: " + event + "\ndata: ")
		buf.Write(data)
		buf.WriteString("\n\n")
	}
	send := func(event, id string, v any) {
		if data, err := json.Marshal(v); err == nil {
			sendJSON(event, id, data)
		}
	}
	// flush writes what is queued; a page that takes more than 10 s to
	// accept it is gone.
	flush := func() bool {
		err := rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		buf.Reset()
		return rc.Flush() == nil
	}
	sendEvent := func(n numbered) { send("nat", s.hub.id(n.Seq), n.Event) }

	buf.WriteString("retry: 2000\n\n")
	sendJSON("snapshot", "", s.streamSnapshot())
	for _, n := range backlog {
		sendEvent(n)
	}
	if !flush() {
		return
	}
	tick := time.NewTicker(s.tick)
	defer tick.Stop()
	var reported uint64
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-c.ch:
			sendEvent(n)
			// Send what else is queued in one write.
		more:
			for range clientQueue {
				select {
				case n := <-c.ch:
					sendEvent(n)
				default:
					break more
				}
			}
		case <-tick.C:
			sendJSON("snapshot", "", s.streamSnapshot())
			if d := c.dropped.Load(); d != reported {
				reported = d
				send("dropped", "", map[string]uint64{"dropped": d})
			}
		}
		if !flush() {
			return
		}
	}
}

// The page's view of the state, everything already formatted.
type pageView struct {
	Name     string
	SVG      template.HTML
	NATs     []natView
	Events   []eventView // newest first
	LastID   string
	Time     string
	NoEvents bool
	Kinds    []term // the legend
	Verdicts []term
	// Behaviours is behaviourWords as JSON, for the page's script.
	Behaviours string
}

type natView struct {
	Name, Classic      string
	Mapping, Filtering behaviourView
	PortAssignment     string
	Hairpin            string
	Counters           []counterView
	Mappings           []mappingView
	MappingCount       string
}

type behaviourView struct{ long, short string }

func (b behaviourView) Long() string  { return b.long }
func (b behaviourView) Short() string { return b.short }

type counterView struct {
	Verdict, Count, Meaning string
	Drop                    bool
}

type mappingView struct {
	Key, Proto, Internal, External, Remotes, ExpiresIn, PacketsOut, PacketsIn string
	AnyRemote                                                                 bool
}

type eventView struct {
	ID, Time, ISOTime, NAT, Kind, Text, Reason string
	KindMeaning, ReasonMeaning                 string
}

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	snap := s.src.Snapshot(defaultPage)
	recent, last := s.hub.recent(0)
	v := pageView{
		Name:       snap.Name,
		SVG:        template.HTML(topology(snap, false)), // topology escapes every name and address
		LastID:     s.hub.id(last),
		Time:       time.Now().Format("15:04:05"),
		Kinds:      eventKinds,
		Verdicts:   verdicts,
		Behaviours: behaviourWordsJSON,
	}
	for _, n := range snap.NATs {
		v.NATs = append(v.NATs, viewNAT(n))
	}
	for i := len(recent) - 1; i >= 0; i-- {
		v.Events = append(v.Events, viewEvent(s.hub.id(recent[i].Seq), recent[i].Event))
	}
	v.NoEvents = len(v.Events) == 0
	var out bytes.Buffer
	if err := pageTmpl.Execute(&out, v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(out.Bytes())
}

func viewNAT(n NAT) natView {
	v := natView{
		Name:           n.Name,
		Classic:        classic(n.Mapping, n.Filtering),
		Mapping:        behaviour(n.Mapping, false),
		Filtering:      behaviour(n.Filtering, true),
		PortAssignment: n.PortAssignment,
		Hairpin:        "off",
		MappingCount:   shownText(len(n.Mappings), n.MappingsTotal),
	}
	if n.Hairpin {
		v.Hairpin = "on"
	}
	for _, verdict := range verdictOrder(n.Packets) {
		v.Counters = append(v.Counters, counterView{Verdict: verdict, Count: group(n.Packets[verdict]),
			Meaning: meaning(verdicts, verdict), Drop: verdict != "forward"})
	}
	anyRemote := v.Filtering.long == table.EndpointIndependent.String()
	for _, m := range n.Mappings {
		mv := mappingView{
			Key:        m.Proto + " " + m.Internal + " " + m.External,
			Proto:      m.Proto,
			Internal:   m.Internal,
			External:   m.External,
			ExpiresIn:  expires(m.ExpiresIn),
			PacketsOut: group(m.PacketsOut),
			PacketsIn:  group(m.PacketsIn),
		}
		switch {
		case anyRemote:
			mv.Remotes, mv.AnyRemote = "anyone", true
		case len(m.Remotes) == 0:
			mv.Remotes = "—"
		default:
			mv.Remotes = strings.Join(m.Remotes, ", ") + moreText(len(m.Remotes), m.RemotesTotal)
		}
		v.Mappings = append(v.Mappings, mv)
	}
	return v
}

func viewEvent(id string, e Event) eventView {
	return eventView{ID: id, Time: e.Time.Format("15:04:05.000"), ISOTime: e.Time.Format(time.RFC3339Nano),
		NAT: e.NAT, Kind: e.Kind, Text: e.Text, Reason: e.Reason,
		KindMeaning: meaning(eventKinds, e.Kind), ReasonMeaning: meaning(verdicts, e.Reason)}
}

// verdictOrder lists forward first, then the drops, most frequent first.
func verdictOrder(c map[string]uint64) []string {
	var vs []string
	for k := range c {
		vs = append(vs, k)
	}
	sort.Slice(vs, func(i, j int) bool {
		a, b := vs[i], vs[j]
		if (a == "forward") != (b == "forward") {
			return a == "forward"
		}
		if c[a] != c[b] {
			return c[a] > c[b]
		}
		return a < b
	})
	return vs
}

// behaviourWord is how the page's script names one behaviour: the long
// name, the mapping and filtering abbreviations, and every word that
// means it.
type behaviourWord struct {
	Long      string   `json:"long"`
	Mapping   string   `json:"mapping"`
	Filtering string   `json:"filtering"`
	Words     []string `json:"words"`
}

// behaviourWordsJSON gives the script table's vocabulary, so the page
// names behaviours as the server does.
var behaviourWordsJSON = func() string {
	var out []behaviourWord
	for b := table.EndpointIndependent; b <= table.AddressAndPortDependent; b++ {
		out = append(out, behaviourWord{Long: b.String(), Mapping: b.Short(false), Filtering: b.Short(true),
			Words: []string{b.String(), strings.ToLower(b.Short(false)), strings.ToLower(b.Short(true))}})
	}
	j, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	return string(j)
}()

// behaviour names a mapping or filtering behaviour both ways, from any
// name table.ParseBehavior takes; an unknown name is shown as given.
func behaviour(s string, filtering bool) behaviourView {
	b, err := table.ParseBehavior(s)
	if err != nil {
		return behaviourView{s, s}
	}
	return behaviourView{b.String(), b.Short(filtering)}
}

// classic is the RFC 3489 name of a mapping and filtering pair, if it has
// one.
func classic(mapping, filtering string) string {
	m, merr := table.ParseBehavior(mapping)
	f, ferr := table.ParseBehavior(filtering)
	switch {
	case merr != nil:
		return ""
	case m != table.EndpointIndependent:
		// RFC 3489 calls every NAT whose mapping depends on the
		// destination symmetric.
		return "symmetric"
	case ferr != nil:
		return ""
	case f == table.EndpointIndependent:
		return "full cone"
	case f == table.AddressDependent:
		return "restricted cone"
	}
	return "port-restricted cone"
}

// expires formats s seconds left the way the page's script does.
func expires(s int64) string {
	switch {
	case s <= 0:
		return "expiring"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh %02dm", s/3600, s%3600/60)
	}
}

// group writes n with thousands separators, as the page's script does.
func group(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
