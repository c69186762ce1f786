package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
)

// Past MaxStreams, /events answers 503 with a body that says why, counts
// the refusal, and serves again once a stream closes.
func TestEventStreamsCapped(t *testing.T) {
	const max = 3
	var stats Stats
	srv := httptest.NewServer(Handler(newFake(twoHomes()), Options{MaxStreams: max, Stats: &stats}))
	defer srv.Close()
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for range max {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		next(t, stream(t, ctx, srv.URL+"/events", nil), "snapshot", 2*time.Second)
	}
	for i := range 2 {
		resp, err := http.Get(srv.URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many event streams") {
			t.Errorf("stream %d past the cap: %s %q, want 503 saying why", max+i+1, resp.Status, body)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	if stats.Open() != max || stats.Refused() != 2 {
		t.Errorf("open %d refused %d, want %d and 2", stats.Open(), stats.Refused(), max)
	}
	cancels[0]()
	waitFor(t, "a stream to close", func() bool { return stats.Open() == max-1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancels = append(cancels, cancel)
	next(t, stream(t, ctx, srv.URL+"/events", nil), "snapshot", 2*time.Second)
	// The page and the snapshot are not streams: never refused.
	get(t, srv.URL+"/")
	get(t, srv.URL+"/api/snapshot")
}

// bigNAT is a snapshot of one NAT with n mappings.
func bigNAT(n int) Snapshot {
	s := Snapshot{Name: "big", Nodes: []Node{{Name: "public", Kind: "public"}, {Name: "nat", Kind: "nat", Network: "public"}}}
	nat := NAT{NAT: observe.NAT{Name: "nat", Mapping: "eim", Filtering: "eif", Packets: map[string]uint64{}}}
	for i := range n {
		nat.Mappings = append(nat.Mappings, observe.Mapping{Proto: "udp", Internal: fmt.Sprintf("10.0.%d.%d:5000", i/250, i%250+2),
			External: fmt.Sprintf("198.51.100.1:%d", 1024+i), ExpiresIn: 60})
	}
	s.NATs = []NAT{nat}
	return s
}

// /api/snapshot returns a page of each NAT's mappings and their total:
// the first DefaultPageLimit unless asked, never more than MaxPageLimit.
func TestSnapshotPaged(t *testing.T) {
	const n = MaxPageLimit + 500
	srv := httptest.NewServer(Handler(newFake(bigNAT(n)), Options{}))
	defer srv.Close()
	for _, c := range []struct {
		query       string
		count, from int
	}{
		{"", DefaultPageLimit, 0},
		{"?limit=10", 10, 0},
		{"?offset=20&limit=5", 5, 20},
		{fmt.Sprintf("?offset=%d", n-3), 3, n - 3},
		{fmt.Sprintf("?offset=%d", n+1), 0, 0},
		{"?limit=0", 0, 0},
		{"?limit=1000000", MaxPageLimit, 0},
	} {
		body, _ := get(t, srv.URL+"/api/snapshot"+c.query)
		var s Snapshot
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		m := s.NATs[0]
		if len(m.Mappings) != c.count || m.MappingsTotal != n {
			t.Errorf("%q: %d mappings of %d, want %d of %d", c.query, len(m.Mappings), m.MappingsTotal, c.count, n)
			continue
		}
		if c.count > 0 && m.Mappings[0].External != fmt.Sprintf("198.51.100.1:%d", 1024+c.from) {
			t.Errorf("%q: first mapping %s, want the %d-th", c.query, m.Mappings[0].External, c.from)
		}
	}
	for _, q := range []string{"?limit=-1", "?offset=x", "?limit=1e3"} {
		resp, err := http.Get(srv.URL + "/api/snapshot" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: %s, want 400", q, resp.Status)
		}
	}
	// The page shows the total and says how many it lists; so does the
	// drawing.
	page, _ := get(t, srv.URL+"/")
	want := fmt.Sprintf("%d mappings (the first %d shown)", n, DefaultPageLimit)
	if !strings.Contains(page, want) {
		t.Errorf("page lacks %q", want)
	}
	if strings.Count(page, "data-key=") != DefaultPageLimit {
		t.Errorf("page lists %d mappings, want %d", strings.Count(page, "data-key="), DefaultPageLimit)
	}
	if svg, _ := get(t, srv.URL+"/topology.svg"); !strings.Contains(svg, fmt.Sprintf("%d mappings", n)) {
		t.Errorf("drawing lacks the total %d", n)
	}
}

// However many pages are open, the source makes about two snapshots a
// tick for all of them, not one per page.
func TestStreamsShareSnapshots(t *testing.T) {
	const pages, ticks = 10, 20
	src := newFake(twoHomes())
	s := newServer(src, Options{})
	s.tick = 50 * time.Millisecond
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var chs []<-chan sse
	for range pages {
		chs = append(chs, stream(t, ctx, srv.URL+"/events", nil))
	}
	for range ticks {
		for _, ch := range chs {
			next(t, ch, "snapshot", time.Second)
		}
	}
	// Each page got ticks snapshots: pages*ticks without sharing.
	if n := src.snapshots.Load(); n > 3*ticks+pages {
		t.Errorf("%d snapshots made for %d pages over %d ticks, want at most %d", n, pages, ticks, 3*ticks+pages)
	}
}

// A mapping's remotes are cut too: the first DefaultRemotes and their
// number unless asked (?remotes=N, at most MaxRemotes); the page says how
// many more there are.
func TestSnapshotRemotesCut(t *testing.T) {
	const n = DefaultRemotes + 50
	s := bigNAT(2)
	s.NATs[0].Filtering = table.AddressAndPortDependent.String() // the page lists the remotes
	for i := range n {
		s.NATs[0].Mappings[0].Remotes = append(s.NATs[0].Mappings[0].Remotes, fmt.Sprintf("203.0.113.%d:%d", i%250+1, 1000+i))
	}
	srv := httptest.NewServer(Handler(newFake(s), Options{}))
	defer srv.Close()
	for _, c := range []struct {
		query        string
		shown, total int
	}{
		{"", DefaultRemotes, n},
		{"?remotes=10", 10, n},
		{"?remotes=0", 0, n},
		{fmt.Sprintf("?remotes=%d", n), n, 0},
		{"?remotes=1000000", n, 0},
	} {
		body, _ := get(t, srv.URL+"/api/snapshot"+c.query)
		var s Snapshot
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		m := s.NATs[0].Mappings[0]
		if len(m.Remotes) != c.shown || m.RemotesTotal != c.total {
			t.Errorf("%q: %d remotes, remotes_total %d; want %d, %d", c.query, len(m.Remotes), m.RemotesTotal, c.shown, c.total)
		}
		if c.total == 0 && strings.Contains(body, "remotes_total") {
			t.Errorf("%q: remotes_total of a mapping shown whole", c.query)
		}
	}
	if resp, err := http.Get(srv.URL + "/api/snapshot?remotes=-1"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("?remotes=-1: %v, %v; want 400", resp.Status, err)
	}
	page, _ := get(t, srv.URL+"/")
	if !strings.Contains(page, ", 203.0.113.100:1099 and 50 more</td>") {
		t.Errorf("page lacks the first %d remotes followed by \"and 50 more\"", DefaultRemotes)
	}
}
