package nat

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/tuntest"
)

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

func TestOutboundInboundUDP(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	out := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "hello")
	r, p := process(t, e, 1, out, t0)
	if r.Verdict != Forward || r.Out != Outside {
		t.Fatalf("outbound: %+v", r)
	}
	if p.Src != ap(ext, 5000) || p.Dst != ap(srv1, 3478) || p.TTL != 63 {
		t.Fatalf("outbound rewritten to %s -> %s ttl %d", p.Src, p.Dst, p.TTL)
	}
	checkSums(t, out)

	back := udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "world")
	r, p = process(t, e, Outside, back, t0.Add(time.Second))
	if r.Verdict != Forward || r.Out != 1 || p.Dst != ap(hostA, 5000) || p.Src != ap(srv1, 3478) {
		t.Fatalf("inbound: %+v %s -> %s", r, p.Src, p.Dst)
	}
	checkSums(t, back)

	// Port-restricted: another port of the same server is filtered.
	other := udpPkt(ap(srv1, 3479), ap(ext, 5000), 64, "x")
	if r, _ := process(t, e, Outside, other, t0); r.Verdict != DropFiltered {
		t.Fatalf("APDF let %v through", r)
	}
	// No mapping at all.
	none := udpPkt(ap(srv1, 3478), ap(ext, 6000), 64, "x")
	if r, _ := process(t, e, Outside, none, t0); r.Verdict != DropNoMapping {
		t.Fatalf("unmapped port: %v", r.Verdict)
	}
	if e.Count(DropFiltered) != 1 || e.Count(DropNoMapping) != 1 || e.Count(Forward) != 2 {
		t.Fatalf("counters: fwd %d filtered %d nomap %d", e.Count(Forward), e.Count(DropFiltered), e.Count(DropNoMapping))
	}
}

func TestInsideToInsideUntranslated(t *testing.T) {
	e := newEngine(t, "full-cone")
	b := udpPkt(ap(hostA, 5000), ap(hostB, 6000), 64, "hi")
	r, p := process(t, e, 1, b, t0)
	if r.Verdict != Forward || r.Out != 2 || p.Src != ap(hostA, 5000) {
		t.Fatalf("%+v %s", r, p.Src)
	}
	// An unknown address in the inside network is never sent outside.
	b = udpPkt(ap(hostA, 5000), ap(netip.MustParseAddr("10.0.0.77"), 6000), 64, "hi")
	if r, _ := process(t, e, 1, b, t0); r.Verdict != DropNoRoute {
		t.Fatalf("unknown inside host: %v", r.Verdict)
	}
}

// A packet an inside host sends to the NAT's gateway address is for the
// NAT itself: counted as DropLocal, not as a routing failure, with no
// reply, whatever its TTL.
func TestToGatewayIsLocal(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"udp", udpPkt(ap(hostA, 5000), ap(gw, 53), 64, "q")},
		{"ping", echoPkt(hostA, gw, header.ICMPEchoRequest, 7)},
		{"ttl 1", udpPkt(ap(hostA, 5000), ap(gw, 53), 1, "q")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, "full-cone")
			r, _ := process(t, e, 1, tc.pkt, t0)
			if r.Verdict != DropLocal || r.ReplyLen != 0 {
				t.Fatalf("to the gateway: %+v, want %v and no reply", r, DropLocal)
			}
			if e.Count(DropLocal) != 1 || e.Count(DropNoRoute) != 0 {
				t.Fatalf("counters: local %d no-route %d", e.Count(DropLocal), e.Count(DropNoRoute))
			}
		})
	}
}

// Once SetTableConfig turns hairpinning off, no hairpinned packet may
// reach the new table, not even one that was already on its way (it read
// the old setting before the change): the setting and the table change
// together.
func TestSetTableConfigHairpinWithTable(t *testing.T) {
	e := newEngine(t, "full-cone", func(c *table.Config) { c.Hairpin = true })
	on, off := e.Config().Table, e.Config().Table
	off.Hairpin = false
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		reply := make([]byte, 1500)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Only these hairpinned packets come from host A.
			e.Process(1, udpPkt(ap(hostA, uint16(1024+i%1000)), ap(ext, 6000), 64, "x"), reply, t0)
		}
	}()
	defer func() { close(stop); <-done }()
	for i := 0; i < 2000; i++ {
		if err := e.SetTableConfig(on); err != nil {
			t.Fatal(err)
		}
		if err := e.SetTableConfig(off); err != nil {
			t.Fatal(err)
		}
		e.Mappings(t0, func(m MappingInfo) {
			if m.Internal.Addr() == hostA {
				t.Fatalf("round %d: hairpinning is off, yet a hairpinned packet made mapping %s -> %s", i, m.Internal, m.External)
			}
		})
	}
}

