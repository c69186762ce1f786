package tests

// Happy Eyeballs in examples/happy-eyeballs.toml: a dual-stack HTTP
// server and clients behind NATs whose IPv6 works (routed), vanishes
// (blackhole), is refused (reject) or is slow (300 ms each way), judged by Debian's curl and by
// gonat he, by name through the lab DNS server.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
)

// heHTTP serves HTTP on both of the server's addresses, port 8080.
func heHTTP(t *testing.T, l *labtest.Lab) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })}
	for _, a := range [][2]string{{"tcp6", "[2001:db8::10]:8080"}, {"tcp4", "203.0.113.10:8080"}} {
		ln, err := ns.Listen(l.Node("server").Namespace, a[0], a[1])
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
}

func TestHappyEyeballsDualStack(t *testing.T) {
	curl := privtest.Tool(t, "curl")
	l := labtest.Up(t, labtest.Load(t, "../examples/happy-eyeballs.toml"), labOpts())
	heHTTP(t, l)
	for _, tc := range []struct {
		client, mode string
		want         string        // the address that wins
		min, max     time.Duration // when the winner connects (curl's time_connect, gonat he's ms)
		heAttempt    int           // gonat he's winning attempt
	}{
		// IPv6 first, and it works.
		{"ok", "routed", "2001:db8::10", 0, 150 * time.Millisecond, 1},
		// IPv6 SYNs vanish: IPv4 starts after the attempt delay (curl's
		// happy-eyeballs timeout is 200 ms, gonat he's 250 ms).
		{"dark", "blackhole", "203.0.113.10", 180 * time.Millisecond, time.Second, 2},
		// ICMPv6 "no route" fails the IPv6 attempt: IPv4 at once.
		{"nope", "reject", "203.0.113.10", 0, 150 * time.Millisecond, 2},
		// IPv6 works but its handshake takes 600 ms (300 ms each way):
		// IPv4 starts after the attempt delay and wins.
		{"slow", "routed +300ms", "203.0.113.10", 180 * time.Millisecond, 550 * time.Millisecond, 2},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			for i := 0; i < 3; i++ {
				out, err := l.Node(tc.client).Command(curl, "-s", "-o", "/dev/null", "--max-time", "10",
					"-w", "%{remote_ip} %{time_connect}", "http://server:8080/").Output()
				if err != nil {
					t.Fatalf("curl on %s: %v\n%s", tc.client, err, out)
				}
				f := strings.Fields(string(out))
				if len(f) != 2 {
					t.Fatalf("curl on %s printed %q", tc.client, out)
				}
				secs, err := strconv.ParseFloat(f[1], 64)
				if err != nil {
					t.Fatalf("curl time_connect %q: %v", f[1], err)
				}
				d := time.Duration(secs * float64(time.Second))
				t.Logf("curl on %s (ipv6 %s): %s connected after %s", tc.client, tc.mode, f[0], d)
				if f[0] != tc.want || d < tc.min || d > tc.max {
					t.Errorf("curl on %s (ipv6 %s): %s after %s; want %s after %s to %s", tc.client, tc.mode, f[0], d, tc.want, tc.min, tc.max)
				}
			}
			if tc.client == "slow" {
				// Only IPv6 is slow: alone, each family connects in its
				// own time (two 300 ms legs for IPv6, none for IPv4).
				for _, f := range []struct {
					flag     string
					min, max time.Duration
				}{{"-6", 580 * time.Millisecond, 1500 * time.Millisecond}, {"-4", 0, 150 * time.Millisecond}} {
					out, err := l.Node(tc.client).Command(curl, f.flag, "-s", "-o", "/dev/null", "--max-time", "10",
						"-w", "%{time_connect}", "http://server:8080/").Output()
					secs, perr := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
					if err != nil || perr != nil {
						t.Fatalf("curl %s on slow: %v %v\n%s", f.flag, err, perr, out)
					}
					d := time.Duration(secs * float64(time.Second))
					t.Logf("curl %s on slow alone: connected after %s", f.flag, d)
					if d < f.min || d > f.max {
						t.Errorf("curl %s on slow connected after %s, want %s to %s", f.flag, d, f.min, f.max)
					}
				}
			}
			out, err := l.Node(tc.client).Command("gonat", "he", "--json", "server", "8080").Output()
			if err != nil {
				t.Fatalf("gonat he on %s: %v\n%s", tc.client, err, out)
			}
			var r struct {
				Events []struct {
					Event, Family, Error string
					Attempt              int
				}
				Winner *struct {
					Addr, Family string
					Attempt      int
					MS           float64
				}
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			w := r.Winner
			if w == nil {
				t.Fatalf("gonat he on %s: no winner\n%s", tc.client, out)
			}
			d := time.Duration(w.MS * float64(time.Millisecond))
			t.Logf("gonat he on %s (ipv6 %s): %s by attempt %d after %s", tc.client, tc.mode, w.Addr, w.Attempt, d)
			wantAddr := netip.AddrPortFrom(netip.MustParseAddr(tc.want), 8080).String()
			if w.Addr != wantAddr || w.Attempt != tc.heAttempt || d < tc.min || d > tc.max {
				t.Errorf("gonat he on %s: %s by attempt %d after %s; want %s by attempt %d after %s to %s\n%s",
					tc.client, w.Addr, w.Attempt, d, wantAddr, tc.heAttempt, tc.min, tc.max, out)
			}
			if tc.mode == "reject" {
				failed := false
				for _, e := range r.Events {
					failed = failed || e.Event == "failed" && e.Family == "IPv6"
				}
				if !failed {
					t.Errorf("gonat he on %s: no failed IPv6 attempt\n%s", tc.client, out)
				}
			}
		})
	}
}
