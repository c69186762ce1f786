package web

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/internal/browser"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
)

func TestBrowserLiveView(t *testing.T) {
	b := browser.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), browser.Timeout)
	defer cancel()

	src := newFake(twoHomes())
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, err := ListenAndServe(sctx, "127.0.0.1:0", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr.String() + "/"
	const width = 1280
	page := b.Open(ctx, width, 900)
	b.Navigate(ctx, page, url)

	// (1) The page shows the mapping the source reports.
	s := b.State(ctx, page)
	if s.Title != "two-homes · gonat live view" {
		t.Errorf("title %q", s.Title)
	}
	if !browser.HasMapping(s, "10.0.1.2:5000") {
		t.Fatalf("no mapping of 10.0.1.2:5000 on the page: %q", s.Mappings)
	}
	for _, m := range s.Mappings {
		if strings.Contains(m, "10.0.1.2:5000") && !strings.Contains(m, "198.51.100.1:40001") {
			t.Errorf("mapping row %q lacks its external endpoint", m)
		}
	}
	b.WaitState(ctx, page, "the page to go live", func(s browser.PageState) bool { return s.Live })
	b.Eval(ctx, page, `window.__gonatTestMarker = 42`, nil)

	// A few things happen in the lab...
	now := time.Now()
	for _, ev := range []Event{
		{NAT: "home-a", Kind: "NEW", Text: "udp 10.0.1.2:5000 <-> 198.51.100.1:40001 expires-in 5m0s"},
		{NAT: "home-a", Kind: "XLATE", Text: "udp 10.0.1.2:5000 -> 203.0.113.10:3478  =>  198.51.100.1:40001 -> 203.0.113.10:3478  (new mapping)"},
		{NAT: "home-a", Kind: "XLATE", Text: "udp 203.0.113.10:3478 -> 198.51.100.1:40001  =>  203.0.113.10:3478 -> 10.0.1.2:5000"},
		{NAT: "home-b", Kind: "NEW", Text: "udp 10.0.2.2:6000 <-> 198.51.100.2:51234 expires-in 30s"},
		{NAT: "home-b", Kind: "NEW", Text: "udp 10.0.2.2:6000 <-> 198.51.100.2:62817 expires-in 30s"},
		{NAT: "home-b", Kind: "DROP", Text: "udp 203.0.113.11:3478 -> 198.51.100.2:51234", Reason: "filtered"},
		{NAT: "home-a", Kind: "DROP", Text: "udp 198.51.100.2:62817 -> 198.51.100.1:40009", Reason: "no-mapping"},
		{NAT: "home-a", Kind: "REFRESH", Text: "tcp 10.0.1.2:43122 <-> 198.51.100.1:40002 expires-in 2h4m0s"},
	} {
		now = now.Add(137 * time.Millisecond)
		ev.Time = now
		src.emit(ev)
	}
	// ... and then the mapping expires.
	src.set(withoutMapping(twoHomes()))
	ev := expireEvent
	ev.Time = now.Add(time.Second)
	src.emit(ev)

	// (2) Without a reload, its row goes and the EXPIRE line comes.
	s = b.WaitState(ctx, page, "the mapping to go and the EXPIRE line to come", func(s browser.PageState) bool {
		return !browser.HasMapping(s, "10.0.1.2:5000") && len(s.Log) > 0 && s.Log[0].Kind == "EXPIRE"
	})
	if !s.Marker {
		t.Error("the page reloaded")
	}
	if top := s.Log[0]; top.Text != expireEvent.Text || !top.Live {
		t.Errorf("top log line %+v, want the EXPIRE line, added live", top)
	}
	if len(s.Log) != 9 {
		t.Errorf("%d log lines, want 9", len(s.Log))
	}
	var drops []string
	for _, l := range s.Log {
		if l.Kind == "DROP" {
			drops = append(drops, l.Reason)
		}
	}
	if strings.Join(drops, " ") != "no-mapping filtered" {
		t.Errorf("DROP reasons %q, want no-mapping, filtered (newest first)", drops)
	}
	if strings.Join(s.Counts, ",") != "1 mapping,2 mappings" {
		t.Errorf("mapping counts in the drawing %q", s.Counts)
	}
	if !browser.HasMapping(s, "10.0.2.2:6000") {
		t.Errorf("home-b's mappings went too: %q", s.Mappings)
	}
	// The script read the live snapshot's expires_in (seconds) and
	// packet counts as the server renders them.
	for _, want := range []string{"10.0.1.2:43122\t198.51.100.1:40002\t203.0.113.20:7000\t2h 03m\t1,042\t981",
		"10.0.2.2:6000\t198.51.100.2:51234\t203.0.113.10:3478\t27s\t4\t4"} {
		if !strings.Contains(strings.Join(s.Mappings, "\n"), want) {
			t.Errorf("no mapping row %q in %q", want, s.Mappings)
		}
	}
	// The script, which redrew the NAT panels from the snapshot, names
	// the behaviours as the server does.
	var panels, want []string
	b.Eval(ctx, page, `Array.prototype.map.call(document.querySelectorAll('section.nat'), function (s) {
		return [s.dataset.nat, s.querySelector('.classic').textContent,
			s.querySelector('dd[data-f="mapping"] abbr').textContent, s.querySelector('dd[data-f="mapping"] .long').textContent,
			s.querySelector('dd[data-f="filtering"] abbr').textContent, s.querySelector('dd[data-f="filtering"] .long').textContent].join('|');
	})`, &panels)
	for _, n := range withoutMapping(twoHomes()).NATs {
		v := viewNAT(n)
		want = append(want, strings.Join([]string{v.Name, v.Classic, v.Mapping.Short(), v.Mapping.Long(), v.Filtering.Short(), v.Filtering.Long()}, "|"))
	}
	if strings.Join(panels, "\n") != strings.Join(want, "\n") {
		t.Errorf("NAT panels drawn by the script:\n%s\nwant, as the server draws them:\n%s", strings.Join(panels, "\n"), strings.Join(want, "\n"))
	}

	// (3) A picture of it, for the README.
	png := b.Screenshot(ctx, page, width)
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("Screenshot is not a PNG")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Screenshot.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("Screenshot: %s (%d KB)", filepath.Join(dir, "Screenshot.png"), len(png)>>10)
	if os.Getenv("GONAT_SCREENSHOT") == "1" {
		if len(png) > 300<<10 {
			t.Errorf("Screenshot is %d KB, more than the 300 KB worth committing", len(png)>>10)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "Screenshot.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote testdata/Screenshot.png")
	}
	b.CheckProblems()
}