func TestHairpin(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("hairpin=", on), func(t *testing.T) {
			e := newEngine(t, "full-cone", func(c *table.Config) { c.Hairpin = on })
			// B makes a mapping, then A sends to it.
			process(t, e, 2, udpPkt(ap(hostB, 6000), ap(srv1, 3478), 64, "b"), t0)
			b := udpPkt(ap(hostA, 5000), ap(ext, 6000), 64, "to MB")
			r, p := process(t, e, 1, b, t0)
			if !on {
				if r.Verdict != DropHairpinOff {
					t.Fatalf("hairpin off: %v", r.Verdict)
				}
				return
			}
			if r.Verdict != Forward || r.Out != 2 {
				t.Fatalf("hairpin: %+v", r)
			}
			if p.Src != ap(ext, 5000) || p.Dst != ap(hostB, 6000) {
				t.Fatalf("hairpinned as %s -> %s; want source MA=%s (REQ-9a)", p.Src, p.Dst, ap(ext, 5000))
			}
			checkSums(t, b)
		})
	}
}

func TestTTLExceeded(t *testing.T) {
	e := newEngine(t, "full-cone")
	b := udpPkt(ap(hostA, 5000), ap(srv1, 33434), 1, "probe")
	r, p := process(t, e, 1, b, t0)
	if r.Verdict != DropTTLExceeded || r.ReplyLen == 0 {
		t.Fatalf("%+v", r)
	}
	if p.IPProto != header.ProtoICMP || p.ICMPType != header.ICMPTimeExceeded || p.Src.Addr() != gw || p.Dst.Addr() != hostA {
		t.Fatalf("reply %d/%d from %s to %s", p.ICMPType, p.ICMPCode, p.Src, p.Dst)
	}
	checkSums(t, lastReply)
	var n int
	e.Mappings(t0, func(MappingInfo) { n++ })
	if n != 0 {
		t.Fatalf("an expiring packet created %d mappings", n)
	}
}

// quote builds an ICMP error from `from` about packet orig (as the
// remote side saw it).
func quote(t *testing.T, orig []byte, from netip.Addr, typ, code uint8) []byte {
	b := make([]byte, 1500)
	n := header.BuildICMPError(b, orig, from, typ, code, 0)
	if n == 0 {
		t.Fatal("BuildICMPError refused")
	}
	return b[:n]
}

func TestICMPErrorTranslation(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	out := udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "anyone?")
	process(t, e, 1, out, t0)
	// R reports Time Exceeded about E1:5000 -> S1:9 (RFC 5508 REQ-4).
	errPkt := quote(t, out, rtr, header.ICMPTimeExceeded, 0)
	r, p := process(t, e, Outside, errPkt, t0)
	if r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("%+v", r)
	}
	if p.Dst.Addr() != hostA || p.InnerSrc != ap(hostA, 5000) || p.InnerDst != ap(srv1, 9) || p.ICMPType != header.ICMPTimeExceeded {
		t.Fatalf("translated to dst %s inner %s -> %s type %d", p.Dst, p.InnerSrc, p.InnerDst, p.ICMPType)
	}
	checkSums(t, errPkt)
	if !header.ICMPChecksumValid(errPkt, &p) || !header.InnerIPChecksumValid(errPkt, &p) {
		t.Fatal("checksums after translation")
	}

	// Bad ICMP checksum: dropped (REQ-3).
	bad := quote(t, out, rtr, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable)
	bad[len(bad)-1] ^= 0xff
	if r, _ := process(t, e, Outside, bad, t0); r.Verdict != DropBadChecksum {
		t.Fatalf("bad checksum: %v", r.Verdict)
	}
	// No mapping: dropped.
	stray := udpPkt(ap(ext, 7777), ap(srv1, 9), 64, "never sent")
	if r, _ := process(t, e, Outside, quote(t, stray, rtr, header.ICMPDestUnreachable, 3), t0); r.Verdict != DropNoMapping {
		t.Fatalf("error without mapping: %v", r.Verdict)
	}
}

// An ICMP error neither refreshes nor deletes the mapping (RFC 5508 REQ-6).
func TestICMPErrorDoesNotRefresh(t *testing.T) {
	e := newEngine(t, "full-cone", func(c *table.Config) { c.UDPTimeout = 10 * time.Second })
	out := udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x")
	process(t, e, 1, out, t0)
	errPkt := quote(t, out, srv1, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable)
	if r, _ := process(t, e, Outside, errPkt, t0.Add(9*time.Second)); r.Verdict != Forward {
		t.Fatalf("%v", r.Verdict)
	}
	in := udpPkt(ap(srv2, 1), ap(ext, 5000), 64, "late")
	if r, _ := process(t, e, Outside, in, t0.Add(10*time.Second+time.Millisecond)); r.Verdict != DropNoMapping {
		t.Fatalf("the ICMP error refreshed the mapping: %v", r.Verdict)
	}
}

