package observe

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// /metrics carries the process's health (goroutines, open fds, RSS) and
// the web view's event streams beside the NATs' counters.
func TestMetricsProcessAndWeb(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCollector(nil)
	c.WebStreams = func() (int64, uint64) { return 2, 5 }
	addr, err := ServeMetrics(ctx, "127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_open_fds ", "\nprocess_resident_memory_bytes ",
		"\ngonat_web_event_streams 2\n", "\ngonat_web_event_streams_refused_total 5\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}
