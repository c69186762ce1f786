package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/tuntest"
)

// Addresses, an engine and packet builders for the tests of this package.

var (
	hostA = netip.MustParseAddr("10.0.0.2")
	hostB = netip.MustParseAddr("10.0.0.3")
	gw    = netip.MustParseAddr("10.0.0.1")
	ext   = netip.MustParseAddr("198.51.100.1")
	srv1  = netip.MustParseAddr("203.0.113.1")
	srv2  = netip.MustParseAddr("203.0.113.2")
	rtr   = netip.MustParseAddr("203.0.113.254")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func ap(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }

// newEngine: A on port 1, B on port 2, one external address.
func newEngine(t testing.TB, preset string, tweak ...func(*table.Config)) *Engine {
	t.Helper()
	c, err := table.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	c.External = []netip.Addr{ext}
	for _, f := range tweak {
		f(&c)
	}
	e, err := New(Config{Table: c, Inside: []InsidePort{
		{Hosts: []netip.Prefix{netip.PrefixFrom(hostA, 24)}, Gateway: gw},
		{Hosts: []netip.Prefix{netip.PrefixFrom(hostB, 24)}, Gateway: gw},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func udpPkt(src, dst netip.AddrPort, ttl uint8, payload string) []byte {
	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), Protocol: header.ProtoUDP, TTL: ttl, ID: 1},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, []byte(payload))
	return b[:n]
}

func tcpPkt(src, dst netip.AddrPort, flags uint8) []byte {
	b := make([]byte, 1500)
	n := header.BuildTCP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), Protocol: header.ProtoTCP, TTL: 64},
		header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), Seq: 1000, Flags: flags, Window: 65535}, nil)
	return b[:n]
}

func echoPkt(src, dst netip.Addr, typ uint8, id uint16) []byte {
	b := make([]byte, 1500)
	n := header.BuildICMP(b, header.IPv4Fields{Src: src, Dst: dst, Protocol: header.ProtoICMP, TTL: 64},
		header.ICMPFields{Type: typ, Ident: id, Seq: 1}, []byte("ping"))
	return b[:n]
}

func dfPkt(src, dst netip.AddrPort) []byte {
	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), Protocol: header.ProtoUDP, TTL: 64, DontFrag: true},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, []byte("0123456789012345678901234567890123456789"))
	return b[:n]
}

// checkSums recomputes every checksum from scratch (the reference the
// incremental updates must agree with), the embedded ones included.
func checkSums(t *testing.T, b []byte) {
	t.Helper()
	if err := sumsValid(b); err != nil {
		t.Fatal(err)
	}
}

func sumsValid(b []byte) error { return tuntest.ChecksumsValid(b) }

// process runs one packet; when the engine answers with an ICMP error,
// the returned Parsed describes the reply and lastReply holds it.
func process(t *testing.T, e *Engine, in Port, b []byte, now time.Time) (Result, header.Parsed) {
	t.Helper()
	reply := make([]byte, 1500)
	r := e.Process(in, b, reply, now)
	var p header.Parsed
	if r.ReplyLen > 0 {
		lastReply = reply[:r.ReplyLen]
		p.Decode(lastReply)
	} else {
		p.Decode(b)
	}
	return r, p
}

var lastReply []byte