func TestOutboundICMPError(t *testing.T) {
	e := newEngine(t, "full-cone")
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"), t0)
	in := udpPkt(ap(srv2, 4000), ap(ext, 5000), 64, "to a closed port")
	process(t, e, Outside, in, t0) // now in == srv2:4000 -> 10.0.0.2:5000
	// A's kernel answers port unreachable about what it received.
	errPkt := quote(t, in, hostA, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable)
	r, p := process(t, e, 1, errPkt, t0)
	if r.Verdict != Forward || r.Out != Outside || p.Src.Addr() != ext || p.InnerDst != ap(ext, 5000) {
		t.Fatalf("%+v src %s inner dst %s", r, p.Src, p.InnerDst)
	}
	checkSums(t, errPkt)
}

func TestEcho(t *testing.T) {
	e := newEngine(t, "full-cone")
	// Two hosts, same identifier (RFC 5508 REQ-1).
	a := echoPkt(hostA, srv1, header.ICMPEchoRequest, 0x4242)
	b := echoPkt(hostB, srv1, header.ICMPEchoRequest, 0x4242)
	_, pa := process(t, e, 1, a, t0)
	_, pb := process(t, e, 2, b, t0)
	checkSums(t, a)
	checkSums(t, b)
	if pa.Src == pb.Src {
		t.Fatalf("both echo requests left as %s", pa.Src)
	}
	for i, want := range []struct {
		id   uint16
		port Port
	}{{pa.Src.Port(), 1}, {pb.Src.Port(), 2}} {
		reply := echoPkt(srv1, ext, header.ICMPEchoReply, want.id)
		r, p := process(t, e, Outside, reply, t0)
		if r.Verdict != Forward || r.Out != want.port || p.Dst.Port() != 0x4242 {
			t.Fatalf("reply %d: %+v id %#x", i, r, p.Dst.Port())
		}
		checkSums(t, reply)
	}
}

func TestTCPUnsolicitedAndSimultaneousOpen(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	syn := tcpPkt(ap(srv1, 7000), ap(ext, 7001), header.TCPSyn)
	if r, _ := process(t, e, Outside, syn, t0); r.Verdict != DropUnsolicitedSYN || r.ReplyLen != 0 {
		t.Fatalf("unsolicited SYN: %+v", r)
	}
	// Simultaneous open: SYN out, SYN in, SYN-ACKs both ways.
	steps := []struct {
		in    Port
		flags uint8
	}{{1, header.TCPSyn}, {Outside, header.TCPSyn}, {1, header.TCPSyn | header.TCPAck}, {Outside, header.TCPSyn | header.TCPAck}, {1, header.TCPAck}}
	for i, s := range steps {
		var b []byte
		if s.in == Outside {
			b = tcpPkt(ap(srv1, 7000), ap(ext, 7001), s.flags)
		} else {
			b = tcpPkt(ap(hostA, 7001), ap(srv1, 7000), s.flags)
		}
		r, _ := process(t, e, s.in, b, t0)
		if r.Verdict != Forward {
			t.Fatalf("step %d (%#x from port %d): %v", i, s.flags, s.in, r.Verdict)
		}
		checkSums(t, b)
	}
}

func TestPoolExhaustedSends313(t *testing.T) {
	e := newEngine(t, "full-cone", func(c *table.Config) { c.PortLo, c.PortHi = 20000, 20001 })
	for i := range 2 {
		if r, _ := process(t, e, 1, udpPkt(ap(hostA, uint16(30000+i)), ap(srv1, 1), 64, "x"), t0); r.Verdict != Forward {
			t.Fatalf("%v", r.Verdict)
		}
	}
	b := udpPkt(ap(hostA, 30002), ap(srv1, 1), 64, "x")
	r, p := process(t, e, 1, b, t0)
	if r.Verdict != DropPoolExhausted || p.ICMPType != header.ICMPDestUnreachable || p.ICMPCode != header.ICMPCodeAdminProhibited {
		t.Fatalf("%+v type %d code %d", r, p.ICMPType, p.ICMPCode)
	}
	// The live mappings were not stolen.
	for i := range 2 {
		if r, _ := process(t, e, Outside, udpPkt(ap(srv1, 1), ap(ext, uint16(20000+i)), 64, "x"), t0); r.Verdict != Forward {
			t.Fatalf("mapping %d lost: %v", i, r.Verdict)
		}
	}
}

