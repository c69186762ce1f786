package tests

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/experiment"
	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/stun"
	"github.com/gonat/gonat/table"
)

// labOpts makes host commands run the gonat binary under test.
func labOpts() lab.Options { return lab.Options{GonatPath: gonatBin} }

// natPackets is NAT name's packet counters, by verdict and drop reason,
// from the lab's status.
func natPackets(t *testing.T, l *labtest.Lab, name string) map[string]uint64 {
	t.Helper()
	for _, n := range l.Status().NATs {
		if n.Name == name {
			return n.Packets
		}
	}
	t.Fatalf("no NAT %s in the lab's status", name)
	return nil
}

// nodeUDP opens a UDP socket on a lab node.
func nodeUDP(t *testing.T, l *labtest.Lab, node, laddr string) *net.UDPConn {
	t.Helper()
	c, err := ns.ListenPacket(l.Node(node).Namespace)("udp4", laddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// waitSTUN waits until the STUN server a host command started answers
// from node (over IPv6 when server is IPv6).
func waitSTUN(t *testing.T, l *labtest.Lab, node string, server netip.AddrPort) netip.AddrPort {
	t.Helper()
	var c *net.UDPConn
	if server.Addr().Is6() {
		pc, err := ns.ListenPacket(l.Node(node).Namespace)("udp6", "[::]:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		c = pc.(*net.UDPConn)
	} else {
		c = nodeUDP(t, l, node, ":0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		r, err := stun.Binding(ctx, c, server, 0, 100*time.Millisecond, 3)
		if err == nil {
			return r.Mapped
		}
		if ctx.Err() != nil {
			t.Fatalf("no STUN answer from %s at %s: %v", node, server, err)
		}
	}
}

// Every example comes up, and every private host reaches the public STUN
// server, which sees the outermost NAT's external address (an IPv6-only
// host behind a NAT64 at the server's address in the NAT64 prefix).
func TestExamplesComeUp(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.toml")
	if len(files) < 3 {
		t.Fatalf("want at least 3 examples, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			topo := labtest.Load(t, f)
			l := labtest.Up(t, topo, labOpts())
			var server netip.AddrPort
			for _, h := range topo.Hosts {
				if len(h.Run) > 1 && h.Run[1] == "stun-server" {
					server = netip.AddrPortFrom(h.Addresses[0], stun.DefaultPort)
				}
			}
			if !server.IsValid() {
				t.Fatal("example has no public STUN server host")
			}
			for _, h := range topo.Hosts {
				if h.Network == lab.Public {
					continue
				}
				path := topo.Path(h.Network)
				outer := path[len(path)-1]
				m := waitSTUN(t, l, h.Name, netip.AddrPortFrom(topo.Reach(h.Network, server.Addr()), server.Port()))
				if m.Addr() != outer.External[0] && !contains(outer.External, m.Addr()) {
					t.Errorf("%s (behind %s) seen as %s; want the outermost NAT %s's external address %v",
						h.Name, names(path), m, outer.Name, outer.External)
				}
			}
		})
	}
}

func contains(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func names(p []*lab.NATNode) string {
	var s []string
	for _, n := range p {
		s = append(s, n.Name)
	}
	return strings.Join(s, " -> ")
}

const nestedTopo = `
name = "nested"
[[nat]]
name = "cgnat"
preset = "full-cone"
external = ["198.51.100.1"]
inside = "100.64.0.0/24"

[[nat]]
name = "home1"
preset = "full-cone"
upstream = "cgnat"
external = ["100.64.0.2"]
inside = "10.0.1.0/24"

[[nat]]
name = "home2"
preset = "full-cone"
upstream = "cgnat"
external = ["100.64.0.3"]
inside = "10.0.2.0/24"

[[host]]
name = "alice"
network = "home1"

[[host]]
name = "bob"
network = "home2"

[[host]]
name = "stun"
network = "public"
address = ["203.0.113.10", "203.0.113.11"]
run = ["gonat", "stun-server", "--primary", "203.0.113.10", "--alternate", "203.0.113.11"]
`

// Two hosts behind one carrier NAT but different home NATs reach each
// other's public endpoints only through hairpinning on the carrier NAT.
func TestCarrierNATHairpin(t *testing.T) {
	l := labtest.Up(t, labtest.Parse(t, nestedTopo), labOpts())
	server := netip.MustParseAddrPort("203.0.113.10:3478")
	waitSTUN(t, l, "alice", server)
	exchange := func() (bool, bool) {
		a, b := nodeUDP(t, l, "alice", ":5000"), nodeUDP(t, l, "bob", ":5001")
		ma, mb := mappedOn(t, a, server), mappedOn(t, b, server)
		if ma.Addr() != netip.MustParseAddr("198.51.100.1") || mb.Addr() != ma.Addr() {
			t.Fatalf("alice seen as %s, bob as %s: want both on the carrier's 198.51.100.1", ma, mb)
		}
		var gotA, gotB bool
		for i := 0; i < 8 && !(gotA && gotB); i++ {
			a.WriteToUDPAddrPort([]byte("from alice"), mb)
			b.WriteToUDPAddrPort([]byte("from bob"), ma)
			if msg, from, err := recvFrom(a, 150*time.Millisecond); err == nil && msg == "from bob" {
				gotA = true
				if from != mb {
					t.Errorf("alice heard bob from %s, want his public endpoint %s", from, mb)
				}
			}
			if msg, _, err := recvFrom(b, 150*time.Millisecond); err == nil && msg == "from alice" {
				gotB = true
			}
		}
		a.Close()
		b.Close()
		return gotA, gotB
	}
	if a, b := exchange(); !a || !b {
		t.Fatalf("hairpin on: alice heard bob %v, bob heard alice %v", a, b)
	}
	if err := l.NAT("cgnat").Set("", map[string]string{table.SettingHairpin: "false"}); err != nil {
		t.Fatal(err)
	}
	if a, b := exchange(); a || b {
		t.Fatalf("hairpin off on the carrier NAT, yet alice heard bob %v, bob heard alice %v", a, b)
	}
}

func mappedOn(t *testing.T, c *net.UDPConn, server netip.AddrPort) netip.AddrPort {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := stun.Binding(ctx, c, server, 0, 100*time.Millisecond, 5)
	if err != nil {
		t.Fatalf("binding: %v", err)
	}
	return r.Mapped
}

const homeTopo = `
name = "home"
[[nat]]
name = "home"
preset = "full-cone"
port-assignment = "random"
external = ["198.51.100.1"]
inside = "10.0.0.0/24"

[[host]]
name = "alice"
network = "home"

[[host]]
name = "stun"
network = "public"
address = ["203.0.113.10", "203.0.113.11"]
run = ["gonat", "stun-server", "--primary", "203.0.113.10", "--alternate", "203.0.113.11"]
`

// Changing a running NAT's behaviour shows on the next fresh socket;
// flushing its mappings rebinds (the server sees a new port).
func TestLabSetAndFlush(t *testing.T) {
	l := labtest.Up(t, labtest.Parse(t, homeTopo), labOpts())
	server := netip.MustParseAddrPort("203.0.113.10:3478")
	waitSTUN(t, l, "alice", server)
	probe := func() stun.Result {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := stun.Probe(ctx, stun.ProbeConfig{Server: server, ListenPacket: ns.ListenPacket(l.Node("alice").Namespace),
			RTO: 100 * time.Millisecond, Retries: 3})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := probe(); r.Classic != stun.ClassicFullCone {
		t.Fatalf("before set: %q", r.Classic)
	}
	c := nodeUDP(t, l, "alice", ":6000")
	before := mappedOn(t, c, server)
	l.NAT("home").Flush()
	after := mappedOn(t, c, server)
	if after == before {
		t.Errorf("flush did not rebind: the server saw %s before and after", before)
	}
	if err := l.NAT("home").Set("symmetric", nil); err != nil {
		t.Fatal(err)
	}
	if r := probe(); r.Classic != stun.ClassicSymmetric {
		t.Fatalf("after set symmetric: %q (mapping %s)", r.Classic, r.Mapping)
	}
}

// Two labs from the same file, different names, up at once: both work.
func TestTwoLabsSideBySide(t *testing.T) {
	topo := labtest.Parse(t, homeTopo)
	l1 := labtest.Up(t, topo, labOpts())
	l2 := labtest.Up(t, topo, labOpts())
	server := netip.MustParseAddrPort("203.0.113.10:3478")
	for _, l := range []*labtest.Lab{l1, l2} {
		if m := waitSTUN(t, l, "alice", server); m.Addr() != netip.MustParseAddr("198.51.100.1") {
			t.Errorf("lab %s: alice seen as %s", l.Name, m)
		}
	}
}

// The command line: a lab in the background is managed with status, set,
// exec and flush, then its process is killed with SIGKILL, and `lab down`
// still removes every namespace, device and process of it.
func TestLabCLIAndCrash(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "home.toml")
	if err := os.WriteFile(file, []byte(homeTopo), 0o644); err != nil {
		t.Fatal(err)
	}
	name := labtest.Name()
	run := func(args ...string) (string, int) {
		cmd := exec.Command(gonatBin, args...)
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(err)
	}
	t.Cleanup(func() { run("lab", "down", "--lab", name) })
	out, code := run("lab", "up", "-d", file, "--name", name)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "ready") {
		t.Fatalf("lab up -d: exit %d\n%s", code, out)
	}
	if out, code := run("lab", "status", "--lab", name); code != 0 || !strings.Contains(out, "EIM") {
		t.Fatalf("lab status: exit %d\n%s", code, out)
	}
	if out, code := run("lab", "set", "--lab", name, "home", "--preset", "symmetric"); code != 0 {
		t.Fatalf("lab set: exit %d\n%s", code, out)
	}
	// A real program on a node, its exit code passed through.
	var r struct{ Mapping, Classic string }
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code = run("lab", "exec", "--lab", name, "alice", "--", gonatBin, "probe", "--server", "203.0.113.10", "--json", "--rto", "100ms", "--retries", "3")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the STUN server host may still be starting
	}
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r) != nil || r.Classic != "symmetric" {
		t.Fatalf("probe via lab exec after set symmetric: exit %d %+v\n%s", code, r, out)
	}
	if _, code := run("lab", "exec", "--lab", name, "alice", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("lab exec exit code: %d, want 7", code)
	}
	if out, code := run("lab", "flush", "--lab", name, "home"); code != 0 {
		t.Fatalf("lab flush: %d\n%s", code, out)
	}
	if out, code := run("lab", "set", "--lab", name, "nosuchnat", "--preset", "full-cone"); code == 0 || !strings.Contains(out, "nosuchnat") {
		t.Errorf("set on an unknown NAT: exit %d\n%s", code, out)
	}

	// Crash: SIGKILL the lab's process.
	st, err := lab.ReadState(name)
	if err != nil {
		t.Fatal(err)
	}
	labPIDs := []int{st.PID}
	for _, n := range st.Namespaces {
		labPIDs = append(labPIDs, lab.ProcessesIn(n)...)
	}
	if len(labPIDs) < 2 {
		t.Fatalf("found no host process in the lab's namespaces %v", st.Namespaces)
	}
	syscall.Kill(st.PID, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); st.Alive() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	var ours []string
	all, _ := ns.List()
	for _, n := range all {
		if strings.HasPrefix(n, lab.NamespacePrefix(name)) {
			ours = append(ours, n)
		}
	}
	if len(ours) == 0 {
		t.Fatal("the killed lab left no namespaces: the crash test tests nothing")
	}
	if len(etcNetns(name)) == 0 {
		t.Fatal("the killed lab left no resolv.conf: the crash test tests nothing for it")
	}
	if out, code := run("lab", "status", "--lab", name); code == 0 || !strings.Contains(out, "not running") {
		t.Errorf("status of a crashed lab: exit %d\n%s", code, out)
	}
	if out, code := run("lab", "down", "--lab", name); code != 0 {
		t.Fatalf("lab down after crash: exit %d\n%s", code, out)
	}
	all, _ = ns.List()
	for _, n := range all {
		if strings.HasPrefix(n, lab.NamespacePrefix(name)) {
			t.Errorf("namespace %s left after lab down", n)
		}
	}
	for _, d := range etcNetns(name) {
		t.Errorf("%s left after lab down", d)
	}
	// No process of the lab survives (the STUN server host, say).
	for _, pid := range labPIDs {
		if alive(pid) {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			t.Errorf("process %d of the lab survived lab down: %q", pid, b)
		}
	}
	if _, err := os.Stat(lab.StateDir(name)); err == nil {
		t.Errorf("state directory %s left behind", lab.StateDir(name))
	}
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// nestedLab writes nestedTopo to a file and returns it, a lab name of
// this run's, and a runner for gonat commands (output, exit code); the
// lab is taken down when the test ends, whatever happened.
func nestedLab(t *testing.T) (file, name string, run func(args ...string) (string, int)) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "nested.toml")
	if err := os.WriteFile(file, []byte(nestedTopo), 0o644); err != nil {
		t.Fatal(err)
	}
	name = labtest.Name()
	run = func(args ...string) (string, int) {
		out, err := exec.Command(gonatBin, args...).CombinedOutput()
		return string(out), exitCode(err)
	}
	t.Cleanup(func() { run("lab", "down", "--lab", name) })
	return file, name, run
}