// The page's script escapes hostile names too: they arrive by the event
// stream and must show as text.
func TestBrowserHostileNames(t *testing.T) {
	b := browser.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), browser.Timeout)
	defer cancel()

	src := newFake(twoHomes())
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, err := ListenAndServe(sctx, "127.0.0.1:0", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	page := b.Open(ctx, 1024, 768)
	b.Navigate(ctx, page, "http://"+addr.String()+"/")
	b.WaitState(ctx, page, "the page to go live", func(s browser.PageState) bool { return s.Live })

	evil := `<img src=x onerror="window.__pwned=1">`
	s := twoHomes()
	nats := append([]NAT(nil), s.NATs...)
	nats = append(nats, NAT{NAT: observe.NAT{Name: evil, Mapping: evil, Filtering: "eif"},
		Mappings: []observe.Mapping{{Proto: evil, Internal: evil, External: evil}}})
	s.NATs = nats
	src.set(s)
	src.emit(Event{Time: time.Now(), NAT: evil, Kind: "DROP", Text: evil, Reason: evil})
	st := b.WaitState(ctx, page, "the hostile NAT and event", func(s browser.PageState) bool {
		return browser.HasMapping(s, evil) && len(s.Log) > 0 && s.Log[0].Text == evil
	})
	if st.Log[0].Reason != evil {
		t.Errorf("reason %q", st.Log[0].Reason)
	}
	var imgs int
	var pwned bool
	b.Eval(ctx, page, `document.querySelectorAll('main img').length`, &imgs)
	b.Eval(ctx, page, `window.__pwned === 1`, &pwned)
	if imgs != 0 || pwned {
		t.Errorf("markup from the source became elements: %d <img>, script ran: %v", imgs, pwned)
	}
	b.CheckProblems()
}