func TestFragmentsFollowFirst(t *testing.T) {
	e := newEngine(t, "full-cone")
	reply := make([]byte, 1500)
	datagram := func(id uint16) [][]byte {
		b := make([]byte, 1500)
		n := header.BuildUDP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: id},
			header.UDPFields{SrcPort: 5000, DstPort: 3478}, []byte(strings.Repeat("0123456789", 20)))
		return header.Fragments(b[:n], 96)
	}
	// In order: every later fragment follows its first.
	for i, f := range datagram(1) {
		r, p := process(t, e, 1, f, t0)
		if r.Verdict != Forward || p.Src.Addr() != ext || !header.IPv4(f).ChecksumValid() {
			t.Fatalf("datagram 1, fragment %d: %v from %s", i, r.Verdict, p.Src)
		}
	}
	// Later fragment first: held until its first fragment passes.
	d2 := datagram(2)
	if r := e.Process(1, d2[2], reply, t0); r.Verdict != HeldFragment {
		t.Fatalf("last fragment before the first: %v (want held until the first passes)", r.Verdict)
	}
	for i, f := range d2[:2] {
		if r, _ := process(t, e, 1, f, t0); r.Verdict != Forward {
			t.Fatalf("datagram 2, fragment %d: %v", i, r.Verdict)
		}
	}
	buf := make([]byte, 2048)
	if n, out, ok := e.NextHeld(buf); !ok || out != Outside || header.IPv4(buf[:n]).Src() != ext {
		t.Fatalf("held fragment: released %v, out of port %d", ok, out)
	}
	// Found in review: once a datagram has passed whole, a new one that
	// reuses its identification must not be translated as it was. Its
	// last fragment, first to come, waits for its own first fragment
	// and then leaves with the identification that one gets.
	d3 := datagram(1)
	if r := e.Process(1, d3[2], reply, t0); r.Verdict != HeldFragment {
		t.Fatalf("datagram 3 (ID of datagram 1 again), last fragment first: %v; want held", r.Verdict)
	}
	for _, f := range d3[:2] {
		if r, _ := process(t, e, 1, f, t0); r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
	}
	n, _, ok := e.NextHeld(buf)
	if !ok || header.IPv4(buf[:n]).ID() != header.IPv4(d3[0]).ID() {
		t.Fatalf("datagram 3's last fragment: released %v with ID %d; its first fragment left with %d",
			ok, header.IPv4(buf[:n]).ID(), header.IPv4(d3[0]).ID())
	}
}

func TestMalformedNeverPanics(t *testing.T) {
	e := newEngine(t, "full-cone")
	for _, b := range [][]byte{nil, {0x45}, make([]byte, 19), {0x60, 0, 0, 0}, append([]byte{0x4f}, make([]byte, 30)...)} {
		for _, in := range []Port{Outside, 1} {
			r := e.Process(in, b, make([]byte, 1500), t0)
			if r.Verdict == Forward {
				t.Fatalf("%x forwarded", b)
			}
		}
	}
}

var sinkResult Result

// The per-packet path allocates nothing (style.md: TestNoAllocs).
func TestNoAllocs(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	out := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "hello")
	in := udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "world")
	tcpOut := tcpPkt(ap(hostA, 5001), ap(srv1, 80), header.TCPAck)
	tcpIn := tcpPkt(ap(srv1, 80), ap(ext, 5001), header.TCPAck)
	reply := make([]byte, 1500)
	process(t, e, 1, append([]byte(nil), out...), t0)
	process(t, e, 1, tcpPkt(ap(hostA, 5001), ap(srv1, 80), header.TCPSyn), t0)
	bufs := [][]byte{make([]byte, len(out)), make([]byte, len(in)), make([]byte, len(tcpOut)), make([]byte, len(tcpIn))}
	for name, c := range map[string]struct {
		port Port
		pkt  []byte
		buf  []byte
	}{
		"udp outbound": {1, out, bufs[0]}, "udp inbound": {Outside, in, bufs[1]},
		"tcp outbound": {1, tcpOut, bufs[2]}, "tcp inbound": {Outside, tcpIn, bufs[3]},
	} {
		allocs := testing.AllocsPerRun(1000, func() {
			copy(c.buf, c.pkt)
			sinkResult = e.Process(c.port, c.buf, reply, t0)
		})
		if allocs != 0 || sinkResult.Verdict != Forward {
			t.Errorf("%s: %v allocs per packet, verdict %v", name, allocs, sinkResult.Verdict)
		}
	}
}

func benchProcess(b *testing.B, port Port, pkt []byte, setup ...[]byte) {
	e := newEngine(b, "port-restricted-cone")
	reply := make([]byte, 1500)
	for _, s := range setup {
		e.Process(1, append([]byte(nil), s...), reply, t0)
	}
	buf := make([]byte, len(pkt))
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, pkt)
		sinkResult = e.Process(port, buf, reply, t0)
	}
	if sinkResult.Verdict != Forward {
		b.Fatal(sinkResult.Verdict)
	}
}

