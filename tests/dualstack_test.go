package tests

// Dual-stack ports: IPv6 prefixes on --inside and IPv6 --external
// addresses put IPv6 on the TUN devices (no duplicate address detection,
// no router advertisements) and routes through them, and nothing is left
// when gonat exits.

import (
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/lab/labtest"
)

func TestRunDualStackPorts(t *testing.T) {
	tp := newTopo(t)
	cmd := exec.Command(gonatBin, "run",
		"--inside", tp.A+"=10.0.0.2/24,fd00:1::2/64",
		"--inside", tp.B+"=10.0.0.3/24",
		"--outside", tp.WAN, "--external", "198.51.100.1,2001:db8:1::1", "--name", tp.Name)
	out, errOut := newLineBuffer(), newLineBuffer()
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gonat exit: %v\nstderr: %s", err, errOut.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("gonat did not exit within 10s of SIGTERM")
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(15 * time.Second)
	for !out.contains("ready") {
		select {
		case <-exited:
			t.Fatalf("gonat exited before ready\nstderr: %s", errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gonat not ready after 15s\nstdout: %s\nstderr: %s", out.String(), errOut.String())
		}
	}
	if !out.contains("external 198.51.100.1,2001:db8:1::1") || !out.contains("10.0.0.2/24,fd00:1::2/64") {
		t.Errorf("ready line does not show the IPv6 addresses: %s", out.String())
	}

	ip := func(n string, args ...string) string {
		t.Helper()
		o, err := exec.Command("ip", append([]string{"-n", n}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s %v: %v\n%s", n, args, err, o)
		}
		return string(o)
	}
	addrs := ip(tp.A, "-6", "-o", "addr", "show")
	if !strings.Contains(addrs, "inet6 fd00:1::2/64") {
		t.Errorf("host A has no fd00:1::2/64:\n%s", addrs)
	}
	if strings.Contains(addrs, "tentative") || strings.Contains(addrs, "fe80:") {
		t.Errorf("a TUN port ran DAD or made a link-local address:\n%s", addrs)
	}
	if r := ip(tp.A, "-6", "route", "show", "default"); !strings.Contains(r, "default dev gnat") {
		t.Errorf("host A's IPv6 default route does not go through the TUN: %q", r)
	}
	if r := ip(tp.A, "-4", "route", "show", "default"); !strings.Contains(r, "default dev gnat") {
		t.Errorf("host A lost its IPv4 default route: %q", r)
	}
	// An IPv4-only port stays IPv4-only.
	if a := ip(tp.B, "-6", "-o", "addr", "show", "dev", "gnat0"); strings.TrimSpace(a) != "" {
		t.Errorf("IPv4-only port B carries IPv6:\n%s", a)
	}
	if r := ip(tp.B, "-6", "route", "show", "default"); strings.TrimSpace(r) != "" {
		t.Errorf("IPv4-only port B has an IPv6 default route: %q", r)
	}
	if r := ip(tp.WAN, "-6", "route", "show", "2001:db8:1::1"); !strings.Contains(r, "dev gnat") {
		t.Errorf("the external IPv6 address is not routed to the outside port: %q", r)
	}
	// The kernel hands the host's IPv6 packets to gonat: the TUN's
	// transmit counter grows with a ping over IPv6.
	before := ip(tp.A, "-s", "link", "show", "dev", "gnat0")
	exec.Command("ip", "netns", "exec", tp.A, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "2001:db8:2::9").Run()
	if after := ip(tp.A, "-s", "link", "show", "dev", "gnat0"); after == before {
		t.Errorf("no IPv6 packet went into the TUN device")
	}

	stop()
	for _, n := range []string{tp.A, tp.B, tp.WAN} {
		if l := ip(n, "-o", "link", "show"); strings.Contains(l, "gnat") {
			t.Errorf("namespace %s still has a gonat device after exit:\n%s", n, l)
		}
		if r := ip(n, "-6", "route", "show"); strings.Contains(r, "fd00:1") || strings.Contains(r, "2001:db8") {
			t.Errorf("namespace %s keeps IPv6 routes after exit:\n%s", n, r)
		}
	}
}

func TestRunDualStackBadFlags(t *testing.T) {
	tp := newTopo(t)
	cases := []struct {
		name   string
		inside string
		ext    string
		want   string
	}{
		{"IPv6 only inside", tp.A + "=fd00:1::2/64", "198.51.100.1", "--inside"},
		{"anycast inside", tp.A + "=10.0.0.2/24,fd00:1::/64", "198.51.100.1", "anycast"},
		{"link-local inside", tp.A + "=10.0.0.2/24,fe80::2/64", "198.51.100.1", "--inside"},
		{"bad IPv6 inside", tp.A + "=10.0.0.2/24,fd00:1::zz/64", "198.51.100.1", "--inside"},
		{"IPv6 only external", tp.A + "=10.0.0.2/24", "2001:db8:1::1", "--external"},
		{"multicast external", tp.A + "=10.0.0.2/24", "198.51.100.1,ff02::1", "--external"},
		{"mapped external", tp.A + "=10.0.0.2/24", "198.51.100.1,::ffff:198.51.100.2", "--external"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := exec.Command(gonatBin, "run", "--inside", c.inside, "--outside", tp.WAN, "--external", c.ext).CombinedOutput()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit 2 and one line naming %s", code, out, c.want)
			}
		})
	}
}

