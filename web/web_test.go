package web

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
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
	srv := httptest.NewServer(Handler(newFake(twoHomes()), Options{}))
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
	srv := httptest.NewServer(Handler(newFake(twoHomes()), Options{}))
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
	want := cut(twoHomes(), defaultPage)          // as a source gives it
	want.NATs[0].Mappings[0].Remotes = []string{} // empty and nil both survive
	srv := httptest.NewServer(Handler(newFake(want), Options{}))
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
		`"port_assignment"`, `"hairpin"`, `"packets"`, `"mappings"`, `"mappings_total"`, `"nat"`, `"proto"`, `"internal"`, `"external"`, `"remotes"`,
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
			NAT:      observe.NAT{Name: img, Mapping: evil, Filtering: "eif", PortAssignment: evil, Packets: map[string]uint64{evil: 1}},
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