func BenchmarkTranslate(b *testing.B) {
	out := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "0123456789012345678901234567890123456789")
	b.Run("udp-outbound", func(b *testing.B) { benchProcess(b, 1, out) })
	b.Run("udp-inbound", func(b *testing.B) {
		benchProcess(b, Outside, udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "0123456789012345678901234567890123456789"), out)
	})
	syn := tcpPkt(ap(hostA, 5001), ap(srv1, 80), header.TCPSyn)
	b.Run("tcp-outbound", func(b *testing.B) { benchProcess(b, 1, tcpPkt(ap(hostA, 5001), ap(srv1, 80), header.TCPAck), syn) })
	b.Run("tcp-inbound", func(b *testing.B) {
		benchProcess(b, Outside, tcpPkt(ap(srv1, 80), ap(ext, 5001), header.TCPAck), syn)
	})
	ping := echoPkt(hostA, srv1, header.ICMPEchoRequest, 7)
	b.Run("icmp-echo-outbound", func(b *testing.B) { benchProcess(b, 1, ping) })
}

// Out of order (RFC 4787 REQ-14): the last fragments arrive first, wait,
// and leave translated right after the first.
func TestFragmentsOutOfOrder(t *testing.T) {
	e := newEngine(t, "full-cone")
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "open the mapping"), t0)
	whole := udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, strings.Repeat("0123456789", 30))
	frags := header.Fragments(whole, 96)
	if len(frags) < 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	reply := make([]byte, 1500)
	for i := len(frags) - 1; i >= 1; i-- {
		if r := e.Process(Outside, frags[i], reply, t0); r.Verdict != HeldFragment {
			t.Fatalf("fragment %d before the first: %v", i, r.Verdict)
		}
	}
	if e.HeldReady() {
		t.Fatal("released before the first fragment")
	}
	if r := e.Process(Outside, frags[0], reply, t0); r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("first fragment: %+v", r)
	}
	got := 0
	buf := make([]byte, 2048)
	for e.HeldReady() {
		n, out, ok := e.NextHeld(buf)
		if !ok {
			break
		}
		var p header.Parsed
		p.Decode(buf[:n])
		if out != 1 || p.Dst.Addr() != hostA || !header.IPv4(buf[:n]).ChecksumValid() {
			t.Fatalf("held fragment out of port %d to %s", out, p.Dst)
		}
		got++
	}
	if got != len(frags)-1 {
		t.Fatalf("released %d of %d held fragments", got, len(frags)-1)
	}
}

// A flood of incomplete datagrams holds at most the fixed pool and evicts
// the oldest; an unfragmented packet still passes at once.
func TestFragmentFloodBounded(t *testing.T) {
	e := newEngine(t, "full-cone")
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"), t0)
	reply := make([]byte, 1500)
	for i := range 10000 {
		whole := udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, strings.Repeat("y", 200))
		binary.BigEndian.PutUint16(whole[4:], uint16(i)) // a new datagram each time
		f := header.Fragments(whole, 96)
		e.Process(Outside, f[len(f)-1], reply, t0)
	}
	held := 0
	for i := range e.held.slots {
		if e.held.slots[i].state != slotFree {
			held++
		}
	}
	if held > heldSlots {
		t.Fatalf("%d held", held)
	}
	if r, _ := process(t, e, Outside, udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "ping"), t0); r.Verdict != Forward {
		t.Fatalf("an unfragmented packet during the flood: %v", r.Verdict)
	}
}

// A fragmented datagram hairpinned inside the NAT: every fragment leaves
// with the sender's external address as source and the target's internal
// address as destination, out of the target's port, whether the later
// fragments come after the first or before it (held, then released).
func TestHairpinFragments(t *testing.T) {
	for _, order := range []string{"in order", "later first"} {
		t.Run(order, func(t *testing.T) {
			e := newEngine(t, "full-cone", func(c *table.Config) { c.Hairpin = true })
			process(t, e, 2, udpPkt(ap(hostB, 6000), ap(srv1, 3478), 64, "b"), t0)
			whole := udpPkt(ap(hostA, 5000), ap(ext, 6000), 64, strings.Repeat("0123456789", 30))
			frags := header.Fragments(whole, 96)
			if len(frags) < 3 {
				t.Fatalf("%d fragments", len(frags))
			}
			reply := make([]byte, 1500)
			check := func(what string, b []byte, out Port) {
				t.Helper()
				var p header.Parsed
				p.Decode(b)
				if out != 2 || p.Src.Addr() != ext || p.Dst.Addr() != hostB || !header.IPv4(b).ChecksumValid() {
					t.Errorf("%s: out of port %d as %s -> %s (checksum ok: %v); want port 2, %s -> %s",
						what, out, p.Src.Addr(), p.Dst.Addr(), header.IPv4(b).ChecksumValid(), ext, hostB)
				}
			}
			if order == "later first" {
				for i := len(frags) - 1; i >= 1; i-- {
					if r := e.Process(1, frags[i], reply, t0); r.Verdict != HeldFragment {
						t.Fatalf("fragment %d before the first: %v", i, r.Verdict)
					}
				}
			}
			r := e.Process(1, frags[0], reply, t0)
			if r.Verdict != Forward {
				t.Fatalf("first fragment: %v", r.Verdict)
			}
			check("first fragment", frags[0], r.Out)
			got := 0
			if order == "in order" {
				for i := 1; i < len(frags); i++ {
					r := e.Process(1, frags[i], reply, t0)
					if r.Verdict != Forward {
						t.Fatalf("fragment %d: %v", i, r.Verdict)
					}
					check(fmt.Sprint("fragment ", i), frags[i], r.Out)
					got++
				}
			} else {
				buf := make([]byte, 2048)
				for e.HeldReady() {
					n, out, ok := e.NextHeld(buf)
					if !ok {
						break
					}
					check("held fragment", buf[:n], out)
					got++
				}
			}
			if got != len(frags)-1 {
				t.Fatalf("%d of %d later fragments passed", got, len(frags)-1)
			}
		})
	}
}

