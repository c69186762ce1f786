package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// --web and --metrics on an address other hosts can reach are refused
// without --expose, before anything is created; with it, gonat starts
// and says in a warning line that the endpoint is open.
func TestWebNonLoopbackRefused(t *testing.T) {
	tp := newTopo(t)
	base := []string{"run", "--inside", tp.A + "=10.0.0.2/24", "--outside", tp.WAN, "--external", "198.51.100.1"}
	file := filepath.Join(t.TempDir(), "home.toml")
	topoFile, err := os.ReadFile("../examples/home.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, topoFile, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ flag, addr string }{
		{"--web", ":0"}, {"--web", "0.0.0.0:0"}, {"--metrics", ":0"}, {"--metrics", "0.0.0.0:0"},
	} {
		for _, args := range [][]string{
			append(append([]string{}, base...), c.flag, c.addr),
			{"lab", "up", file, "--name", tp.Name + "l", c.flag, c.addr},
		} {
			out, err := refusal(t, args...)
			oneLine(t, strings.Join(args[:2], " ")+" "+c.flag+" "+c.addr, string(out), exitCode(err), 2, c.flag+" "+c.addr+": not a loopback address")
			if !strings.Contains(string(out), "--expose") {
				t.Errorf("%s %s: the refusal does not name --expose: %s", c.flag, c.addr, out)
			}
		}
	}
	if out, _ := exec.Command("ip", "-n", tp.A, "-o", "link").CombinedOutput(); strings.Contains(string(out), "gnat") {
		t.Errorf("a refused start left a device behind:\n%s", out)
	}
	tp.startNAT("--web", "0.0.0.0:0", "--metrics", ":0", "--expose")
	url := tp.waitStderr(`web view on (http://\S+/)`)
	tp.waitStderr(`(warning: 0\.0\.0\.0:0 is reachable from other hosts \(--expose\))`)
	tp.waitStderr(`(warning: :0 is reachable from other hosts \(--expose\))`)
	port := url[strings.LastIndex(url, ":")+1:]
	if resp, err := http.Get("http://127.0.0.1:" + port); err != nil {
		t.Errorf("web view with --expose: %v", err)
	} else {
		resp.Body.Close()
	}
}

// Past --web-streams open event streams, more are answered 503 with a
// body saying why and counted in the metrics, and hundreds of them leave
// gonat's memory, goroutines and descriptors as they were.
func TestWebEventStreamsCapped(t *testing.T) {
	const max, extra = 20, 400
	tp := newTopo(t)
	tp.startNAT("--web", "127.0.0.1:0", "--web-streams", strconv.Itoa(max), "--metrics", "127.0.0.1:0")
	webURL := tp.waitStderr(`web view on (http://\S+/)`)
	metricsURL := tp.waitStderr(`metrics on (http://\S+/metrics)`)
	pid := tp.gonat.Process.Pid

	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	host := strings.TrimSuffix(strings.TrimPrefix(webURL, "http://"), "/")
	request := func() (net.Conn, string) {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("/events: %v", err)
		}
		return c, status
	}
	for range max {
		c, status := request()
		open = append(open, c)
		if !strings.Contains(status, " 200 ") {
			t.Fatalf("stream %d of %d: %q", len(open), max, status)
		}
	}
	before := metricValues(t, metricsURL)
	rssBefore := rss(t, pid)
	refused := 0
	for range extra {
		c, status := request()
		if strings.Contains(status, " 503 ") {
			refused++
			c.Close()
			continue
		}
		open = append(open, c) // held open: the flood the cap is for
	}
	if refused != extra {
		t.Errorf("%d of %d streams past the cap of %d refused", refused, extra, max)
	}
	// Bounded: without the cap this is a stream that never ends.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(webURL + "events")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many event streams") {
		t.Errorf("past the cap: %s %q", resp.Status, body)
	}
	after := metricValues(t, metricsURL)
	if v := after["gonat_web_event_streams"]; v != max {
		t.Errorf("gonat_web_event_streams = %v, want %d", v, max)
	}
	if v := after["gonat_web_event_streams_refused_total"]; v != extra+1 {
		t.Errorf("gonat_web_event_streams_refused_total = %v, want %d", v, extra+1)
	}
	// Refused connections are closed and cost nothing that stays.
	if g0, g1 := before["go_goroutines"], after["go_goroutines"]; g1 > g0+20 {
		t.Errorf("goroutines %v -> %v after %d refused streams", g0, g1, extra)
	}
	if f0, f1 := before["process_open_fds"], after["process_open_fds"]; f1 > f0+20 {
		t.Errorf("open fds %v -> %v after %d refused streams", f0, f1, extra)
	}
	if r := rss(t, pid); r > rssBefore+32<<20 {
		t.Errorf("RSS %d -> %d MB after %d refused streams", rssBefore>>20, r>>20, extra)
	}
}

// refusal runs gonat with args, which should be refused at once; one
// that starts instead is stopped after 20 s (SIGTERM: it removes what it
// made).
func refusal(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gonatBin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	// A lab's state goes to a directory of the test's own.
	cmd.Env = append(os.Environ(), "GONAT_STATE_DIR="+t.TempDir())
	return cmd.CombinedOutput()
}

// metricValues reads every unlabelled sample (and the first of each
// labelled family) of /metrics.
func metricValues(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if ms := f.GetMetric(); len(ms) > 0 {
			out[name] = ms[0].GetGauge().GetValue() + ms[0].GetCounter().GetValue()
		}
	}
	return out
}

// rss is process pid's resident set in bytes.
func rss(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// A capture path that is a symbolic link (planted by another user in a
// shared directory) is refused, and the file it points at, which gonat
// run as root used to truncate, stays as it was; a NAT with captures of
// its own writes them 0600.
func TestPcapSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	const secret = "root:$6$precious:19000:0:99999:7:::\n"
	if err := os.WriteFile(target, []byte(secret), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "in.pcap")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	tp := newTopo(t)
	for _, flag := range []string{"--pcap-inside", "--pcap-outside"} {
		out, err := refusal(t, "run", "--inside", tp.A+"=10.0.0.2/24", "--outside", tp.WAN,
			"--external", "198.51.100.1", flag, link)
		oneLine(t, flag, string(out), exitCode(err), 2, flag+": "+link+" is a symbolic link")
	}
	// lab up --pcap-dir: NAT.inside.pcap planted as a link.
	caps := filepath.Join(dir, "caps")
	os.Mkdir(caps, 0o755)
	if err := os.Symlink(target, filepath.Join(caps, "router.inside.pcap")); err != nil {
		t.Fatal(err)
	}
	out, err := refusal(t, "lab", "up", "../examples/home.toml", "--name", tp.Name+"l", "--pcap-dir", caps)
	oneLine(t, "lab up --pcap-dir", string(out), exitCode(err), 2, "router.inside.pcap is a symbolic link")
	if b, _ := os.ReadFile(target); string(b) != secret {
		t.Errorf("the link's target changed to %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link itself changed: %v", err)
	}
	if out, _ := exec.Command("ip", "-n", tp.A, "-o", "link").CombinedOutput(); strings.Contains(string(out), "gnat") {
		t.Errorf("a refused start left a device behind:\n%s", out)
	}
	in, outside := filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcap")
	tp.startNAT("--pcap-inside", in, "--pcap-outside", outside)
	for _, f := range []string{in, outside} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("capture %s: %v %v, want mode 0600", f, fi, err)
		}
	}
}