// A dual-stack lab (examples/dual-stack.toml): hosts behind the NAT have
// their IPv6 address and ::/0 through the TUN, the public dual-stack
// server is reachable over IPv6 from another public host (through the
// core, not the NAT), the lab DNS answers AAAA for it, lab status shows
// the IPv6 addresses, and nothing is left after down.
func TestDualStackLab(t *testing.T) {
	topo := labtest.Load(t, "../examples/dual-stack.toml")
	l := labtest.Up(t, topo, labOpts())
	alice := l.Node("alice")
	out, err := alice.Command("ip", "-6", "-o", "addr", "show").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "inet6 fd00:1::2/64") {
		t.Errorf("alice: ip -6 addr: %v\n%s", err, out)
	}
	out, err = alice.Command("ip", "-6", "route", "show", "default").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "default dev gnat") {
		t.Errorf("alice: ip -6 route show default: %v, %q; want the default route through the TUN", err, out)
	}
	out, err = l.Node("peer").Command("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "2001:db8::10").CombinedOutput()
	if err != nil {
		t.Errorf("peer cannot ping the server over IPv6: %v\n%s", err, out)
	}
	for _, from := range []string{"alice", "peer"} {
		out, err := l.Node(from).Command("getent", "ahostsv6", "server").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "2001:db8::10 ") {
			t.Errorf("%s: getent ahostsv6 server: %v, %q; want 2001:db8::10", from, err, out)
		}
	}
	out, err = alice.Command("getent", "ahostsv6", "router").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "2001:db8::100 ") {
		t.Errorf("alice: getent ahostsv6 router: %v, %q; want the NAT's external6 2001:db8::100", err, out)
	}
	// The NAT's external6 is routed to its outside port in the core.
	out, _ = l.Node(lab.Public).Command("ip", "-6", "route", "show", "2001:db8::100").CombinedOutput()
	if !strings.Contains(string(out), "dev gnat") {
		t.Errorf("core: no route for external6 to the NAT's outside port: %q", out)
	}
	st := l.Status()
	want := map[string]string{"alice": "10.0.0.2 fd00:1::2", "router": "198.51.100.1 2001:db8::100", "server": "203.0.113.10 2001:db8::10"}
	for _, n := range st.Nodes {
		if w, ok := want[n.Name]; ok {
			if got := strings.Join(n.Addresses, " "); got != w {
				t.Errorf("status of %s: addresses %s, want %s", n.Name, got, w)
			}
			delete(want, n.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("status lacks %v", want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := lab.NamespacesOf(l.Name); len(left) > 0 {
		t.Errorf("namespaces left after down: %v", left)
	}
}

// Nested dual-stack NATs: the carrier's inside6 carries the home NAT's
// external6 (assigned from it), the uplink between them routes IPv6, and
// a host behind the home NAT has its IPv6 address and route; the lab's
// status lists the IPv6 addresses.
func TestDualStackNestedLab(t *testing.T) {
	topo := labtest.Parse(t, `
[[nat]]
name = "carrier"
external = "198.51.100.1"
inside = "100.64.0.0/24"
inside6 = "2001:db8:100::/56"
[[nat]]
name = "home"
upstream = "carrier"
external = "100.64.0.2"
inside = "10.0.1.0/24"
inside6 = "fd00:1::/64"
[[host]]
name = "alice"
network = "home"
[[host]]
name = "stun"
network = "public"
address = ["203.0.113.1", "203.0.113.2"]
`)
	if got := topo.NAT("home").External6; len(got) != 1 || got[0].String() != "2001:db8:100::2" {
		t.Fatalf("home external6 %v, want 2001:db8:100::2", got)
	}
	l := labtest.Up(t, topo, labOpts())
	uplink := l.Node("home")
	out, _ := uplink.Command("ip", "-6", "route", "show").CombinedOutput()
	// The carrier's inside port for home: ::/0 towards the carrier; home's
	// outside port: its external6.
	if !strings.Contains(string(out), "default dev gnat") || !strings.Contains(string(out), "2001:db8:100::2 dev gnat") {
		t.Errorf("home's uplink IPv6 routes:\n%s", out)
	}
	out, _ = l.Node("alice").Command("ip", "-6", "-o", "addr", "show").CombinedOutput()
	if !strings.Contains(string(out), "inet6 fd00:1::2/64") {
		t.Errorf("alice: ip -6 addr:\n%s", out)
	}
	out, _ = l.Node(lab.Public).Command("ip", "-6", "route", "show", "2001:db8::100").CombinedOutput()
	if !strings.Contains(string(out), "dev gnat") {
		t.Errorf("core: carrier's external6 2001:db8::100 not routed to its outside port: %q", out)
	}
	var st []string
	for _, n := range l.Status().Nodes {
		st = append(st, n.Name+" "+strings.Join(n.Addresses, ","))
	}
	for _, want := range []string{"alice 10.0.1.2,fd00:1::2", "home 100.64.0.2,2001:db8:100::2", "carrier 198.51.100.1,2001:db8::100"} {
		if !slices.Contains(st, want) {
			t.Errorf("status lacks %s: %v", want, st)
		}
	}
}
