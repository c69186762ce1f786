package tests

// NAT64 and DNS64 end to end (examples/nat64.toml): the IPv6-only phone
// behind the carrier's NAT64 reaches the IPv4-only server by name, its
// resolver given AAAA records synthesized by the lab DNS server, with
// ping, curl and a UDP exchange; the server's ICMP port unreachable comes
// back to it as ICMPv6; the NAT's table shows the phone's own address.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/observe"
)

// ahosts resolves name on node with glibc (`getent ahosts`, through the
// resolv.conf the lab wrote) and returns the addresses in its order.
func ahosts(t *testing.T, l *labtest.Lab, node, name string) []string {
	t.Helper()
	out, err := l.Node(node).Command("getent", "ahosts", name).CombinedOutput()
	if err != nil {
		t.Fatalf("getent ahosts %s on %s: %v\n%s", name, node, err, out)
	}
	t.Logf("getent ahosts %s on %s:\n%s", name, node, out)
	var addrs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (len(addrs) == 0 || addrs[len(addrs)-1] != f[0]) {
			addrs = append(addrs, f[0])
		}
	}
	return addrs
}

func TestNAT64DNS64(t *testing.T) {
	l := labtest.Up(t, labtest.Load(t, "../examples/nat64.toml"), labOpts())
	const synth = "64:ff9b::cb00:710a" // 203.0.113.10 in 64:ff9b::/96

	// DNS64: server has only an A record, so the phone's resolver gets a
	// synthesized AAAA; web has a real AAAA, which is kept.
	if got := ahosts(t, l, "phone", "server"); len(got) == 0 || got[0] != synth {
		t.Errorf("getent ahosts server on phone: %v, want %s first (DNS64)", got, synth)
	}
	if got := ahosts(t, l, "phone", "web"); len(got) == 0 || got[0] != "2001:db8::20" || strings.Contains(strings.Join(got, " "), "64:ff9b") {
		t.Errorf("getent ahosts web on phone: %v, want the real AAAA 2001:db8::20 and nothing synthesized", got)
	}
	if got := ahosts(t, l, "server", "server"); strings.Contains(strings.Join(got, " "), "64:ff9b") {
		t.Errorf("a public host got synthesized AAAA records: %v", got)
	}

	// ICMP: ping by name, ICMPv6 echo <-> ICMP echo.
	if out, err := l.Node("phone").Command("ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "2", "server").CombinedOutput(); err != nil {
		t.Errorf("phone cannot ping server through NAT64: %v\n%s", err, out)
	}

	// TCP: curl by name; the IPv4 server sees the carrier's address.
	ln, err := ns.Listen(l.Node("server").Namespace, "tcp4", "203.0.113.10:8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "seen %s\n", r.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	out, err := l.Node("phone").Command("curl", "-6", "-sS", "--max-time", "10", "http://server:8080/").CombinedOutput()
	t.Logf("curl -6 http://server:8080/ on phone: %s", out)
	if err != nil || !strings.HasPrefix(string(out), "seen 198.51.100.64:") {
		t.Errorf("curl http://server:8080/ on phone: %v %q, want the server to see 198.51.100.64", err, out)
	}

	// UDP to the name's synthesized address: echoed with the source the
	// server saw; then to a closed port, whose ICMP port unreachable
	// reaches the phone's socket as ICMPv6 (ECONNREFUSED).
	pc, err := ns.ListenPacket(l.Node("server").Namespace)("udp4", "203.0.113.10:5300")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append(buf[:n:n], " from "+from.String()...), from)
		}
	}()
	if got := udpAsk(t, l, "phone", "["+synth+"]:5300", "ping"); !strings.HasPrefix(got, "ping from 198.51.100.64:") {
		t.Errorf("UDP through NAT64 answered %q, want it seen from 198.51.100.64", got)
	}
	if got := udpAsk(t, l, "phone", "["+synth+"]:5301", "anyone?"); got != "refused" {
		t.Errorf("UDP to a closed port answered %q, want ICMPv6 port unreachable (connection refused)", got)
	}

	// The bindings show the phone's IPv6 address, not an alias.
	var rows []observe.Mapping
	l.TablePages("carrier", func(page []observe.Mapping) error {
		rows = append(rows, page...)
		return nil
	})
	protos := map[string]bool{}
	for _, m := range rows {
		if !strings.HasPrefix(m.Internal, "[fd00:64::2]:") {
			t.Errorf("binding %s %s -> %s: internal is not the phone's IPv6 address", m.Proto, m.Internal, m.External)
		}
		protos[m.Proto] = true
	}
	if !protos["udp"] || !protos["tcp"] || !protos["icmp"] {
		t.Errorf("carrier's bindings %+v, want udp, tcp and icmp ones", rows)
	}
}

// udpAsk sends msg over UDP from node to addr and returns the answer,
// "refused" for an ICMP(v6) port unreachable, or "" after no answer.
func udpAsk(t *testing.T, l *labtest.Lab, node, addr, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := ns.DialContext(ctx, l.Node(node).Namespace, &net.Dialer{}, "udp6", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for range 5 {
		if _, err := c.Write([]byte(msg)); errors.Is(err, syscall.ECONNREFUSED) {
			return "refused"
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "refused"
		}
		if err == nil {
			return string(buf[:n])
		}
	}
	return ""
}
