package nat

import (
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// NAT64 layout: port 1 holds the IPv6-only hosts fd00:64::2 and ::3,
// port 2 the IPv4 host B; servers are IPv4 and seen from inside in the
// well-known prefix.
var (
	h64A  = netip.MustParseAddr("fd00:64::2")
	h64B  = netip.MustParseAddr("fd00:64::3")
	gw64  = netip.MustParseAddr("fd00:64::1")
	srv64 = netip.MustParseAddr("64:ff9b::203.0.113.1")
)

func newEngine64(t testing.TB, tweak ...func(*table.Config)) *Engine {
	t.Helper()
	c := table.DefaultConfig()
	c.External = []netip.Addr{ext}
	c.IPv6 = table.IPv6NAT64
	for _, fn := range tweak {
		fn(&c)
	}
	e, err := New(Config{Table: c, Inside: []InsidePort{
		{Hosts: []netip.Prefix{netip.PrefixFrom(h64A, 64), netip.PrefixFrom(h64B, 64)}},
		{Hosts: []netip.Prefix{netip.PrefixFrom(hostB, 24)}, Gateway: gw},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// room is b in a buffer with room for NAT64 to grow it, as the router's.
func room(b []byte) []byte {
	r := make([]byte, len(b), len(b)+header.NAT64Growth+64)
	copy(r, b)
	return r
}

// run64 processes b (in a buffer with room) and returns the result and
// what leaves: the packet at its new length, or the NAT's reply.
func run64(t *testing.T, e *Engine, in Port, b []byte) (Result, []byte) {
	t.Helper()
	b = room(b)
	reply := make([]byte, 1500)
	r := e.Process(in, b, reply, t0)
	switch {
	case r.ReplyLen > 0:
		return r, reply[:r.ReplyLen]
	case r.Len > 0:
		return r, b[:r.Len]
	}
	return r, b
}

// TestNAT64 follows UDP, TCP and echo from an IPv6-only host to an IPv4
// server and back, the errors translated both ways, and the binding
// shown with the host's IPv6 address.
func TestNAT64(t *testing.T) {
	e := newEngine64(t)
	// UDP out: IPv4 from the external address, checksums whole.
	r, out := run64(t, e, 1, udp6(ap(h64A, 5000), ap(srv64, 53), 64, "query"))
	if r.Verdict != Forward || r.Out != Outside {
		t.Fatalf("UDP out: %+v", r)
	}
	p := decode4(t, out)
	if p.Src.Addr() != ext || p.Dst != ap(srv1, 53) || p.TTL != 63 || string(out[28:]) != "query" {
		t.Fatalf("UDP out: %+v", p)
	}
	extUDP := p.Src
	var ms []MappingInfo
	e.Mappings(t0, func(m MappingInfo) { ms = append(ms, m) })
	if len(ms) != 1 || ms[0].Internal != ap(h64A, 5000) || ms[0].External != extUDP {
		t.Fatalf("bindings %+v: want [fd00:64::2]:5000 -> %s", ms, extUDP)
	}

	// The reply: IPv6 from the server's embedded address.
	r, in := run64(t, e, Outside, udpPkt(ap(srv1, 53), extUDP, 64, "answer"))
	if r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("UDP in: %+v", r)
	}
	p6 := decode6(t, in)
	if p6.Src != ap(srv64, 53) || p6.Dst != ap(h64A, 5000) || p6.HopLimit != 63 || string(in[48:]) != "answer" {
		t.Fatalf("UDP in: %+v", p6)
	}

	// The server's port unreachable about the query reaches the host as
	// ICMPv6 port unreachable quoting its own packet.
	r, in = run64(t, e, Outside, quote(t, udpPkt(extUDP, ap(srv1, 53), 63, "query"), srv1, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable))
	if r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("port unreachable: %+v", r)
	}
	p6 = decode6(t, in)
	if p6.ICMPType != header.ICMPv6DestUnreachable || p6.ICMPCode != header.ICMPv6CodePortUnreachable ||
		p6.Src.Addr() != srv64 || p6.InnerSrc != ap(h64A, 5000) || p6.InnerDst != ap(srv64, 53) {
		t.Fatalf("port unreachable became %+v", p6)
	}

	// Echo out and its reply, the identifier mapped and restored.
	r, out = run64(t, e, 1, echo6(h64A, srv64, header.ICMPv6EchoRequest, 77))
	p = decode4(t, out)
	if r.Verdict != Forward || p.ICMPType != header.ICMPEchoRequest || p.Dst.Addr() != srv1 {
		t.Fatalf("echo out: %+v %+v", r, p)
	}
	r, in = run64(t, e, Outside, echoPkt(srv1, ext, header.ICMPEchoReply, p.Src.Port()))
	p6 = decode6(t, in)
	if r.Verdict != Forward || p6.ICMPType != header.ICMPv6EchoReply || p6.Dst != ap(h64A, 77) || p6.Src.Addr() != srv64 {
		t.Fatalf("echo reply: %+v %+v", r, p6)
	}

	// TCP: the SYN out, the SYN-ACK back.
	r, out = run64(t, e, 1, tcp6(ap(h64B, 40000), ap(srv64, 80), header.TCPSyn))
	p = decode4(t, out)
	if r.Verdict != Forward || p.Dst != ap(srv1, 80) || p.TCPFlags != header.TCPSyn {
		t.Fatalf("SYN: %+v %+v", r, p)
	}
	r, in = run64(t, e, Outside, tcpPkt(ap(srv1, 80), p.Src, header.TCPSyn|header.TCPAck))
	p6 = decode6(t, in)
	if r.Verdict != Forward || p6.Dst != ap(h64B, 40000) || p6.Src != ap(srv64, 80) {
		t.Fatalf("SYN-ACK: %+v %+v", r, p6)
	}

	// The host's Packet Too Big about the reply reaches the server as
	// fragmentation needed, the MTU 20 less.
	big := udp6(ap(srv64, 53), ap(h64A, 5000), 63, "answer")
	ptb := make([]byte, 1500)
	n := header.BuildICMPv6Error(ptb, big, h64A, header.ICMPv6PacketTooBig, 0, 1280)
	r, out = run64(t, e, 1, ptb[:n])
	p = decode4(t, out)
	if r.Verdict != Forward || p.ICMPType != header.ICMPDestUnreachable || p.ICMPCode != header.ICMPCodeFragNeeded ||
		header.ICMPv4(out[20:]).MTU() != 1260 || p.InnerSrc != ap(srv1, 53) || p.InnerDst != extUDP {
		t.Fatalf("packet too big: %+v %+v", r, p)
	}
}

// TestNAT64Refusals: what the NAT64 does not translate, and says so.
func TestNAT64Refusals(t *testing.T) {
	e := newEngine64(t)
	// Hop limit 1: time exceeded from the NAT's inside address.
	r, reply := run64(t, e, 1, udp6(ap(h64A, 5000), ap(srv64, 53), 1, "q"))
	p6 := decode6(t, reply)
	if r.Verdict != DropTTLExceeded || p6.ICMPType != header.ICMPv6TimeExceeded || p6.Src.Addr() != gw64 {
		t.Fatalf("hop limit 1: %+v %+v", r, p6)
	}
	// Native IPv6 goes as routed: out, and in only as a reply.
	if r, _ = run64(t, e, 1, udp6(ap(h64A, 5000), ap(srv6, 53), 64, "q")); r.Verdict != Forward || r.Out != Outside || r.Len != 0 {
		t.Fatalf("native IPv6 out: %+v", r)
	}
	if r, _ = run64(t, e, Outside, udp6(ap(srv6, 53), ap(h64A, 5000), 64, "a")); r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("native IPv6 reply: %+v", r)
	}
	// Between inside IPv6 hosts: routed untranslated.
	if r, _ := run64(t, e, 1, udp6(ap(h64A, 5000), ap(h64B, 53), 64, "q")); r.Verdict != Forward || r.Out != 1 || r.Len != 0 {
		t.Fatalf("inside: %+v", r)
	}
	// An address of the prefix that is no configured host.
	if r, _ := run64(t, e, 1, udp6(ap(netip.MustParseAddr("fd00:64::99"), 5000), ap(srv64, 53), 64, "q")); r.Verdict != DropNoRoute {
		t.Fatalf("unknown host: %+v", r)
	}
	// A fragment, and UDP without checksum.
	whole := udp6(ap(h64A, 5000), ap(srv64, 53), 64, string(make([]byte, 64)))
	first, _ := frags6(whole, 7, 32)
	if r, _ := run64(t, e, 1, first); r.Verdict != DropNAT64Untranslatable {
		t.Fatalf("fragment: %+v", r)
	}
	noSum := udp6(ap(h64A, 5000), ap(srv64, 53), 64, "q")
	noSum[46], noSum[47] = 0, 0
	if r, _ := run64(t, e, 1, noSum); r.Verdict != DropNAT64Untranslatable {
		t.Fatalf("zero UDP checksum: %+v", r)
	}
	// IPv4 from an alias, sent by an inside host itself: spoofed, so
	// that no host passes itself off as an IPv6 host of the NAT64.
	spoofed := e.Count(DropSpoofed)
	if r, _ := run64(t, e, 1, udpPkt(ap(netip.AddrFrom4([4]byte{aliasFirst, 0, 0, 1}), 5000), ap(srv1, 53), 64, "q")); r.Verdict != DropSpoofed || e.Count(DropSpoofed) != spoofed+1 {
		t.Fatalf("IPv4 from an alias: %+v", r)
	}
	// Unsolicited native IPv6 from outside: filtered.
	if r, _ := run64(t, e, Outside, udp6(ap(srv6b, 53), ap(h64A, 5000), 64, "q")); r.Verdict != DropIPv6Filtered {
		t.Fatalf("IPv6 from outside: %+v", r)
	}
	if e.Count(DropNAT64Untranslatable) != 2 {
		t.Fatalf("untranslatable counted %d, want 2", e.Count(DropNAT64Untranslatable))
	}
}

// TestNAT64Hairpin: an IPv6-only host reaches another through the
// NAT's external endpoint, as IPv4 hosts do (filtering as configured:
// endpoint-independent here).
func TestNAT64Hairpin(t *testing.T) {
	e := newEngine64(t, func(c *table.Config) { c.Filtering = table.EndpointIndependent })
	_, out := run64(t, e, 1, udp6(ap(h64B, 6000), ap(srv64, 53), 64, "open"))
	extB := decode4(t, out).Src
	embedded := netip.AddrFrom16(header.NAT64WellKnown.Addr().As16())
	to := netip.AddrPortFrom(embedB(embedded, extB.Addr()), extB.Port())
	r, in := run64(t, e, 1, udp6(ap(h64A, 5000), to, 64, "hairpin"))
	if r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("hairpin: %+v", r)
	}
	p6 := decode6(t, in)
	if p6.Dst != ap(h64B, 6000) || p6.Src.Port() == 0 || !header.NAT64WellKnown.Contains(p6.Src.Addr()) {
		t.Fatalf("hairpin: %+v", p6)
	}
}

// embedB is a in the well-known prefix whose first 12 bytes p has.
func embedB(p netip.Addr, a netip.Addr) netip.Addr {
	b := p.As16()
	v4 := a.As4()
	copy(b[12:], v4[:])
	return netip.AddrFrom16(b)
}

// TestNAT64NoAllocs: a NAT64 packet costs no allocation either way once
// its mapping exists.
func TestNAT64NoAllocs(t *testing.T) {
	e := newEngine64(t)
	q := udp6(ap(h64A, 5000), ap(srv64, 53), 64, "query")
	_, out := run64(t, e, 1, q)
	a := udp6(ap(h64A, 5000), ap(srv64, 53), 64, "query")
	back := udpPkt(ap(srv1, 53), decode4(t, out).Src, 64, "answer")
	buf := make([]byte, 1500)
	reply := make([]byte, 1500)
	allocs := testing.AllocsPerRun(1000, func() {
		n := copy(buf, a)
		if r := e.Process(1, buf[:n], reply, t0); r.Verdict != Forward {
			t.Fatal(r)
		}
		n = copy(buf, back)
		if r := e.Process(Outside, buf[:n], reply, t0); r.Verdict != Forward {
			t.Fatal(r)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round trip", allocs)
	}
}

// TestNAT64Prefix: a prefix of another length embeds as RFC 6052 says,
// and a bad one is refused.
func TestNAT64PrefixEngine(t *testing.T) {
	e := newEngine64(t, func(c *table.Config) { c.NAT64Prefix = netip.MustParsePrefix("2001:db8:64::/48") })
	dst := netip.MustParseAddr("2001:db8:64:cb00:71:100::") // 203.0.113.1 in a /48
	r, out := run64(t, e, 1, udp6(ap(h64A, 5000), ap(dst, 53), 64, "q"))
	if p := decode4(t, out); r.Verdict != Forward || p.Dst != ap(srv1, 53) {
		t.Fatalf("/48: %+v %+v", r, p)
	}
	r, in := run64(t, e, Outside, udpPkt(ap(srv1, 53), decode4(t, out).Src, 64, "a"))
	if p6 := decode6(t, in); r.Verdict != Forward || p6.Src != ap(dst, 53) {
		t.Fatalf("/48 back: %+v %+v", r, p6)
	}
	c := table.DefaultConfig()
	c.External, c.IPv6 = []netip.Addr{ext}, table.IPv6NAT64
	c.NAT64Prefix = netip.MustParsePrefix("2001:db8::/33")
	if _, err := New(Config{Table: c}); err == nil {
		t.Fatal("a /33 prefix accepted")
	}
}

func decode4(t *testing.T, b []byte) header.Parsed {
	t.Helper()
	var p header.Parsed
	p.Decode(b)
	if p.Status != header.OK || !header.IPv4(b).ChecksumValid() {
		t.Fatalf("not a good IPv4 packet (%v): %x", p.Status, b)
	}
	if err := sumsValid(b); err != nil {
		t.Fatalf("%v: %x", err, b)
	}
	return p
}

func decode6(t *testing.T, b []byte) header.ParsedV6 {
	t.Helper()
	var p header.ParsedV6
	p.Decode(b)
	if p.Status != header.OK {
		t.Fatalf("not a good IPv6 packet (%v): %x", p.Status, b)
	}
	if err := sums6Valid(b); err != nil {
		t.Fatalf("%v: %x", err, b)
	}
	return p
}

// BenchmarkNAT64: a UDP packet of a live NAT64 mapping either way (IPv6
// translated to IPv4 and mapped; IPv4 mapped back and translated to
// IPv6), beside BenchmarkTranslate's IPv4 and BenchmarkProcess6's rows.
func BenchmarkNAT64(b *testing.B) {
	e := newEngine64(b)
	const payload = "0123456789012345678901234567890123456789"
	out := udp6(ap(h64A, 5000), ap(srv64, 3478), 64, payload)
	first := room(out)
	r := e.Process(1, first, make([]byte, 1500), t0)
	if r.Verdict != Forward {
		b.Fatal(r.Verdict)
	}
	var p header.Parsed
	p.Decode(first[:r.Len])
	in := udpPkt(ap(srv1, 3478), p.Src, 64, payload)
	for _, tc := range []struct {
		name string
		port Port
		pkt  []byte
	}{{"outbound", 1, out}, {"inbound", Outside, in}} {
		b.Run(tc.name, func(b *testing.B) {
			buf, reply := make([]byte, len(tc.pkt), len(tc.pkt)+header.NAT64Growth), make([]byte, 1500)
			b.SetBytes(int64(len(tc.pkt)))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, tc.pkt)
				if r := e.Process(tc.port, buf[:len(tc.pkt)], reply, t0); r.Verdict != Forward {
					b.Fatal(r.Verdict)
				}
			}
		})
	}
}
