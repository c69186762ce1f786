package tests

// The nat66 mode in a lab: two dual-stack NATs translate IPv6 addresses
// and ports as their IPv4 sides do, one a port-restricted cone
// (endpoint-independent mapping, address-and-port-dependent filtering),
// one symmetric (address-and-port-dependent mapping). Real pings, a TCP
// transfer and UDP sockets (datagrams in fragments too) judge them.

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/observe"
)

const nat66Topo = `
name = "nat66"

[[nat]]
name = "cone"
preset = "port-restricted-cone"
external = "198.51.100.1"
inside = "10.0.0.0/24"
inside6 = "fd00:1::/64"
ipv6 = "nat66"

[[nat]]
name = "sym"
preset = "symmetric"
external = "198.51.100.2"
inside = "10.0.1.0/24"
inside6 = "fd00:2::/64"
ipv6 = "nat66"

[[host]]
name = "alice"
network = "cone"

[[host]]
name = "carol"
network = "sym"

[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "2001:db8::10", "2001:db8::11"]

[[host]]
name = "peer"
network = "public"
address = ["203.0.113.11", "2001:db8::20"]
`

// udp6On opens a UDP socket on a lab node.
func udp6On(t *testing.T, l *labtest.Lab, node, laddr string) *net.UDPConn {
	t.Helper()
	c, err := ns.ListenPacket(l.Node(node).Namespace)("udp6", laddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

func TestIPv6NAT66(t *testing.T) {
	topo := labtest.Parse(t, nat66Topo)
	ext := map[string]netip.Addr{}
	for _, n := range []string{"cone", "sym"} {
		e6 := topo.NAT(n).External6
		if len(e6) != 1 {
			t.Fatalf("%s external6 %v, want one address", n, e6)
		}
		ext[n] = e6[0]
	}
	l := labtest.Up(t, topo, labOpts())

	if out, ok := ping6(l, "alice", "2001:db8::10"); !ok {
		t.Fatalf("alice cannot ping the server over IPv6 through nat66:\n%s", out)
	}
	start := time.Now()
	seen := echo6(t, l, "alice", 10<<20)
	t.Logf("10 MB each way over TCP through nat66 in %v", time.Since(start).Round(time.Millisecond))
	if ap, err := netip.ParseAddrPort(seen); err != nil || ap.Addr() != ext["cone"] || ap.Port() == 0 {
		t.Fatalf("the server saw the connection from %q, want %s and a mapped port", seen, ext["cone"])
	}

	// UDP mapping: the server's three endpoints (two ports of one
	// address, another address) see one external endpoint from the cone
	// and three from the symmetric NAT.
	dsts := []string{"[2001:db8::10]:3478", "[2001:db8::10]:3479", "[2001:db8::11]:3478"}
	var srv []*net.UDPConn
	for _, d := range dsts {
		srv = append(srv, udp6On(t, l, "server", d))
	}
	views := func(host string) []netip.AddrPort {
		c := udp6On(t, l, host, "[::]:5000")
		var got []netip.AddrPort
		for i, d := range dsts {
			if _, err := c.WriteToUDPAddrPort([]byte(host), netip.MustParseAddrPort(d)); err != nil {
				t.Fatal(err)
			}
			msg, from, err := recvFrom(srv[i], 3*time.Second)
			if err != nil || msg != host {
				t.Fatalf("%s -> %s: %q, %v", host, d, msg, err)
			}
			got = append(got, from)
		}
		return got
	}
	cone, sym := views("alice"), views("carol")
	t.Logf("the server sees alice as %v, carol as %v", cone, sym)
	for _, v := range cone {
		if v != cone[0] || v.Addr() != ext["cone"] {
			t.Errorf("endpoint-independent mapping: the server saw alice as %v, want one endpoint of %s", cone, ext["cone"])
			break
		}
	}
	if sym[0].Addr() != ext["sym"] || sym[0] == sym[1] || sym[0] == sym[2] || sym[1] == sym[2] {
		t.Errorf("address-and-port-dependent mapping: the server saw carol as %v, want three endpoints of %s", sym, ext["sym"])
	}

	// Filtering (address and port dependent): the peer, to whom alice
	// never sent, is dropped; the server's endpoint she sent to answers.
	alice := udp6On(t, l, "alice", "[::]:6000")
	if _, err := alice.WriteToUDPAddrPort([]byte("hi"), netip.MustParseAddrPort(dsts[0])); err != nil {
		t.Fatal(err)
	}
	_, mapped, err := recvFrom(srv[0], 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	peer := udp6On(t, l, "peer", "[2001:db8::20]:3478")
	peer.WriteToUDPAddrPort([]byte("unsolicited"), mapped)
	if msg, from, err := recvFrom(alice, 500*time.Millisecond); err == nil {
		t.Errorf("the peer's unsolicited datagram reached alice: %q from %s", msg, from)
	}
	srv[0].WriteToUDPAddrPort([]byte("reply"), mapped)
	if msg, from, err := recvFrom(alice, 3*time.Second); err != nil || msg != "reply" || from != netip.MustParseAddrPort(dsts[0]) {
		t.Errorf("the server's reply to alice: %q from %s, %v", msg, from, err)
	}
	// A datagram larger than the links' MTU (1500) goes in fragments,
	// each way: it arrives reassembled, its checksum right for the
	// translation. 1800 bytes: two fragments, within recvFrom's buffer.
	big := strings.Repeat("nat66-fragment ", 120)
	alice.WriteToUDPAddrPort([]byte(big), netip.MustParseAddrPort(dsts[0]))
	if msg, from, err := recvFrom(srv[0], 3*time.Second); err != nil || msg != big || from != mapped {
		t.Errorf("a fragmented datagram out: %d bytes from %s, %v", len(msg), from, err)
	}
	srv[0].WriteToUDPAddrPort([]byte(big), mapped)
	if msg, _, err := recvFrom(alice, 3*time.Second); err != nil || msg != big {
		t.Errorf("a fragmented datagram in: %d bytes, %v", len(msg), err)
	}
	// And ping's own: 1800-byte echoes, fragmented each way.
	if out, err := l.Node("alice").Command("ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-s", "1800", "2001:db8::10").CombinedOutput(); err != nil {
		t.Errorf("fragmented echoes through nat66: %v\n%s", err, out)
	}
	if p := natPackets(t, l, "cone"); p["filtered"] == 0 {
		t.Errorf("no filtered drops counted: %v", p)
	}

	// The table shows the IPv6 endpoints, never the aliases inside it.
	var rows []string
	for _, m := range observe.Mappings("cone", l.NAT("cone").Engine, time.Now()) {
		rows = append(rows, m.Proto+" "+m.Internal+" "+m.External+" "+strings.Join(m.Remotes, ","))
	}
	all := strings.Join(rows, "\n")
	if !strings.Contains(all, "udp [fd00:1::2]:6000 ["+ext["cone"].String()+"]:") || strings.Contains(all, "0.0.0.") {
		t.Errorf("the cone's table:\n%s", all)
	}
}