// RFC 7857 §10 (docs/nat-requirements.md item 34): A and B number their datagrams on their
// own, so behind one external address two of them can carry the same
// identification to the same server, and the server would mix their
// fragments. The NAT gives each non-atomic datagram an identification of
// its own, the same for all of a datagram's fragments (also those held
// until their first fragment came); atomic datagrams (DF set) keep theirs.
func TestIPIDNonAtomic(t *testing.T) {
	e := newEngine(t, "full-cone")
	reply := make([]byte, 1500)
	datagram := func(src netip.Addr) [][]byte {
		b := make([]byte, 1500)
		n := header.BuildUDP(b, header.IPv4Fields{Src: src, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: 777},
			header.UDPFields{SrcPort: 5000, DstPort: 3478}, []byte(strings.Repeat("0123456789", 30)))
		return header.Fragments(b[:n], 96)
	}
	fa, fb := datagram(hostA), datagram(hostB)
	// B's later fragments come before its first: held, then released.
	for i := len(fb) - 1; i >= 1; i-- {
		if r := e.Process(2, fb[i], reply, t0); r.Verdict != HeldFragment {
			t.Fatalf("B fragment %d: %v", i, r.Verdict)
		}
	}
	idsOf := func(who string, frags [][]byte, port Port) map[uint16]bool {
		ids := map[uint16]bool{}
		for i, f := range frags {
			r := e.Process(port, f, reply, t0)
			if r.Verdict != Forward {
				t.Fatalf("%s fragment %d: %v", who, i, r.Verdict)
			}
			checkSums(t, f)
			ids[header.IPv4(f).ID()] = true
		}
		return ids
	}
	// Interleaved as two senders would be: A's first, B's first, A's rest.
	idA := idsOf("A", fa[:1], 1)
	idB := idsOf("B", fb[:1], 2)
	for id := range idsOf("A", fa[1:], 1) {
		idA[id] = true
	}
	buf := make([]byte, 2048)
	for e.HeldReady() {
		n, _, ok := e.NextHeld(buf)
		if !ok {
			break
		}
		if !header.IPv4(buf[:n]).ChecksumValid() {
			t.Error("held fragment: bad header checksum")
		}
		idB[header.IPv4(buf[:n]).ID()] = true
	}
	if len(idA) != 1 || len(idB) != 1 {
		t.Fatalf("identifications within one datagram differ: A %v, B %v", idA, idB)
	}
	for id := range idA {
		if idB[id] {
			t.Fatalf("A's and B's datagrams both left as %s -> %s with ID %d", ext, srv1, id)
		}
	}
	// Unfragmented: DF clear gets a fresh identification each time, DF
	// set keeps the sender's.
	seen := map[uint16]bool{}
	for range 3 {
		b := make([]byte, 1500)
		n := header.BuildUDP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: 9},
			header.UDPFields{SrcPort: 5001, DstPort: 3478}, []byte("x"))
		if r := e.Process(1, b[:n], reply, t0); r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
		checkSums(t, b[:n])
		seen[header.IPv4(b[:n]).ID()] = true
	}
	if len(seen) != 3 {
		t.Errorf("three DF-clear datagrams left with IDs %v; want three distinct", seen)
	}
	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: 9, DontFrag: true},
		header.UDPFields{SrcPort: 5001, DstPort: 3478}, []byte("x"))
	e.Process(1, b[:n], reply, t0)
	if id := header.IPv4(b[:n]).ID(); id != 9 {
		t.Errorf("an atomic datagram (DF set) left with ID %d; want the sender's 9", id)
	}
}

