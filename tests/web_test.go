package tests

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/browser"
)

// The web view of a real NAT in a real headless Chromium: the page shows
// the mapping a STUN exchange just made, and takes it away (with an
// EXPIRE line) when it lapses, without a reload. Its screenshot is kept
// as a test artifact (tests/artifacts/webview.png).
func TestWebViewLive(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--preset", "full-cone", "--udp-timeout", "3s", "--web", "127.0.0.1:0")
	re := regexp.MustCompile(`web view on (http://\S+/)`)
	var url string
	for deadline := time.Now().Add(5 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(tp.stderr.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("no web view address in:\n%s", tp.stderr.String())
	}
	b := browser.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), browser.Timeout)
	defer cancel()
	page := b.Open(ctx, 1280, 900)
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