// At 1280x1000, a laptop or a projector, the event log is in view beside
// the topology without scrolling, and every NAT's mapping table shows its
// last column (with room for the scrollbar a desktop browser draws).
// Event kinds and verdicts are explained on the page, and live rows carry
// the same explanation as a tooltip: all from the engine's own list.
func TestBrowserLayoutAndLegend(t *testing.T) {
	b := browser.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), browser.Timeout)
	defer cancel()

	snap := twoHomes()
	// A mapping with several remotes, as an APDF NAT has after a few
	// STUN exchanges: the widest row the table must hold.
	nats := append([]NAT(nil), snap.NATs...)
	b2 := nats[1]
	b2.Mappings = append(append([]observe.Mapping(nil), b2.Mappings...), observe.Mapping{Proto: "udp", Internal: "10.0.2.2:50000", External: "198.51.100.2:65000",
		Remotes: []string{"203.0.113.10:3478", "203.0.113.11:3479", "203.0.113.20:7000"}, ExpiresIn: 299, PacketsOut: 123456, PacketsIn: 654321})
	nats[1] = b2
	snap.NATs = nats
	src := newFake(snap)
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, err := ListenAndServe(sctx, "127.0.0.1:0", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	page := b.Open(ctx, 1280, 1000)
	b.Navigate(ctx, page, "http://"+addr.String()+"/")
	b.WaitState(ctx, page, "the page to go live", func(s browser.PageState) bool { return s.Live })
	now := time.Now()
	for _, ev := range []Event{
		{NAT: "home-a", Kind: "XLATE", Text: "udp 10.0.1.2:5000 -> 203.0.113.10:3478  =>  198.51.100.1:40001 -> 203.0.113.10:3478  (new mapping)"},
		{NAT: "home-b", Kind: "DROP", Text: "udp 203.0.113.11:3478 -> 198.51.100.2:51234", Reason: "filtered"},
	} {
		now = now.Add(time.Millisecond)
		ev.Time = now
		src.emit(ev)
	}
	b.WaitState(ctx, page, "the DROP line", func(s browser.PageState) bool { return len(s.Log) == 2 && s.Log[0].Kind == "DROP" })
	b.CheckLayout(ctx, page, 160)

	var legend struct {
		Kinds, Verdicts, Meanings []string
		KindTitle, ReasonTitle    string
		Filters                   []string
	}
	b.Eval(ctx, page, `({
	  kinds: Array.from(document.querySelectorAll('#legend [data-kind]'), d => d.dataset.kind),
	  verdicts: Array.from(document.querySelectorAll('#legend [data-verdict]'), d => d.dataset.verdict),
	  meanings: Array.from(document.querySelectorAll('#legend [data-verdict] dd'), d => d.textContent),
	  kindTitle: document.querySelector('#log tbody tr .kind').title,
	  reasonTitle: document.querySelector('#log tbody tr .reason').title,
	  filters: Array.from(document.querySelectorAll('#log-controls input'), i => i.value),
	})`, &legend)
	var names, meanings []string
	for _, v := range nat.Verdicts() {
		names = append(names, v.String())
		meanings = append(meanings, v.Meaning())
	}
	for _, r := range forward.DropReasons() {
		names = append(names, r)
		meanings = append(meanings, forward.DropMeaning(r))
	}
	if !slices.Equal(legend.Verdicts, names) || !slices.Equal(legend.Meanings, meanings) {
		t.Errorf("legend verdicts %q, want every verdict of the engine and drop reason of the links %q, with its meaning", legend.Verdicts, names)
	}
	kinds := []string{"NEW", "XLATE", "REFRESH", "EXPIRE", "DROP", "LINK", "REBIND", "REBOOT", "SET", "FLUSH", "MOVE", "EVENT-FAILED"}
	if !slices.Equal(legend.Kinds, kinds) || !slices.Equal(legend.Filters, kinds) {
		t.Errorf("legend kinds %q, filters %q, want %q", legend.Kinds, legend.Filters, kinds)
	}
	if legend.ReasonTitle != nat.DropFiltered.Meaning() || legend.KindTitle == "" {
		t.Errorf("live DROP row: kind title %q, reason title %q; want the legend's words", legend.KindTitle, legend.ReasonTitle)
	}
	b.CheckProblems()
}

// A mapping whose remotes the snapshot cut says how many more it has,
// when the script redraws the table from a snapshot.
func TestBrowserRemotesMore(t *testing.T) {
	b := browser.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), browser.Timeout)
	defer cancel()

	src := newFake(twoHomes())
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, err := ListenAndServe(sctx, "127.0.0.1:0", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	page := b.Open(ctx, 1280, 900)
	b.Navigate(ctx, page, "http://"+addr.String()+"/")
	b.WaitState(ctx, page, "the page to go live", func(s browser.PageState) bool { return s.Live })
	b.Eval(ctx, page, `window.__gonatTestMarker = 42`, nil) // gone if the page reloads

	snap := twoHomes()
	nats := append([]NAT(nil), snap.NATs...)
	a := nats[0]
	a.Mappings = append([]observe.Mapping(nil), a.Mappings...)
	m := &a.Mappings[0]
	m.Remotes = nil
	for i := range DefaultRemotes + 60 {
		m.Remotes = append(m.Remotes, fmt.Sprintf("203.0.113.%d:%d", i%250+1, 1000+i))
	}
	nats[0] = a
	snap.NATs = nats
	src.set(snap)
	s := b.WaitState(ctx, page, "the cut remotes", func(s browser.PageState) bool {
		for _, r := range s.Mappings {
			if strings.Contains(r, "10.0.1.2:5000") && strings.Contains(r, "and 60 more") {
				return true
			}
		}
		return false
	})
	if !s.Marker {
		t.Error("the page reloaded")
	}
}