// gonat lab verify probes every NAT against a STUN server on its own
// outside and agrees with the configuration, also for a NAT behind
// another NAT and after lab set; a wrong configuration is caught.
func TestLabVerify(t *testing.T) {
	file, name, run := nestedLab(t)
	if out, code := run("lab", "up", "-d", file, "--name", name); code != 0 {
		t.Fatalf("lab up: %d\n%s", code, out)
	}
	// home2 behind the carrier, made symmetric with random ports: verify
	// must measure home2 alone, not home2 combined with the carrier.
	if out, code := run("lab", "set", "--lab", name, "home2", "--preset", "symmetric"); code != 0 {
		t.Fatalf("lab set: %d\n%s", code, out)
	}
	out, code := run("lab", "verify", "--lab", name, "--json")
	var results []struct {
		NAT     string `json:"nat"`
		Skipped string `json:"skipped"`
		Checks  []struct {
			Property, Configured, Observed string
			OK                             bool
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &results); err != nil || code != 0 {
		t.Fatalf("lab verify: exit %d, %v\n%s", code, err, out)
	}
	checked := map[string]bool{}
	for _, r := range results {
		for _, c := range r.Checks {
			checked[r.NAT+"/"+c.Property] = true
			if !c.OK {
				t.Errorf("%s %s: configured %s, observed %s", r.NAT, c.Property, c.Configured, c.Observed)
			}
		}
	}
	for _, want := range []string{"home1/mapping", "home1/filtering", "home1/hairpin", "home1/port-assignment", "home2/mapping", "home2/port-assignment"} {
		if !checked[want] {
			t.Errorf("verify did not check %s: %s", want, out)
		}
	}
}

// A lab verify against a configuration the NAT does not have must fail:
// the check can fail.
func TestVerifyCatchesMismatch(t *testing.T) {
	l := labtest.Up(t, labtest.Parse(t, homeTopo), labOpts())
	wrong, _ := table.Preset("symmetric") // the NAT is full cone
	res := experiment.Verify(context.Background(), []experiment.VerifyTarget{{
		NAT: "home", Configured: wrong, From: l.Node("alice").Namespace, FromName: "alice", Outside: l.Node("home").Namespace,
	}}, [2]netip.Addr{netip.MustParseAddr("192.0.2.254"), netip.MustParseAddr("192.0.2.253")})
	if len(res) != 1 || res[0].Err != "" {
		t.Fatalf("%+v", res)
	}
	if res[0].OK() {
		t.Fatalf("a full-cone NAT passed verification as symmetric: %+v", res[0].Checks)
	}
}

// lab down --all removes every lab.
func TestLabDownAll(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "home.toml")
	os.WriteFile(file, []byte(homeTopo), 0o644)
	names := []string{labtest.Name(), labtest.Name()}
	// A state directory of its own: --all must not touch labs of other
	// test runs or of the machine's users.
	env := append(os.Environ(), "GONAT_STATE_DIR="+t.TempDir())
	gonat := func(args ...string) *exec.Cmd {
		c := exec.Command(gonatBin, args...)
		c.Env = env
		return c
	}
	for _, n := range names {
		out, err := gonat("lab", "up", "-d", file, "--name", n).CombinedOutput()
		if err != nil {
			t.Fatalf("lab up %s: %v\n%s", n, err, out)
		}
	}
	if out, err := gonat("lab", "list").CombinedOutput(); err != nil || !strings.Contains(string(out), names[0]) || !strings.Contains(string(out), names[1]) {
		t.Errorf("lab list: %v\n%s", err, out)
	}
	out, err := gonat("lab", "down", "--all").CombinedOutput()
	if err != nil {
		t.Fatalf("lab down --all: %v\n%s", err, out)
	}
	all, _ := ns.List()
	for _, n := range all {
		for _, l := range names {
			if strings.HasPrefix(n, lab.NamespacePrefix(l)) {
				t.Errorf("namespace %s left after lab down --all", n)
			}
		}
	}
}

