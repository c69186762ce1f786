package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/browser"
)

// The web view of a real NAT in a real headless Chromium: the page shows
// the mapping a STUN exchange just made, with the event log and the whole
// mapping table in view at 1280x1000, and takes the mapping away (with an
// EXPIRE line) when it lapses, without a reload. Its screenshot is kept
// as a test artifact (tests/artifacts/webview.png).
func TestWebViewLive(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--preset", "full-cone", "--udp-timeout", "3s", "--web", "127.0.0.1:0")
	url := tp.waitStderr(`web view on (http://\S+/)`)
	b := browser.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), browser.Timeout)
	defer cancel()
	page := b.Open(ctx, 1280, 1000)
	b.Navigate(ctx, page, url)
	b.WaitState(ctx, page, "the page to go live", func(s browser.PageState) bool { return s.Live })
	b.Eval(ctx, page, `window.__gonatTestMarker = 42`, nil)

	m := mapped(t, udp(t, tp.A, ":5000"), stunServer)
	b.WaitState(ctx, page, "the new mapping", func(s browser.PageState) bool {
		for _, row := range s.Mappings {
			if strings.Contains(row, "10.0.0.2:5000") && strings.Contains(row, m.String()) {
				return true
			}
		}
		return false
	})
	// At 1280x1000 the event log is in view and the mapping table
	// shows every column.
	b.CheckLayout(ctx, page, 160)
	shot := b.Screenshot(ctx, page, 1280)
	if err := os.MkdirAll("artifacts", 0o755); err == nil {
		os.WriteFile("artifacts/webview.png", shot, 0o644)
	}
	s := b.WaitState(ctx, page, "the mapping to expire", func(s browser.PageState) bool {
		if browser.HasMapping(s, "10.0.0.2:5000") {
			return false
		}
		for _, l := range s.Log {
			if l.Kind == "EXPIRE" && strings.Contains(l.Text, "10.0.0.2:5000") && l.Live {
				return true
			}
		}
		return false
	})
	if !s.Marker {
		t.Error("the page reloaded instead of updating live")
	}
	b.CheckProblems()
}

// A lab of several NATs keeps its drawing still: the page redraws the
// topology whenever the nodes it is sent change, so NATs in map order
// would swap places between refreshes. The snapshot's nodes and the
// drawing are the same on every request, the NATs in the file's order.
func TestWebViewLabStable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "three.toml")
	topo := `name = "three"
[[nat]]
name = "zeta"
preset = "full-cone"
external = ["198.51.100.1"]
inside = "10.0.1.0/24"
[[nat]]
name = "alpha"
preset = "symmetric"
external = ["198.51.100.2"]
inside = "10.0.2.0/24"
[[nat]]
name = "mid"
preset = "restricted-cone"
external = ["198.51.100.3"]
inside = "10.0.3.0/24"
[[host]]
name = "carol"
network = "zeta"
[[host]]
name = "alice"
network = "alpha"
[[host]]
name = "bob"
network = "mid"
[[host]]
name = "server"
network = "public"
address = ["203.0.113.10"]
`
	if err := os.WriteFile(file, []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	name := runPrefix + "web"
	cmd := exec.Command(gonatBin, "lab", "up", file, "--name", name, "--web", "127.0.0.1:0")
	stderr := newLineBuffer()
	cmd.Stdout, cmd.Stderr = newLineBuffer(), stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("gonat lab up did not end within 15s of SIGTERM")
		}
		if out, err := exec.Command(gonatBin, "lab", "down", "--lab", name).CombinedOutput(); err == nil {
			t.Logf("lab down after the test: %s", out)
		}
	})
	url := waitMatch(t, stderr, `web view on (http://\S+/)`, 30*time.Second)
	get := func(path string) string {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var first []string
	for i := range 30 {
		var snap struct{ Nodes []struct{ Name, Kind string } }
		if err := json.Unmarshal([]byte(get("api/snapshot")), &snap); err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, n := range snap.Nodes {
			order = append(order, n.Kind+":"+n.Name)
		}
		if i == 0 {
			first = order
			want := []string{"host:carol", "host:alice", "host:bob", "host:server", "nat:zeta", "nat:alpha", "nat:mid", "public:public"}
			if !slices.Equal(order, want) {
				t.Errorf("snapshot nodes %v, want %v (hosts, NATs, public; each in file order)", order, want)
			}
		} else if !slices.Equal(order, first) {
			t.Fatalf("snapshot %d: nodes %v, first %v: the order changed", i, order, first)
		}
	}
	svg := get("topology.svg")
	for i := range 10 {
		if again := get("topology.svg"); again != svg {
			t.Fatalf("drawing %d differs from the first", i+1)
		}
	}
	// Left to right in the file's order.
	zeta, alpha, mid := strings.Index(svg, `data-name="zeta"`), strings.Index(svg, `data-name="alpha"`), strings.Index(svg, `data-name="mid"`)
	if zeta < 0 || !(zeta < alpha && alpha < mid) {
		t.Errorf("NATs drawn in the order zeta %d, alpha %d, mid %d; want the file's", zeta, alpha, mid)
	}
}
