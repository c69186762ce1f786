package nat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

// newEngineMTU is newEngine6 with the outside link's MTU out and inside
// port 1's in; with mode none the NAT is IPv4 only.
func newEngineMTU(t testing.TB, mode table.IPv6Mode, out, in int, tweak ...func(*table.Config)) *Engine {
	t.Helper()
	c := table.DefaultConfig()
	c.External, c.External6 = []netip.Addr{ext}, []netip.Addr{ext6}
	c.IPv6 = mode
	for _, fn := range tweak {
		fn(&c)
	}
	a, b := netip.PrefixFrom(h6A, 64), netip.PrefixFrom(h6B, 64)
	if mode == table.IPv6NPTv6 {
		a, b = netip.PrefixFrom(ula6A, 64), netip.PrefixFrom(ula6B, 64)
	}
	ha, hb := []netip.Prefix{netip.PrefixFrom(hostA, 24), a}, []netip.Prefix{netip.PrefixFrom(hostB, 24), b}
	if mode == table.IPv6None {
		c.External6, ha, hb = nil, ha[:1], hb[:1]
	}
	e, err := New(Config{Table: c, OutsideMTU: out, Inside: []InsidePort{
		{Hosts: ha, Gateway: gw, MTU: in},
		{Hosts: hb, Gateway: gw},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// bigUDP is a UDP datagram of size bytes in all, DF as given.
func bigUDP(src, dst netip.AddrPort, size int, df bool) []byte {
	b := make([]byte, size)
	n := header.BuildUDP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), TTL: 64, ID: 77, DontFrag: df},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, make([]byte, size-28))
	return b[:n]
}

func bigUDP6(src, dst netip.AddrPort, size int) []byte {
	b := make([]byte, size)
	n := header.BuildUDP6(b, header.IPv6Fields{Src: src.Addr(), Dst: dst.Addr(), HopLimit: 64},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, make([]byte, size-48))
	return b[:n]
}

// fragNeeded checks that reply is ICMP 3/4 from src to dst with next-hop
// MTU mtu, quoting a packet from quoteSrc to quoteDst.
func fragNeeded(t *testing.T, reply []byte, src, dst netip.Addr, mtu int, quoteSrc, quoteDst netip.AddrPort) {
	t.Helper()
	var p header.Parsed
	p.Decode(reply)
	if p.Status != header.OK || p.ICMPType != header.ICMPDestUnreachable || p.ICMPCode != header.ICMPCodeFragNeeded {
		t.Fatalf("reply %v: type %d code %d, want 3/4", p.Status, p.ICMPType, p.ICMPCode)
	}
	if p.Src.Addr() != src || p.Dst.Addr() != dst {
		t.Errorf("reply from %s to %s, want %s to %s", p.Src.Addr(), p.Dst.Addr(), src, dst)
	}
	if got := header.ICMPv4(reply[header.IPv4MinSize:]).MTU(); int(got) != mtu {
		t.Errorf("next-hop MTU %d, want %d", got, mtu)
	}
	if p.InnerSrc != quoteSrc || p.InnerDst != quoteDst {
		t.Errorf("quotes %s -> %s, want %s -> %s", p.InnerSrc, p.InnerDst, quoteSrc, quoteDst)
	}
	checkSums(t, reply)
}

func TestPMTUOutbound(t *testing.T) {
	e := newEngineMTU(t, table.IPv6Routed, 1280, 0)
	from, to := ap(hostA, 5000), ap(srv1, 9)

	t.Run("fits", func(t *testing.T) {
		r, _ := process(t, e, 1, bigUDP(from, to, 1280, true), t0)
		if r.Verdict != Forward || r.FragMTU != 0 {
			t.Fatalf("%+v, want forwarded whole", r)
		}
	})
	t.Run("DF set: fragmentation needed from the gateway", func(t *testing.T) {
		before := e.Count(DropTooBig)
		r, _ := process(t, e, 1, bigUDP(from, to, 1400, true), t0)
		if r.Verdict != DropTooBig || r.ReplyLen == 0 {
			t.Fatalf("%+v, want too-big with a reply", r)
		}
		fragNeeded(t, lastReply, gw, hostA, 1280, from, to)
		if e.Count(DropTooBig) != before+1 {
			t.Error("not counted as too-big")
		}
	})
	t.Run("DF clear: forwarded, to be cut", func(t *testing.T) {
		b := bigUDP(from, to, 1400, false)
		r, p := process(t, e, 1, b, t0)
		if r.Verdict != Forward || r.Out != Outside || r.FragMTU != 1280 {
			t.Fatalf("%+v, want forwarded outside with FragMTU 1280", r)
		}
		if p.Src.Addr() != ext {
			t.Errorf("left from %s, want %s: translated whole before it is cut", p.Src, ext)
		}
		checkSums(t, b)
	})
	t.Run("between inside hosts: only the outside link is small", func(t *testing.T) {
		r, _ := process(t, e, 1, bigUDP(from, ap(hostB, 9), 1400, true), t0)
		if r.Verdict != Forward || r.Out != 2 {
			t.Fatalf("%+v, want routed to port 2", r)
		}
	})
}

// From outside, for a host whose link is smaller: the error goes back
// through the translation, from the external address, quoting the packet
// as the sender sent it.
func TestPMTUInbound(t *testing.T) {
	e := newEngineMTU(t, table.IPv6None, 0, 576)
	from, to := ap(hostA, 5000), ap(srv1, 9)
	r, p := process(t, e, 1, udpPkt(from, to, 64, "open"), t0)
	if r.Verdict != Forward {
		t.Fatalf("outbound %+v", r)
	}
	pub := p.Src // the mapping's external endpoint
	r, _ = process(t, e, Outside, bigUDP(to, pub, 1000, true), t0)
	if r.Verdict != DropTooBig || r.ReplyLen == 0 {
		t.Fatalf("%+v, want too-big with a reply", r)
	}
	fragNeeded(t, lastReply, ext, srv1, 576, to, pub)

	b := bigUDP(to, pub, 1000, false)
	r, p = process(t, e, Outside, b, t0)
	if r.Verdict != Forward || r.Out != 1 || r.FragMTU != 576 || p.Dst != from {
		t.Fatalf("%+v to %s, want forwarded to %s on port 1 with FragMTU 576", r, p.Dst, from)
	}
}

func TestPMTUBlackhole(t *testing.T) {
	e := newEngineMTU(t, table.IPv6Routed, 1280, 0, func(c *table.Config) { c.PMTUBlackhole = true })
	r, _ := process(t, e, 1, bigUDP(ap(hostA, 5000), ap(srv1, 9), 1400, true), t0)
	if r.Verdict != DropPMTUBlackhole || r.ReplyLen != 0 {
		t.Fatalf("%+v, want a silent pmtu-blackhole drop", r)
	}
	r, _ = process(t, e, 1, bigUDP6(ap(h6A, 5000), ap(srv6, 9), 1400), t0)
	if r.Verdict != DropPMTUBlackhole || r.ReplyLen != 0 {
		t.Fatalf("IPv6: %+v, want a silent pmtu-blackhole drop", r)
	}
	// DF clear still passes, to be cut: only too-big errors vanish.
	if r, _ := process(t, e, 1, bigUDP(ap(hostA, 5000), ap(srv1, 9), 1400, false), t0); r.Verdict != Forward || r.FragMTU != 1280 {
		t.Fatalf("DF clear: %+v", r)
	}
	// The setting changes at run time with the behaviour.
	c := e.Config().Table
	c.PMTUBlackhole = false
	if err := e.SetTableConfig(c); err != nil {
		t.Fatal(err)
	}
	if r, _ := process(t, e, 1, bigUDP(ap(hostA, 5000), ap(srv1, 9), 1400, true), t0); r.Verdict != DropTooBig || r.ReplyLen == 0 {
		t.Fatalf("after pmtu-blackhole=false: %+v", r)
	}
}

// ptb checks that reply is ICMPv6 Packet Too Big from src to dst with
// MTU mtu, quoting a packet from quoteSrc to quoteDst.
func ptb(t *testing.T, reply []byte, src, dst netip.Addr, mtu int, quoteSrc, quoteDst netip.AddrPort) {
	t.Helper()
	var p header.ParsedV6
	p.Decode(reply)
	if p.Status != header.OK || p.Proto != header.ProtoICMPv6 || p.ICMPType != header.ICMPv6PacketTooBig {
		t.Fatalf("reply %v: proto %d type %d, want Packet Too Big", p.Status, p.Proto, p.ICMPType)
	}
	if p.Src.Addr() != src || p.Dst.Addr() != dst {
		t.Errorf("reply from %s to %s, want %s to %s", p.Src.Addr(), p.Dst.Addr(), src, dst)
	}
	if got := header.ICMPv6(reply[header.IPv6Size:]).MTU(); int(got) != mtu {
		t.Errorf("MTU %d, want %d", got, mtu)
	}
	if p.InnerSrc != quoteSrc || p.InnerDst != quoteDst {
		t.Errorf("quotes %s -> %s, want %s -> %s", p.InnerSrc, p.InnerDst, quoteSrc, quoteDst)
	}
	if err := sums6Valid(reply); err != nil {
		t.Error(err)
	}
}

func TestPMTUIPv6(t *testing.T) {
	t.Run("routed", func(t *testing.T) {
		e := newEngineMTU(t, table.IPv6Routed, 1280, 1280)
		from, to := ap(h6A, 5000), ap(srv6, 9)
		r, _ := process(t, e, 1, bigUDP6(from, to, 1400), t0)
		if r.Verdict != DropTooBig || r.ReplyLen == 0 {
			t.Fatalf("outbound %+v, want too-big with a reply", r)
		}
		ptb(t, lastReply, gw6A, h6A, 1280, from, to)
		if r, _ := process(t, e, 1, bigUDP6(from, to, 1280), t0); r.Verdict != Forward {
			t.Fatalf("1280 bytes: %+v, want forwarded", r)
		}
		// From outside, within the session the last packet made.
		r, _ = process(t, e, Outside, bigUDP6(to, from, 1400), t0)
		if r.Verdict != DropTooBig || r.ReplyLen == 0 {
			t.Fatalf("inbound %+v, want too-big with a reply", r)
		}
		ptb(t, lastReply, ext6, srv6, 1280, to, from)
	})
	t.Run("nptv6", func(t *testing.T) {
		e := newEngineMTU(t, table.IPv6NPTv6, 1280, 0)
		from, to := ap(ula6A, 5000), ap(srv6, 9)
		r, _ := process(t, e, 1, bigUDP6(from, to, 1400), t0)
		if r.Verdict != DropTooBig || r.ReplyLen == 0 {
			t.Fatalf("%+v, want too-big with a reply", r)
		}
		ptb(t, lastReply, netip.MustParseAddr("fd00:1::1"), ula6A, 1280, from, to)
	})
	t.Run("nat66", func(t *testing.T) {
		e := newEngineMTU(t, table.IPv6NAT66, 1280, 1280)
		from, to := ap(h6A, 5000), ap(srv6, 9)
		r, _ := process(t, e, 1, bigUDP6(from, to, 1400), t0)
		if r.Verdict != DropTooBig || r.ReplyLen == 0 {
			t.Fatalf("outbound %+v, want too-big with a reply", r)
		}
		// Quoting the packet as the host sent it, untranslated.
		ptb(t, lastReply, gw6A, h6A, 1280, from, to)
		out := bigUDP6(from, to, 1280)
		if r, _ := process(t, e, 1, out, t0); r.Verdict != Forward {
			t.Fatalf("1280 bytes: %+v, want forwarded", r)
		}
		var p header.ParsedV6
		p.Decode(out)
		mapped := p.Src
		if mapped.Addr() != ext6 {
			t.Fatalf("left from %s, want %s", mapped, ext6)
		}
		// From outside, to the mapping: the error comes from the external
		// address the server sent to and quotes what it sent.
		r, _ = process(t, e, Outside, bigUDP6(to, mapped, 1400), t0)
		if r.Verdict != DropTooBig || r.ReplyLen == 0 {
			t.Fatalf("inbound %+v, want too-big with a reply", r)
		}
		ptb(t, lastReply, ext6, srv6, 1280, to, mapped)
	})
}

// An inbound Packet Too Big quoting a live session's packet passes to
// the host (RFC 6092 REC-8), its MTU as it was.
func TestPMTUInboundPTBPasses(t *testing.T) {
	e := newEngine6(t, table.IPv6Routed, table.AddressAndPortDependent)
	from, to := ap(h6A, 5000), ap(srv6, 9)
	out := bigUDP6(from, to, 1400)
	if r, _ := process(t, e, 1, out, t0); r.Verdict != Forward {
		t.Fatalf("outbound %+v", r)
	}
	b := make([]byte, 1500)
	n := header.BuildICMPv6Error(b, out, netip.MustParseAddr("2001:db8:ff::fe"), header.ICMPv6PacketTooBig, 0, 1280)
	r, _ := process(t, e, Outside, b[:n], t0)
	if r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("%+v, want the Packet Too Big passed to port 1", r)
	}
	if got := header.ICMPv6(b[header.IPv6Size:n]).MTU(); got != 1280 {
		t.Errorf("MTU %d after the firewall, want 1280", got)
	}
}

func TestPMTUConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		out, in int
		want    string
	}{
		{"outside under IPv4's minimum", 60, 0, "outside MTU 60: want 68-65535"},
		{"inside over the maximum", 0, 70000, "inside port 1 MTU 70000: want 68-65535"},
		{"IPv6 outside under 1280", 1000, 0, "outside MTU 1000: the link carries IPv6, which needs at least 1280"},
		{"IPv6 inside under 1280", 0, 1200, "inside port 1 MTU 1200: the link carries IPv6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := table.DefaultConfig()
			c.External, c.External6 = []netip.Addr{ext}, []netip.Addr{ext6}
			_, err := New(Config{Table: c, OutsideMTU: tc.out, Inside: []InsidePort{
				{Hosts: []netip.Prefix{netip.PrefixFrom(hostA, 24), netip.PrefixFrom(h6A, 64)}, Gateway: gw, MTU: tc.in},
			}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// The MTU check costs the hit path no allocation, whether the packet
// fits, is to be cut, or is refused with an error.
func TestPMTUNoAllocs(t *testing.T) {
	e := newEngineMTU(t, table.IPv6Routed, 1280, 0)
	from, to := ap(hostA, 5000), ap(srv1, 9)
	reply := make([]byte, 1500)
	fits, cut, refused := bigUDP(from, to, 1000, true), bigUDP(from, to, 1400, false), bigUDP(from, to, 1400, true)
	e.Process(1, append([]byte(nil), fits...), reply, t0) // the mapping
	for name, pkt := range map[string][]byte{"fits": fits, "cut": cut, "refused": refused} {
		b := make([]byte, len(pkt))
		allocs := testing.AllocsPerRun(200, func() {
			copy(b, pkt)
			e.Process(1, b, reply, t0)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", name, allocs)
		}
	}
}

// A super-packet is measured by its segments: one whose segments fit
// passes whole, one whose segments do not is refused, the error quoting
// its first segment (IPv4) or its headers (IPv6).
func TestPMTUSuperPackets(t *testing.T) {
	e := newEngineMTU(t, table.IPv6Routed, 1280, 0)
	reply := make([]byte, 1500)
	t.Run("TSO", func(t *testing.T) {
		pkt, h := tuntest.TSO(ap(hostA, 40000), ap(srv1, 80), make([]byte, 10*tuntest.MSS), header.TCPAck)
		h.GSOSize = 1200 // 1240-byte segments
		if r := e.ProcessVirtio(1, append([]byte(nil), pkt...), &h, reply, t0); r.Verdict != Forward || r.FragMTU != 0 {
			t.Fatalf("segments that fit: %+v, want forwarded whole", r)
		}
		h.GSOSize = tuntest.MSS // 1488-byte segments
		r := e.ProcessVirtio(1, pkt, &h, reply, t0)
		if r.Verdict != DropTooBig || r.ReplyLen == 0 {
			t.Fatalf("segments too big: %+v, want too-big with a reply", r)
		}
		if q := header.IPv4(reply[28:r.ReplyLen]); q.TotalLen() != 40+tuntest.MSS {
			t.Errorf("quotes a packet of %d bytes, want the first segment's %d", q.TotalLen(), 40+tuntest.MSS)
		}
		checkSums(t, reply[:r.ReplyLen])
	})
	t.Run("TSO over IPv6", func(t *testing.T) {
		b := make([]byte, 5000)
		n := header.BuildTCP6(b, header.IPv6Fields{Src: h6A, Dst: srv6, HopLimit: 64},
			header.TCPFields{SrcPort: 5000, DstPort: 80, Seq: 1, Flags: header.TCPAck, Window: 512}, make([]byte, 4000))
		h := offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, GSOType: offload.GSOTCPv6, GSOSize: 1220, CsumStart: 40, CsumOffset: 16}
		if r := e.ProcessVirtio(1, append([]byte(nil), b[:n]...), &h, reply, t0); r.Verdict != Forward {
			t.Fatalf("1280-byte segments: %+v, want forwarded whole", r)
		}
		h.GSOSize = 1221
		if r := e.ProcessVirtio(1, b[:n], &h, reply, t0); r.Verdict != DropTooBig || r.ReplyLen == 0 {
			t.Fatalf("1281-byte segments: %+v, want too-big with a reply", r)
		}
		ptb(t, reply[:1280], gw6A, h6A, 1280, ap(h6A, 5000), ap(srv6, 80))
	})
}
