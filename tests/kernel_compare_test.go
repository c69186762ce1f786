package tests

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/ns"
)

// The linux preset against the real thing (docs/nat-requirements.md §3:
// one test run against gonat and a kernel MASQUERADE namespace side by
// side). The same scenario runs behind each, with real sockets, and what
// the servers see must agree:
//   - port overloading: A:5000 -> S1 and B:5000 -> S2 are both seen as
//     port 5000; B:5000 -> S1, whose tuple with 5000 is A's, is seen on
//     another port;
//   - low ports: on a clash, 80 moves within 1-511 and 700 within
//     600-1023.
func TestLinuxPresetMatchesKernel(t *testing.T) {
	privtest.Tool(t, "nft")
	kernel := kernelNAT(t)
	tp := newTopo(t)
	tp.startNAT("--preset", "linux")
	want := natScenario(t, kernel.A, kernel.B, kernel.WAN)
	got := natScenario(t, tp.A, tp.B, tp.WAN)
	t.Logf("kernel MASQUERADE: %s", want)
	t.Logf("gonat --preset linux: %s", got)
	if want.String() != got.String() {
		t.Errorf("gonat --preset linux differs from the kernel:\n kernel %s\n gonat  %s", want, got)
	}
}

// kernelNS is a kernel NAT between two hosts and the WAN namespace.
type kernelNS struct{ A, B, R, WAN string }

// kernelNAT builds hosts A (10.0.1.2) and B (10.0.2.2) behind a router
// namespace doing nftables masquerade to 198.51.100.1, and a WAN
// namespace with srv1 and srv2 (203.0.113.1, .2) on loopback.
func kernelNAT(t *testing.T) kernelNS {
	t.Helper()
	p := fmt.Sprintf("%sk%d", runPrefix, nsCounter.Add(1))
	k := kernelNS{A: p + "a", B: p + "b", R: p + "r", WAN: p + "w"}
	for _, n := range []string{k.A, k.B, k.R, k.WAN} {
		if err := ns.Create(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Delete(n) })
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	pfx := netip.MustParsePrefix
	for i, h := range []string{k.A, k.B} {
		lan := byte(i + 1)
		must(ns.VethPeer(h, "eth0", k.R, "lan"+strconv.Itoa(i)))
		must(ns.AddAddr(h, "eth0", netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, lan, 2}), 24)))
		must(ns.AddAddr(k.R, "lan"+strconv.Itoa(i), netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, lan, 1}), 24)))
		must(ns.AddRoute(h, "eth0", pfx("0.0.0.0/0"), netip.AddrFrom4([4]byte{10, 0, lan, 1})))
	}
	must(ns.VethPeer(k.R, "wan", k.WAN, "eth0"))
	must(ns.AddAddr(k.R, "wan", pfx("198.51.100.1/24")))
	must(ns.AddAddr(k.WAN, "eth0", pfx("198.51.100.254/24")))
	must(ns.AddLocalAddrs(k.WAN, netip.PrefixFrom(srv1, 32), netip.PrefixFrom(srv2, 32)))
	must(ns.AddRoute(k.R, "wan", pfx("203.0.113.0/24"), netip.MustParseAddr("198.51.100.254")))
	must(ns.Sysctl(k.R, "net/ipv4/ip_forward", "1"))
	nft := exec.Command("ip", "netns", "exec", k.R, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(`table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" masquerade
	}
}
`)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	return k
}

// seen is what the servers saw of the scenario's flows: source ports.
type seen struct {
	aS1, bS2, bS1 uint16 // A:5000 -> S1, B:5000 -> S2, then B:5000 -> S1
	low80, low700 uint16 // B's port for :80 and :700 after A took them toward S1
}

func (s seen) String() string {
	class := func(p uint16) string {
		switch {
		case p == 5000:
			return "5000"
		case p == 80 || p == 700:
			return "kept"
		case p >= 1 && p <= 511:
			return "1-511"
		case p >= 600 && p <= 1023:
			return "600-1023"
		case p >= 1024:
			return "other>=1024"
		}
		return strconv.Itoa(int(p))
	}
	return fmt.Sprintf("A:5000->S1 as %s, B:5000->S2 as %s, B:5000->S1 as %s, B:80 as %s, B:700 as %s",
		class(s.aS1), class(s.bS2), class(s.bS1), class(s.low80), class(s.low700))
}

// natScenario runs the flows from hosts a and b to echo servers in wan
// that answer with the source they saw.
func natScenario(t *testing.T, a, b, wan string) seen {
	t.Helper()
	echo := func(addr netip.Addr, port uint16) netip.AddrPort {
		c := udp(t, wan, netip.AddrPortFrom(addr, port).String())
		go func() {
			buf := make([]byte, 512)
			for {
				_, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				c.WriteToUDPAddrPort([]byte(from.String()), from)
			}
		}()
		return netip.AddrPortFrom(addr, port)
	}
	s1, s2 := echo(srv1, 7000), echo(srv2, 7000)
	source := func(c *net.UDPConn, to netip.AddrPort) uint16 {
		t.Helper()
		for try := 0; try < 5; try++ {
			c.WriteToUDPAddrPort([]byte("hi"), to)
			msg, from, err := recvFrom(c, 300*time.Millisecond)
			if err == nil && from == to {
				ap, err := netip.ParseAddrPort(msg)
				if err != nil {
					t.Fatalf("echo said %q", msg)
				}
				return ap.Port()
			}
		}
		t.Fatalf("no answer from %s", to)
		return 0
	}
	var s seen
	a5, b5 := udp(t, a, ":5000"), udp(t, b, ":5000")
	s.aS1 = source(a5, s1)
	s.bS2 = source(b5, s2)
	s.bS1 = source(b5, s1)
	for _, port := range []uint16{80, 700} {
		ca, cb := udp(t, a, ":"+strconv.Itoa(int(port))), udp(t, b, ":"+strconv.Itoa(int(port)))
		source(ca, s1)
		if port == 80 {
			s.low80 = source(cb, s1)
		} else {
			s.low700 = source(cb, s1)
		}
	}
	return s
}