// Hosts are keyed by their four bytes; an address that is not IPv4 (a
// 4-in-6 form of a host's included) is no host, and asking must not panic.
func TestInsidePort(t *testing.T) {
	e := newEngine(t, "full-cone")
	for _, c := range []struct {
		a    netip.Addr
		port Port
		ok   bool
	}{
		{hostA, 1, true},
		{hostB, 2, true},
		{netip.AddrFrom16(hostA.As16()), 0, false},
		{netip.MustParseAddr("2001:db8::1"), 0, false},
		{netip.MustParseAddr("10.0.0.99"), 0, false},
	} {
		if p, ok := e.insidePort(c.a); p != c.port || ok != c.ok {
			t.Errorf("insidePort(%s) = %d, %v; want %d, %v", c.a, p, ok, c.port, c.ok)
		}
	}
}

// Every address of an external pool is external, from the first to the
// last, and nothing else is: not a host, not a neighbour of the pool.
func TestIsExternal(t *testing.T) {
	var pool []netip.Addr
	for i := range 32 {
		pool = append(pool, netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + 3*i)}))
	}
	e := newEngine(t, "full-cone", func(c *table.Config) { c.External = pool })
	for _, a := range pool {
		if !e.isExternal(a) {
			t.Errorf("isExternal(%s) = false, want true", a)
		}
		if n := a.Next(); e.isExternal(n) {
			t.Errorf("isExternal(%s) = true, want false", n)
		}
	}
	for _, a := range []netip.Addr{hostA, gw, netip.AddrFrom16(pool[0].As16()), netip.MustParseAddr("2001:db8::1")} {
		if e.isExternal(a) {
			t.Errorf("isExternal(%s) = true, want false", a)
		}
	}
}

// A packet that needs the whole engine (a new mapping) waits while any
// queue has a packet in flight, and is counted in LockWaits; one that
// finds every lock free is not.
func TestLockWaits(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	if r, _ := process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "a"), t0); r.Verdict != Forward || e.LockWaits() != 0 {
		t.Fatalf("uncontended packet: %+v, %d lock waits, want Forward and 0", r, e.LockWaits())
	}
	q1, q2 := e.NewQueue(), e.NewQueue()
	q1.slot.Lock() // a reader on q1, mid-packet
	done := make(chan Result)
	go func() {
		done <- q2.Process(1, udpPkt(ap(hostA, 5001), ap(srv1, 3478), 64, "b"), make([]byte, 1500), t0)
	}()
	for deadline := time.Now().Add(5 * time.Second); e.LockWaits() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			q1.slot.Unlock()
			t.Fatal("a packet finding a lock held was not counted within 5s")
		}
	}
	select {
	case r := <-done:
		t.Fatalf("a new mapping was made while another queue had a packet in flight: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	q1.slot.Unlock()
	if r := <-done; r.Verdict != Forward || e.LockWaits() != 1 {
		t.Fatalf("after the wait: %+v, %d lock waits, want Forward and 1", r, e.LockWaits())
	}
}

// Packets of existing mappings on one queue share no lock with another
// queue: with q1 stopped mid-packet (its lock held), q2 translates a
// flow's packets both ways without waiting. TestLockWaits shows that
// the same held lock does stop a packet that needs the whole engine.
func TestHitPathSharesNoLock(t *testing.T) {
	for _, c := range []struct{ preset, proto string }{
		{"port-restricted-cone", "udp"}, {"port-restricted-cone", "tcp"},
		{"linux", "udp"}, {"linux", "tcp"}, // port overloading on
	} {
		proto := c.proto
		t.Run(c.preset+"/"+proto, func(t *testing.T) {
			e := newEngine(t, c.preset)
			reply := make([]byte, 1500)
			in, rem := ap(hostA, 5000), ap(srv1, 3478)
			pkt := func(src, dst netip.AddrPort, flags uint8) []byte {
				if proto == "udp" {
					return udpPkt(src, dst, 64, "x")
				}
				return tcpPkt(src, dst, flags)
			}
			// Open the flow both ways (TCP: the handshake) on the default queue.
			r, p := process(t, e, 1, pkt(in, rem, header.TCPSyn), t0)
			if r.Verdict != Forward {
				t.Fatalf("first packet: %+v", r)
			}
			extEP := p.Src // as translated
			if r, _ := process(t, e, Outside, pkt(rem, extEP, header.TCPSyn|header.TCPAck), t0); r.Verdict != Forward {
				t.Fatalf("reply: %+v", r)
			}
			q1, q2 := e.NewQueue(), e.NewQueue()
			q1.slot.Lock()
			defer q1.slot.Unlock()
			done := make(chan [2]Result, 1)
			go func() {
				now := t0.Add(time.Second)
				done <- [2]Result{
					q2.Process(1, pkt(in, rem, header.TCPAck), reply, now),
					q2.Process(Outside, pkt(rem, extEP, header.TCPAck), reply, now),
				}
			}()
			select {
			case rs := <-done:
				if rs[0].Verdict != Forward || rs[1].Verdict != Forward {
					t.Fatalf("out %+v, in %+v; want both forwarded", rs[0], rs[1])
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a packet of an existing flow waited for another queue's lock")
			}
			if w := e.LockWaits(); w != 0 {
				t.Errorf("%d lock waits, want 0", w)
			}
		})
	}
}

// BenchmarkTranslateParallel runs readers side by side, each with a UDP
// flow of its own, half its packets out and half the replies in: through
// one shared lock (Engine.Process, the default queue, as every reader
// went before queues had locks of their own) and through a Queue each
// (NewQueue, as the router's readers do). Compare ns/op at -cpu 1,2,4.
func BenchmarkTranslateParallel(b *testing.B) {
	for _, mode := range []string{"shared-lock", "queue-each"} {
		b.Run(mode, func(b *testing.B) {
			e := newEngine(b, "port-restricted-cone")
			var next atomic.Uint32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				q := &e.q0
				if mode == "queue-each" {
					q = e.NewQueue()
				}
				reply := make([]byte, 1500)
				out := dfPkt(ap(hostA, uint16(6000+next.Add(1))), ap(srv1, 3478))
				buf := make([]byte, len(out))
				copy(buf, out)
				if r := q.Process(1, buf, reply, t0); r.Verdict != Forward {
					b.Fatalf("first packet: %+v", r)
				}
				var p header.Parsed
				p.Decode(buf)
				back := dfPkt(ap(srv1, 3478), p.Src)
				now := t0.Add(time.Second)
				for i := 0; pb.Next(); i++ {
					pkt, port := out, Port(1)
					if i&1 == 1 {
						pkt, port = back, Outside
					}
					copy(buf, pkt)
					if r := q.Process(port, buf, reply, now); r.Verdict != Forward {
						b.Fatalf("packet %d: %+v", i, r)
					}
				}
			})
		})
	}
}

