package web

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
)

func get(t *testing.T, url string) (string, *http.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b), resp
}

func TestPageRendersServerSide(t *testing.T) {
	srv := httptest.NewServer(Handler(newFake(twoHomes())))
	defer srv.Close()
	page, resp := get(t, srv.URL+"/")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, want := range []string{
		"<title>two-homes · gonat live view</title>",
		// the drawing: every node with its addresses
		`<svg xmlns="http://www.w3.org/2000/svg" class="topology"`,
		`data-name="alice"`, `data-name="bob"`, `data-name="stun"`, `data-name="home-a"`,
		">10.0.1.2<", ">10.0.2.2<", ">203.0.113.10<", ">198.51.100.1<", ">198.51.100.2<",
		">public network<", `data-count-nat="home-a">2 mappings<`,
		// behaviour
		`<span class="classic">port-restricted cone</span>`, `<span class="classic">symmetric</span>`,
		`<abbr title="endpoint-independent mapping">EIM</abbr>`, `<abbr title="address-and-port-dependent filtering">APDF</abbr>`,
		`<dd data-f="ports">sequential</dd>`, `<dd data-f="hairpin">on</dd>`,
		// counters, forward first, drops by count
		`<th scope="row" title="` + template.HTMLEscapeString(nat.Forward.Meaning()) + `">forward</th><td class="num">1,234</td>`,
		// mappings, with real headers
		`<th scope="col">Inside endpoint</th>`, `<th scope="col">Remotes admitted</th>`,
		`<tr data-key="udp 10.0.1.2:5000 198.51.100.1:40001"><td>udp</td><td class="ep">10.0.1.2:5000</td><td class="ep">198.51.100.1:40001</td><td class="remotes">203.0.113.10:3478</td><td class="num">4m 31s</td><td class="num">12</td><td class="num">9</td></tr>`,
		`<td class="num">2h 03m</td><td class="num">1,042</td>`,
		`<td class="num">8s</td>`,
		// the log, empty, and the fallback without JavaScript
		`<p id="log-empty" class="empty">No events yet.`,
		`<noscript><meta http-equiv="refresh" content="5"></noscript>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The legend, without JavaScript too: every event kind, and every
	// verdict of the engine with its meaning.
	for _, k := range []string{"NEW", "XLATE", "REFRESH", "EXPIRE", "DROP"} {
		if !strings.Contains(page, `<div data-kind="`+k+`"><dt><span class="kind">`+k+`</span></dt><dd>`) {
			t.Errorf("legend lacks the event kind %s", k)
		}
	}
	for _, v := range nat.Verdicts() {
		if !strings.Contains(page, `<div data-verdict="`+v.String()+`">`) || !strings.Contains(page, "<dd>"+template.HTMLEscapeString(v.Meaning())+"</dd>") {
			t.Errorf("legend lacks the verdict %s (%s)", v, v.Meaning())
		}
	}
	// home-b's drops by count: no-mapping (2) before filtered (1).
	if b := page[strings.Index(page, `data-nat="home-b"`):]; strings.Index(b, ">no-mapping<") > strings.Index(b, ">filtered<") {
		t.Errorf("home-b's counters not by count")
	}
	// No external URLs: everything comes from this server.
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(page); m != "" {
		t.Errorf("page refers outside: %s", m)
	}
}

func TestAssetsEmbedded(t *testing.T) {
	srv := httptest.NewServer(Handler(newFake(twoHomes())))
	defer srv.Close()
	for path, want := range map[string]string{
		"/assets/app.js":  "text/javascript",
		"/assets/app.css": "text/css",
	} {
		body, resp := get(t, srv.URL+path)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("%s: Content-Type %q, want %s", path, ct, want)
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s refers to an external URL", path)
		}
	}
	resp, err := http.Get(srv.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %s", resp.Status)
	}
}

func TestSnapshotJSONRoundTrips(t *testing.T) {
	want := twoHomes()
	want.NATs[0].Mappings[0].Remotes = []string{} // empty and nil both survive
	srv := httptest.NewServer(Handler(newFake(want)))
	defer srv.Close()
	body, resp := get(t, srv.URL+"/api/snapshot")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var got Snapshot
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	for _, key := range []string{`"name"`, `"nodes"`, `"nats"`, `"kind"`, `"network"`, `"addresses"`, `"mapping"`, `"filtering"`,
		`"port_assignment"`, `"hairpin"`, `"packets"`, `"mappings"`, `"nat"`, `"proto"`, `"internal"`, `"external"`, `"remotes"`,
		`"expires_in"`, `"age"`, `"packets_out"`, `"packets_in"`, `"bytes_out"`, `"bytes_in"`} {
		if !strings.Contains(body, key+":") {
			t.Errorf("JSON lacks key %s", key)
		}
	}
	if m := regexp.MustCompile(`"[A-Z][A-Za-z]*":`).FindString(body); m != "" {
		t.Errorf("JSON has an upper-case key %s", m)
	}
	if m := regexp.MustCompile(`"[a-z]+[A-Z][A-Za-z]*":`).FindString(body); m != "" {
		t.Errorf("JSON has a camelCase key %s: the mapping view is snake_case, as gonat table --json", m)
	}
	if !strings.Contains(body, `"expires_in": 271,`) {
		t.Errorf("expires_in not in seconds:\n%s", body)
	}
}

type sse struct{ event, id, data string }

// stream opens /events and delivers its events on a channel, closed when
// the stream ends.
func stream(t *testing.T, ctx context.Context, url string, header http.Header) <-chan sse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	ch := make(chan sse, 1024)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		var e sse
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if e.event != "" || e.data != "" {
					select {
					case ch <- e:
					case <-ctx.Done():
						return
					}
				}
				e = sse{}
			case strings.HasPrefix(line, "event: "):
				e.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				e.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				e.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// next returns the next event of the given kind, skipping others.
func next(t *testing.T, ch <-chan sse, kind string, within time.Duration) sse {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended waiting for %q", kind)
			}
			if e.event == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", kind, within)
		}
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEventsStream(t *testing.T) {
	src := newFake(twoHomes())
	srv := httptest.NewServer(Handler(src))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := stream(t, ctx, srv.URL+"/events", nil)

	// A snapshot right away, so the page is current at once.
	first := next(t, ch, "snapshot", 2*time.Second)
	var s Snapshot
	if err := json.Unmarshal([]byte(first.data), &s); err != nil || s.Name != "two-homes" {
		t.Fatalf("snapshot %q: %v", first.data, err)
	}
	waitFor(t, "the subscription", func() bool { return src.active() == 1 })

	want := Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 5e6, time.UTC), NAT: "home-b", Kind: "DROP",
		Text: "udp 203.0.113.11:3478 -> 198.51.100.2:51234  dropped", Reason: "filtered"}
	src.emit(want)
	e := next(t, ch, "nat", 2*time.Second)
	var got Event
	if err := json.Unmarshal([]byte(e.data), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event %+v, want %+v", got, want)
	}
	if !regexp.MustCompile(`^[0-9a-f]+-1$`).MatchString(e.id) {
		t.Errorf("event id %q", e.id)
	}

	// Snapshots keep coming, at least every 2 s, and show changes:
	// the expired mapping disappears.
	src.set(withoutMapping(twoHomes()))
	start := time.Now()
	for i := 0; i < 2; i++ {
		e := next(t, ch, "snapshot", 2*time.Second)
		if i == 1 {
			if strings.Contains(e.data, "10.0.1.2:5000") {
				t.Errorf("snapshot still has the expired mapping")
			}
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("two snapshots took %v", d)
	}
	if n := src.subscribed.Load(); n != 1 {
		t.Errorf("%d subscriptions for one page, want 1", n)
	}
}

func TestEventsTick(t *testing.T) {
	src := newFake(twoHomes())
	s := newServer(src)
	s.tick = 20 * time.Millisecond
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := stream(t, ctx, srv.URL+"/events", nil)
	for range 5 {
		next(t, ch, "snapshot", time.Second)
	}
}

// A page that does not read its stream never holds up the source: the
// handler drains the subscription and drops (and counts) what the page
// has no room for.
func TestSlowClientNeverBlocksSource(t *testing.T) {
	src := newFake(twoHomes())
	s := newServer(src)
	srv := httptest.NewServer(s)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	// ... and never reads.
	waitFor(t, "the subscription", func() bool { return src.active() == 1 })

	big := strings.Repeat("x", 16<<10)
	start := time.Now()
	var sent int
	for sent = 0; sent < 50000 && s.hub.dropped.Load() == 0; sent++ {
		src.emit(Event{Time: time.Now(), NAT: "home-a", Kind: "XLATE", Text: big})
	}
	if s.hub.dropped.Load() == 0 {
		t.Fatalf("no drops after %d events", sent)
	}
	if n := src.blocked.Load(); n > 0 {
		t.Errorf("the source waited on the handler %d times", n)
	}
	t.Logf("%d events in %v; dropped %d", sent, time.Since(start), s.hub.dropped.Load())

	// A page that does read is unaffected.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := stream(t, ctx, srv.URL+"/events", nil)
	next(t, ch, "snapshot", 2*time.Second)
	waitFor(t, "the second page", func() bool {
		s.hub.mu.Lock()
		defer s.hub.mu.Unlock()
		return len(s.hub.clients) == 2
	})
	src.emit(Event{NAT: "home-a", Kind: "NEW", Text: "hello"})
	for {
		e := next(t, ch, "nat", 2*time.Second)
		if strings.Contains(e.data, `"hello"`) {
			break
		}
	}
	if n := src.blocked.Load(); n > 0 {
		t.Errorf("the source waited on the handler %d times", n)
	}
}

// The slow page learns how many events it missed.
func TestDroppedReported(t *testing.T) {
	h := newHub(newFake(Snapshot{}))
	c, _, leave := h.join(0)
	defer leave()
	for i := range clientQueue + 5 {
		h.publish(context.Background(), Event{Text: strconv.Itoa(i)})
	}
	if got := c.dropped.Load(); got != 5 {
		t.Errorf("dropped %d, want 5", got)
	}

	src := newFake(twoHomes())
	s := newServer(src)
	s.tick = 20 * time.Millisecond
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := stream(t, ctx, srv.URL+"/events", nil)
	next(t, ch, "snapshot", time.Second)
	s.hub.mu.Lock()
	for c := range s.hub.clients {
		c.dropped.Add(7)
	}
	s.hub.mu.Unlock()
	e := next(t, ch, "dropped", 2*time.Second)
	if e.data != `{"dropped":7}` {
		t.Errorf("dropped event %q", e.data)
	}
}

func TestCancelEndsStream(t *testing.T) {
	src := newFake(twoHomes())
	srv := httptest.NewServer(Handler(src))
	defer srv.Close()

	// The page goes away: the handler returns and, with no page left,
	// the subscription ends.
	ctx, cancel := context.WithCancel(context.Background())
	ch := stream(t, ctx, srv.URL+"/events", nil)
	next(t, ch, "snapshot", 2*time.Second)
	waitFor(t, "the subscription", func() bool { return src.active() == 1 })
	cancel()
	waitFor(t, "the subscription to end", func() bool { return src.active() == 0 })
	for range ch {
	}

	// The server's context ends: open streams end and it stops
	// listening.
	sctx, scancel := context.WithCancel(context.Background())
	addr, err := ListenAndServe(sctx, "127.0.0.1:0", src)
	if err != nil {
		t.Fatal(err)
	}
	ch = stream(t, context.Background(), "http://"+addr.String()+"/events", nil)
	next(t, ch, "snapshot", 2*time.Second)
	scancel()
	select {
	case <-drain(ch):
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open 5 s after the server's context ended")
	}
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	waitFor(t, "the subscription to end", func() bool { return src.active() == 0 })
}

func drain(ch <-chan sse) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}

func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := newFake(twoHomes())
	addr, err := ListenAndServe(ctx, "127.0.0.1:0", src)
	if err != nil {
		t.Fatal(err)
	}
	if ip := addr.(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Errorf("listening on %v", addr)
	}
	page, _ := get(t, "http://"+addr.String()+"/")
	if !strings.Contains(page, "198.51.100.1:40001") {
		t.Error("page lacks the mapping")
	}
	// It subscribes at once and keeps what happened before any page
	// was open.
	waitFor(t, "the subscription", func() bool { return src.active() == 1 })
	src.emit(Event{Time: time.Now(), NAT: "home-a", Kind: "NEW", Text: "udp 10.0.1.2:5000 -> 203.0.113.10:3478  =>  198.51.100.1:40001 -> 203.0.113.10:3478  (new mapping)"})
	src.emit(expireEvent)
	expired := "udp 10.0.1.2:5000 &lt;-&gt; 198.51.100.1:40001"
	var body string
	waitFor(t, "the events on the page", func() bool {
		body, _ = get(t, "http://"+addr.String()+"/")
		return strings.Contains(body, expired)
	})
	if i, j := strings.Index(body, expired), strings.Index(body, "(new mapping)"); i < 0 || j < 0 || i > j {
		t.Errorf("log not newest first")
	}
	if strings.Contains(body, `id="log-empty" class="empty">`) {
		t.Errorf("log says it is empty")
	}

	if _, err := ListenAndServe(ctx, "127.0.0.1:99999", src); err == nil {
		t.Error("bad address accepted")
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := ListenAndServe(done, "127.0.0.1:0", src); !errors.Is(err, context.Canceled) {
		t.Errorf("ended context: %v", err)
	}
}

// A page (re)connecting gets the remembered events it has not seen, once.
func TestHistoryAndReconnect(t *testing.T) {
	src := newFake(twoHomes())
	s := newServer(src)
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := stream(t, ctx, srv.URL+"/events", nil)
	next(t, ch, "snapshot", 2*time.Second)
	waitFor(t, "the subscription", func() bool { return src.active() == 1 })
	var ids []string
	for i := range 3 {
		src.emit(Event{NAT: "home-a", Kind: "NEW", Text: fmt.Sprint("event ", i)})
		ids = append(ids, next(t, ch, "nat", 2*time.Second).id)
	}

	// The page, rendered now, shows them newest first and resumes after
	// the last.
	page, _ := get(t, srv.URL+"/")
	if i0, i2 := strings.Index(page, "event 0"), strings.Index(page, "event 2"); i0 < 0 || i2 < 0 || i2 > i0 {
		t.Errorf("page log: event 2 at %d, event 0 at %d", i2, i0)
	}
	if !strings.Contains(page, `data-last-id="`+ids[2]+`"`) {
		t.Errorf("page does not resume after %s", ids[2])
	}

	for _, c := range []struct {
		name   string
		header http.Header
		url    string
		want   []string
	}{
		{"Last-Event-ID", http.Header{"Last-Event-Id": {ids[0]}}, "/events", []string{"event 1", "event 2"}},
		{"after", nil, "/events?after=" + ids[1], []string{"event 2"}},
		{"other server", http.Header{"Last-Event-Id": {"0000-2"}}, "/events", []string{"event 0", "event 1", "event 2"}},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		ch := stream(t, ctx, srv.URL+c.url, c.header)
		next(t, ch, "snapshot", 2*time.Second)
		for _, w := range c.want {
			if e := next(t, ch, "nat", 2*time.Second); !strings.Contains(e.data, w) {
				t.Errorf("%s: got %s, want %s", c.name, e.data, w)
			}
		}
		// Then live ones (the last case's backlog has the earlier
		// cases' live events too).
		live := "live " + c.name
		src.emit(Event{NAT: "home-a", Kind: "NEW", Text: live})
		for e := next(t, ch, "nat", 2*time.Second); !strings.Contains(e.data, live); e = next(t, ch, "nat", 2*time.Second) {
			if !strings.Contains(e.data, "live") {
				t.Errorf("%s: got %s after the backlog, want the live event", c.name, e.data)
			}
		}
		cancel()
	}

	// The ring keeps the last historySize.
	for i := range historySize + 10 {
		s.hub.publish(context.Background(), Event{Text: strconv.Itoa(i)})
	}
	got, _ := s.hub.recent(0)
	if len(got) != historySize || got[0].Text != "10" || got[len(got)-1].Text != strconv.Itoa(historySize+9) {
		t.Errorf("history: %d events, %q .. %q", len(got), got[0].Text, got[len(got)-1].Text)
	}
}

func TestHostileNamesEscaped(t *testing.T) {
	evil := `<script>alert(1)</script>`
	img := `<img src=x onerror=alert(2)>`
	s := Snapshot{
		Name: evil,
		Nodes: []Node{
			{Name: "public", Kind: "public"},
			{Name: img, Kind: "nat", Network: "public", Addresses: []string{`"><svg onload=alert(3)>`}},
			{Name: evil, Kind: "host", Network: img, Addresses: []string{"1.2.3.4&<"}},
		},
		NATs: []NAT{{
			Name: img, Mapping: evil, Filtering: "eif", PortAssignment: evil,
			Packets:  map[string]uint64{evil: 1},
			Mappings: []observe.Mapping{{Proto: evil, Internal: img, External: `'onmouseover='alert(4)`, Remotes: []string{evil}}},
		}},
	}
	src := newFake(s)
	srv := httptest.NewServer(subscribedHandler(t, src))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := stream(t, ctx, srv.URL+"/events", nil)
	next(t, ch, "snapshot", 2*time.Second)
	waitFor(t, "the subscription", func() bool { return src.active() == 1 })
	src.emit(Event{NAT: img, Kind: evil, Text: evil, Reason: img})
	next(t, ch, "nat", 2*time.Second)

	page, _ := get(t, srv.URL+"/")
	for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", "'onmouseover='"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %s unescaped", bad)
		}
	}
	for _, want := range []string{
		"<title>&lt;script&gt;alert(1)&lt;/script&gt; · gonat live view</title>",
		`&lt;script&gt;alert(1)&lt;/script&gt;</text>`,                // in the drawing
		`<td class="text">&lt;script&gt;alert(1)&lt;/script&gt;</td>`, // in the log
		`<span class="nat-name">&lt;img src=x onerror=alert(2)&gt;</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The drawing alone is well-formed XML.
	svg, resp := get(t, srv.URL+"/topology.svg")
	if ct := resp.Header.Get("Content-Type"); ct != "image/svg+xml" {
		t.Errorf("Content-Type %q", ct)
	}
	wellFormed(t, svg)
	// The script builds the live page with textContent only.
	js, _ := get(t, srv.URL+"/assets/app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

// subscribedHandler is a Handler whose hub is already subscribed, as
// ListenAndServe's is.
func subscribedHandler(t *testing.T, src Source) http.Handler {
	s := newServer(src)
	t.Cleanup(s.hub.acquire())
	return s
}

func wellFormed(t *testing.T, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
	}
}

var rectRE = regexp.MustCompile(`<g class="node (\w+)" data-name="([^"]*)"><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"`)

type rect struct {
	kind, name string
	x, y, w, h float64
}

func rects(t *testing.T, svg string) map[string]rect {
	t.Helper()
	out := map[string]rect{}
	for _, m := range rectRE.FindAllStringSubmatch(svg, -1) {
		f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		out[m[2]] = rect{m[1], m[2], f(m[3]), f(m[4]), f(m[5]), f(m[6])}
	}
	return out
}

func TestTopologyLayout(t *testing.T) {
	// cgnat: two homes behind a carrier NAT, a server on the public
	// network.
	s := Snapshot{Name: "cgnat", Nodes: []Node{
		{Name: "alice", Kind: "host", Network: "home1", Addresses: []string{"10.0.1.2"}},
		{Name: "bob", Kind: "host", Network: "home2", Addresses: []string{"10.0.1.2"}},
		{Name: "server", Kind: "host", Network: "public", Addresses: []string{"203.0.113.10", "203.0.113.11"}},
		{Name: "carrier", Kind: "nat", Network: "public", Addresses: []string{"198.51.100.1"}},
		{Name: "home1", Kind: "nat", Network: "carrier", Addresses: []string{"100.64.0.2"}},
		{Name: "home2", Kind: "nat", Network: "carrier", Addresses: []string{"100.64.0.3"}},
		{Name: "public", Kind: "public"},
	}}
	svg := topology(s, true)
	wellFormed(t, svg)
	r := rects(t, svg)
	if len(r) != 7 {
		t.Fatalf("%d boxes, want 7:\n%s", len(r), svg)
	}
	below := func(a, b string) {
		if r[a].y <= r[b].y+r[b].h {
			t.Errorf("%s (y %.0f) not below %s (y %.0f..%.0f)", a, r[a].y, b, r[b].y, r[b].y+r[b].h)
		}
	}
	below("carrier", "public")
	below("server", "public")
	below("home1", "carrier")
	below("home2", "carrier")
	below("alice", "home1")
	below("bob", "home2")
	if r["server"].y != r["carrier"].y {
		t.Errorf("server and carrier on different rows")
	}
	// Each home above its own host; siblings side by side, not
	// overlapping; the public network spans everything.
	for _, pair := range [][2]string{{"home1", "alice"}, {"home2", "bob"}} {
		a, b := r[pair[0]], r[pair[1]]
		if ac, bc := a.x+a.w/2, b.x+b.w/2; ac != bc {
			t.Errorf("%s centred at %.1f, %s at %.1f", pair[0], ac, pair[1], bc)
		}
	}
	if r["home1"].x+r["home1"].w > r["home2"].x || r["carrier"].x+r["carrier"].w > r["server"].x {
		t.Errorf("siblings overlap: %+v", r)
	}
	for _, b := range r {
		if b.x < r["public"].x || b.x+b.w > r["public"].x+r["public"].w {
			t.Errorf("%s sticks out of the public network", b.name)
		}
	}
	for _, want := range []string{"<style>", "Topology of cgnat", "host alice (10.0.1.2) on home1"} {
		if !strings.Contains(svg, want) {
			t.Errorf("drawing lacks %q", want)
		}
	}
	if strings.Contains(topology(s, false), "<style>") {
		t.Errorf("inline drawing carries its own styles")
	}

	// A loop of upstreams, an unknown upstream and no public node still
	// draw every box, under the public network.
	loop := Snapshot{Nodes: []Node{
		{Name: "a", Kind: "nat", Network: "b"},
		{Name: "b", Kind: "nat", Network: "a"},
		{Name: "c", Kind: "nat", Network: "nowhere"},
		{Name: "h", Kind: "host", Network: "a"},
	}}
	svg = topology(loop, true)
	wellFormed(t, svg)
	r = rects(t, svg)
	if len(r) != 5 {
		t.Fatalf("%d boxes, want 5:\n%s", len(r), svg)
	}
	below("h", "a")
	if r["a"].y != r["c"].y || r["b"].y != r["c"].y {
		t.Errorf("looped NATs not on the first row: %+v", r)
	}
	if topology(Snapshot{}, false) != "" {
		t.Error("empty snapshot drew something")
	}
}

func TestFormats(t *testing.T) {
	for s, want := range map[int64]string{
		0: "expiring", -1: "expiring", 1: "1s", 59: "59s",
		60: "1m 00s", 4*60 + 31: "4m 31s", 2*3600 + 4*60: "2h 04m",
	} {
		if got := expires(s); got != want {
			t.Errorf("expires(%d) = %q, want %q", s, got, want)
		}
	}
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
	for _, c := range []struct{ m, f, want string }{
		{"endpoint-independent", "endpoint-independent", "full cone"},
		{"eim", "adf", "restricted cone"},
		{"EIM", "APDF", "port-restricted cone"},
		{"address-and-port-dependent", "address-and-port-dependent", "symmetric"},
		{"adm", "eif", "symmetric"},
		{"weird", "eif", ""},
	} {
		if got := classic(c.m, c.f); got != c.want {
			t.Errorf("classic(%s, %s) = %q, want %q", c.m, c.f, got, c.want)
		}
	}
	if got := verdictOrder(map[string]uint64{"filtered": 1, "forward": 1, "no-mapping": 5, "local": 1}); !reflect.DeepEqual(got, []string{"forward", "no-mapping", "filtered", "local"}) {
		t.Errorf("verdictOrder: %v", got)
	}
}