// lab up --pcap-dir: each NAT's captures show the same packet before and
// after that NAT; a packet through two NATs shows three addresses.
func TestLabPcapDir(t *testing.T) {
	tshark := privtest.Tool(t, "tshark")
	file, name, run := nestedLab(t)
	caps := filepath.Join(t.TempDir(), "pcap")
	if out, code := run("lab", "up", "-d", file, "--name", name, "--pcap-dir", caps); code != 0 {
		t.Fatalf("lab up: %d\n%s", code, out)
	}
	out, code := run("lab", "exec", "--lab", name, "alice", "--", gonatBin, "probe", "--server", "203.0.113.10", "--rto", "100ms", "--retries", "3")
	if code != 0 {
		t.Fatalf("probe: %d\n%s", code, out)
	}
	if out, code := run("lab", "down", "--lab", name); code != 0 {
		t.Fatalf("lab down: %d\n%s", code, out)
	}
	src := func(f string) string {
		o, err := exec.Command(tshark, "-n", "-r", filepath.Join(caps, f), "-T", "fields", "-e", "ip.src").CombinedOutput()
		if err != nil {
			t.Fatalf("tshark %s: %v\n%s", f, err, o)
		}
		return string(o)
	}
	for f, want := range map[string]string{"home1.inside.pcap": "10.0.1.2", "home1.outside.pcap": "100.64.0.2", "cgnat.inside.pcap": "100.64.0.2", "cgnat.outside.pcap": "198.51.100.1"} {
		if got := src(f); !strings.Contains(got, want+"\n") {
			t.Errorf("%s has no packet from %s:\n%s", f, want, got)
		}
	}
	if got := src("cgnat.outside.pcap"); strings.Contains(got, "10.0.1.2") || strings.Contains(got, "100.64.0.2") {
		t.Errorf("private addresses on the carrier's outside:\n%s", got)
	}
}