func dfPkt(src, dst netip.AddrPort) []byte {
	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), Protocol: header.ProtoUDP, TTL: 64, DontFrag: true},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, []byte("0123456789012345678901234567890123456789"))
	return b[:n]
}

// Queues number non-atomic datagrams from blocks of the engine's counter:
// two queues sending side by side never hand out the same identification.
func TestIPIDQueuesDistinct(t *testing.T) {
	e := newEngine(t, "full-cone")
	qs := []*Queue{e.NewQueue(), e.NewQueue(), &e.q0}
	reply := make([]byte, 1500)
	seen := map[uint16]int{}
	for i := range 600 {
		b := udpPkt(ap(hostA, uint16(5000+i%3)), ap(srv1, 3478), 64, "x") // DF clear
		if r := qs[i%3].Process(1, b, reply, t0); r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
		id := header.IPv4(b).ID()
		if j, dup := seen[id]; dup {
			t.Fatalf("datagrams %d and %d both left with ID %d", j, i, id)
		}
		seen[id] = i
	}
}

// Each queue's lock, and each queue, has a pair of cache lines of its own.
func TestSlotsAligned(t *testing.T) {
	e := newEngine(t, "full-cone")
	for range 5 {
		if q := e.NewQueue(); uintptr(unsafe.Pointer(q))%128 != 0 || unsafe.Sizeof(*q) != 128 {
			t.Errorf("queue at %p, %d bytes: not a line pair of its own", q, unsafe.Sizeof(*q))
		}
	}
	for i, s := range *e.slots.Load() {
		if a := uintptr(unsafe.Pointer(s)); a%128 != 0 || unsafe.Sizeof(*s) != 128 {
			t.Errorf("slot %d at %#x, %d bytes: not a line pair of its own", i, a, unsafe.Sizeof(*s))
		}
	}
}

// A queue that sat on part of its block of identifications while the
// other queues moved the engine's counter round must not hand out the
// numbers they are handing out again (found in review): any number
// comes back only after close to 2^16 other datagrams.
func TestIPIDStaleBlock(t *testing.T) {
	e := newEngine(t, "full-cone")
	q1, q2 := e.NewQueue(), e.NewQueue()
	reply := make([]byte, 1500)
	b := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x") // DF clear
	send := func(q *Queue) uint16 {
		copy(b, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"))
		if r := q.Process(1, b, reply, t0); r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
		return header.IPv4(b).ID()
	}
	last := map[uint16]int{}
	n := 0
	use := func(q *Queue, who string) {
		id := send(q)
		if k, ok := last[id]; ok && n-k < 1<<16-2*idBlock {
			t.Fatalf("%s: datagram %d has ID %d, as datagram %d had (%d apart)", who, n, id, k, n-k)
		}
		last[id] = n
		n++
	}
	use(q1, "q1") // q1 takes a block and uses one number of it
	for range 1<<16 - idBlock {
		use(q2, "q2")
	}
	for range 200 {
		use(q1, "q1")
		use(q2, "q2")
	}
}
