package nat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

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
