package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gonat/gonat/internal/privtest"
)

// gonat table --json lists the mapping a STUN exchange made, with the
// endpoints the server saw.
func TestTableJSON(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--preset", "full-cone")
	a := udp(t, tp.A, ":5000")
	m := mapped(t, a, stunServer)
	out, err := exec.Command(gonatBin, "table", "--lab", tp.Name, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("gonat table: %v\n%s", err, out)
	}
	var rows []struct {
		Proto, Internal, External string
		Remotes                   []string
		PacketsOut                uint64  `json:"packets_out"`
		ExpiresIn                 float64 `json:"expires_in"` // seconds, a number
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	found := false
	for _, r := range rows {
		if r.Proto == "udp" && r.Internal == "10.0.0.2:5000" {
			found = true
			if r.External != m.String() || len(r.Remotes) != 1 || r.Remotes[0] != stunServer.String() || r.PacketsOut == 0 {
				t.Errorf("row %+v; want external %s (what the server saw), remote %s", r, m, stunServer)
			}
			// The default UDP timeout is 5m; the mapping is seconds old.
			if r.ExpiresIn < 250 || r.ExpiresIn > 300 {
				t.Errorf("expires_in %v, want about 300 (seconds)", r.ExpiresIn)
			}
		}
	}
	if !found {
		t.Errorf("no row for 10.0.0.2:5000 in %s", out)
	}
}

// --watch streams NEW, then a DROP with its reason for an unsolicited
// packet, then EXPIRE when the mapping lapses. The DROP names the
// packet's endpoints in fields of their own, not only in its text.
func TestTableWatch(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--preset", "port-restricted-cone", "--udp-timeout", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gonatBin, "table", "--lab", tp.Name, "--watch", "--json")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	events := make(chan map[string]string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]string
			json.Unmarshal(sc.Bytes(), &ev)
			events <- ev
		}
		close(events)
	}()
	time.Sleep(300 * time.Millisecond) // the watch connects; nothing to poll for
	a := udp(t, tp.A, ":5000")
	m := mapped(t, a, stunServer)
	w := udp(t, tp.WAN, "203.0.113.2:4000")
	w.WriteToUDPAddrPort([]byte("unsolicited"), m)
	var kinds []string
	sawDrop := false
	for ev := range events {
		if ev["internal"] != "10.0.0.2:5000" && ev["kind"] != "DROP" {
			continue
		}
		kinds = append(kinds, ev["kind"])
		if ev["kind"] == "DROP" && ev["reason"] == "filtered" && strings.Contains(ev["text"], "203.0.113.2:4000") {
			sawDrop = true
			want := map[string]string{"nat": tp.Name, "direction": "inbound", "source": "203.0.113.2:4000", "remote": "203.0.113.2:4000",
				"destination": m.String(), "external": m.String()}
			for k, v := range want {
				if ev[k] != v {
					t.Errorf("DROP event %s = %q, want %q: %v", k, ev[k], v, ev)
				}
			}
		}
		if ev["kind"] == "EXPIRE" {
			break
		}
	}
	if len(kinds) == 0 || kinds[0] != "NEW" || kinds[len(kinds)-1] != "EXPIRE" || !sawDrop {
		t.Errorf("events %v (filtered drop seen: %v); want NEW first, a DROP reason=filtered, EXPIRE last", kinds, sawDrop)
	}
}

// --pcap-inside and --pcap-outside hold the same packet before and after
// translation, and tshark reads both.
func TestPcapBothSides(t *testing.T) {
	tshark := privtest.Tool(t, "tshark")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap")
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--pcap-inside", in, "--pcap-outside", out)
	m := mapped(t, udp(t, tp.A, ":5000"), stunServer)
	tp.stopNAT() // flushes and closes the files
	read := func(f string) string {
		o, err := exec.Command(tshark, "-n", "-r", f, "-T", "fields", "-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport").CombinedOutput()
		if err != nil {
			t.Fatalf("tshark -r %s: %v\n%s", f, err, o)
		}
		return string(o)
	}
	inside, outside := read(in), read(out)
	if !strings.Contains(inside, "10.0.0.2\t5000\t203.0.113.1\t3478") {
		t.Errorf("inside capture lacks the request from 10.0.0.2:5000:\n%s", inside)
	}
	if !strings.Contains(outside, fmt.Sprintf("%s\t%d\t203.0.113.1\t3478", m.Addr(), m.Port())) {
		t.Errorf("outside capture lacks the request from %s:\n%s", m, outside)
	}
	if strings.Contains(outside, "10.0.0.2") {
		t.Errorf("a private address leaked to the outside capture:\n%s", outside)
	}
}

