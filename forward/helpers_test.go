package forward

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/tuntest"
)

var (
	hostA = netip.MustParseAddr("10.0.0.2")
	hostB = netip.MustParseAddr("10.0.0.3")
	gw    = netip.MustParseAddr("10.0.0.1")
	ext   = netip.MustParseAddr("198.51.100.1")
	srv1  = netip.MustParseAddr("203.0.113.1")
)

const mss = tuntest.MSS

func ap(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }

// newEngine makes an engine with one external address and an inside
// port per host (a /24 each, gateway gw): by default A on port 1 and B
// on port 2.
func newEngine(t testing.TB, preset string, hosts ...netip.Addr) *nat.Engine {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []netip.Addr{hostA, hostB}
	}
	c, err := table.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	c.External = []netip.Addr{ext}
	cfg := nat.Config{Table: c}
	for _, h := range hosts {
		cfg.Inside = append(cfg.Inside, nat.InsidePort{Hosts: []netip.Prefix{netip.PrefixFrom(h, 24)}, Gateway: gw})
	}
	e, err := nat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func udpPkt(src, dst netip.AddrPort, ttl uint8, payload string) []byte {
	return tuntest.UDPWithTTL(src, dst, ttl, []byte(payload))
}

// checkSums fails t unless every checksum in b is right.
func checkSums(t *testing.T, b []byte) {
	t.Helper()
	if err := tuntest.ChecksumsValid(b); err != nil {
		t.Fatal(err)
	}
}

// fill fills b with pseudo-random bytes from seed.
func fill(b []byte, seed uint8) {
	var s [32]byte
	s[0] = seed
	rand.NewChaCha8(s).Read(b)
}
