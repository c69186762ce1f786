package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
	srv := httptest.NewServer(Handler(src, Options{}))
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
	s := newServer(src, Options{})
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
	s := newServer(src, Options{})
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
	s := newServer(src, Options{})
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
	srv := httptest.NewServer(Handler(src, Options{}))
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
	addr, err := ListenAndServe(sctx, "127.0.0.1:0", src, Options{})
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
	addr, err := ListenAndServe(ctx, "127.0.0.1:0", src, Options{})
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

	if _, err := ListenAndServe(ctx, "127.0.0.1:99999", src, Options{}); err == nil {
		t.Error("bad address accepted")
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := ListenAndServe(done, "127.0.0.1:0", src, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ended context: %v", err)
	}
}

// A page (re)connecting gets the remembered events it has not seen, once.
func TestHistoryAndReconnect(t *testing.T) {
	src := newFake(twoHomes())
	s := newServer(src, Options{})
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

// subscribedHandler is a Handler whose hub is already subscribed, as
// ListenAndServe's is.
func subscribedHandler(t *testing.T, src Source) http.Handler {
	s := newServer(src, Options{})
	t.Cleanup(s.hub.acquire())
	return s
}