// /metrics parses with Prometheus' own parser, and its packet counters
// equal the packets the test sent.
func TestMetrics(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--metrics", "127.0.0.1:0")
	url := tp.waitStderr(`metrics on (http://\S+/metrics)`)
	w := udp(t, tp.WAN, "203.0.113.1:4000")
	a := udp(t, tp.A, ":5000")
	const n = 25
	for i := range n {
		a.WriteToUDPAddrPort([]byte(fmt.Sprint(i)), netip.MustParseAddrPort("203.0.113.1:4000"))
	}
	got := 0
	for got < n {
		if _, _, err := recvFrom(w, 2*time.Second); err != nil {
			break
		}
		got++
	}
	if got != n {
		t.Fatalf("server got %d of %d datagrams", got, n)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		for _, m := range fams[name].GetMetric() {
			ok := true
			for _, l := range m.GetLabel() {
				if v, want := labels[l.GetName()], l.GetValue(); v != "" && v != want {
					ok = false
				}
			}
			if ok {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return -1
	}
	if v := value("gonat_packets_total", map[string]string{"direction": "outbound", "proto": "udp"}); v != n {
		t.Errorf("gonat_packets_total{outbound,udp} = %v, want %d", v, n)
	}
	if v := value("gonat_mappings", map[string]string{"proto": "udp"}); v != 1 {
		t.Errorf("gonat_mappings{udp} = %v, want 1", v)
	}
	if v := value("gonat_mappings_created_total", nil); v != 1 {
		t.Errorf("gonat_mappings_created_total = %v, want 1", v)
	}
	// Exported, and small: 25 datagrams from one host cannot have waited
	// for each other more than 25 times.
	if v := value("gonat_engine_lock_waits_total", nil); v < 0 || v > n {
		t.Errorf("gonat_engine_lock_waits_total = %v, want 0 to %d", v, n)
	}
}

// gonat run --name names the NAT everywhere it shows: the table, lab
// status, the events, the web view and the metrics' nat label, so
// several NATs can be told apart in one Prometheus. A name a node of the
// run already has is refused.
func TestRunNameNamesNAT(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--metrics", "127.0.0.1:0", "--web", "127.0.0.1:0")
	metricsURL := tp.waitStderr(`metrics on (http://\S+/metrics)`)
	webURL := tp.waitStderr(`web view on (http://\S+/)`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch := exec.CommandContext(ctx, gonatBin, "table", "--lab", tp.Name, "--watch", "--json")
	stdout, _ := watch.StdoutPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); watch.Wait() }()
	firstEvent := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]string
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["kind"] == "NEW" {
				firstEvent <- ev
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the watch connects; nothing to poll for
	w := udp(t, tp.WAN, "203.0.113.1:4000")
	udp(t, tp.A, ":5000").WriteToUDPAddrPort([]byte("hello"), netip.MustParseAddrPort("203.0.113.1:4000"))
	if _, _, err := recvFrom(w, 2*time.Second); err != nil {
		t.Fatalf("the datagram did not pass: %v", err)
	}

	select {
	case ev := <-firstEvent:
		if ev["nat"] != tp.Name {
			t.Errorf("event of NAT %q, want %q: %v", ev["nat"], tp.Name, ev)
		}
	case <-ctx.Done():
		t.Error("no NEW event on the watch")
	}

	out, err := exec.Command(gonatBin, "table", "--lab", tp.Name, "--json").CombinedOutput()
	var rows []struct{ NAT string }
	if err != nil || json.Unmarshal(out, &rows) != nil || len(rows) != 1 || rows[0].NAT != tp.Name {
		t.Errorf("gonat table --json: %v, rows %+v, want one of NAT %s\n%s", err, rows, tp.Name, out)
	}
	out, err = exec.Command(gonatBin, "table", "--lab", tp.Name).CombinedOutput()
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); err != nil || len(lines) != 2 || !strings.HasPrefix(lines[1], tp.Name+" ") {
		t.Errorf("gonat table: %v; want the mapping's row to start with %s:\n%s", err, tp.Name, out)
	}
	out, err = exec.Command(gonatBin, "lab", "status", "--lab", tp.Name, "--json").CombinedOutput()
	var st struct{ NATs []struct{ Name string } }
	if err != nil || json.Unmarshal(out, &st) != nil || len(st.NATs) != 1 || st.NATs[0].Name != tp.Name {
		t.Errorf("gonat lab status --json: %v, NATs %+v, want %s\n%s", err, st.NATs, tp.Name, out)
	}

	resp, err := http.Get(webURL + "api/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		NATs  []struct{ Name string }
		Nodes []struct{ Name, Kind string }
	}
	json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	natNodes := 0
	for _, n := range snap.Nodes {
		if n.Kind == "nat" {
			natNodes++
			if n.Name != tp.Name {
				t.Errorf("web view: NAT node %q, want %q", n.Name, tp.Name)
			}
		}
	}
	if len(snap.NATs) != 1 || snap.NATs[0].Name != tp.Name || natNodes != 1 {
		t.Errorf("web view: NATs %+v, nodes %+v; want one NAT %s", snap.NATs, snap.Nodes, tp.Name)
	}

	resp, err = http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	labelled := 0
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "nat" {
					continue
				}
				labelled++
				if l.GetValue() != tp.Name {
					t.Errorf("%s{nat=%q}, want nat=%q", name, l.GetValue(), tp.Name)
				}
			}
		}
	}
	if labelled == 0 {
		t.Error("no metric carries a nat label")
	}

	// The NAT's name must not be a node's: the drawing and lab set
	// would mix the two up.
	tp2 := newTopo(t)
	for _, taken := range []string{tp2.C, "public"} {
		// Bounded: a gonat that accepts the name runs until killed.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err = exec.CommandContext(ctx, gonatBin, "run", "--inside", tp2.C+"=10.0.0.4/24", "--outside", tp2.WAN,
			"--external", "198.51.100.1", "--name", taken).CombinedOutput()
		cancel()
		if code := exitCode(err); code != 2 || !strings.Contains(string(out), "--name") {
			t.Errorf("--name %s, the name of a node: exit %d, %s; want exit 2 naming --name", taken, code, out)
		}
	}
}

// waitStderr waits for gonat's stderr to show re and returns its first
// group.
func (tp *topo) waitStderr(re string) string {
	tp.t.Helper()
	return waitMatch(tp.t, tp.stderr, re, 5*time.Second)
}

// waitMatch waits up to d for out to show re and returns its first group.
func waitMatch(t *testing.T, out *lineBuffer, re string, d time.Duration) string {
	t.Helper()
	r := regexp.MustCompile(re)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := r.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no %s after %v in:\n%s", re, d, out.String())
	return ""
}
