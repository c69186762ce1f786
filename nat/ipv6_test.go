package nat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/offload"
)

// Addresses and builders of the IPv6 tests. Routed: port 1 holds
// 2001:db8:1::/64, port 2 2001:db8:2::/64. NPTv6: both ports share
// fd00:1::/64, which maps to 2001:db8:f0::/64 (ext6's).
var (
	h6A   = netip.MustParseAddr("2001:db8:1::2")
	h6B   = netip.MustParseAddr("2001:db8:2::2")
	gw6A  = netip.MustParseAddr("2001:db8:1::1")
	srv6  = netip.MustParseAddr("2001:db8:ff::1")
	srv6b = netip.MustParseAddr("2001:db8:ff::2")
	ext6  = netip.MustParseAddr("2001:db8:f0::1")
	ula6A = netip.MustParseAddr("fd00:1::2")
	ula6B = netip.MustParseAddr("fd00:1::3")
)

// newEngine6 is newEngine with IPv6 mode mode and filtering f, the hosts
// of the routed or (mode nptv6) NPTv6 layout beside the IPv4 ones.
func newEngine6(t testing.TB, mode table.IPv6Mode, f table.Behavior, tweak ...func(*table.Config)) *Engine {
	t.Helper()
	c := table.DefaultConfig()
	c.External, c.External6 = []netip.Addr{ext}, []netip.Addr{ext6}
	c.IPv6, c.Filtering = mode, f
	for _, fn := range tweak {
		fn(&c)
	}
	a, b := netip.PrefixFrom(h6A, 64), netip.PrefixFrom(h6B, 64)
	if mode == table.IPv6NPTv6 {
		a, b = netip.PrefixFrom(ula6A, 64), netip.PrefixFrom(ula6B, 64)
	}
	e, err := New(Config{Table: c, Inside: []InsidePort{
		{Hosts: []netip.Prefix{netip.PrefixFrom(hostA, 24), a}, Gateway: gw},
		{Hosts: []netip.Prefix{netip.PrefixFrom(hostB, 24), b}, Gateway: gw},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func udp6(src, dst netip.AddrPort, hop uint8, payload string) []byte {
	b := make([]byte, 1500)
	n := header.BuildUDP6(b, header.IPv6Fields{Src: src.Addr(), Dst: dst.Addr(), HopLimit: hop},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, []byte(payload))
	return b[:n]
}

func tcp6(src, dst netip.AddrPort, flags uint8) []byte {
	b := make([]byte, 1500)
	n := header.BuildTCP6(b, header.IPv6Fields{Src: src.Addr(), Dst: dst.Addr(), HopLimit: 64},
		header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), Seq: 1000, Flags: flags, Window: 65535}, nil)
	return b[:n]
}

func echo6(src, dst netip.Addr, typ uint8, id uint16) []byte {
	b := make([]byte, 1500)
	n := header.BuildICMPv6(b, header.IPv6Fields{Src: src, Dst: dst, HopLimit: 64},
		header.ICMPFields{Type: typ, Ident: id, Seq: 1}, []byte("ping"))
	return b[:n]
}

// icmp6Err is an ICMPv6 error of typ and code from src about orig.
func icmp6Err(orig []byte, src netip.Addr, typ, code uint8) []byte {
	b := make([]byte, 1500)
	n := header.BuildICMPv6Error(b, orig, src, typ, code, 0)
	if n == 0 {
		panic("no error built")
	}
	return b[:n]
}

// sums6Valid recomputes the upper-layer checksum of IPv6 packet b, and
// of the packet an ICMPv6 error quotes when the quote is whole.
func sums6Valid(b []byte) error {
	var p header.ParsedV6
	p.Decode(b)
	if p.Status != header.OK {
		return fmt.Errorf("does not decode: %v", p.Status)
	}
	if err := l4Valid(b[:p.Length], &p); err != nil {
		return err
	}
	if p.InnerOff != 0 {
		q := b[p.InnerOff:p.Length]
		var ip header.ParsedV6
		ip.Decode(q)
		if ip.Status == header.OK && ip.Length == len(q) {
			if err := l4Valid(q, &ip); err != nil {
				return fmt.Errorf("quoted packet: %w", err)
			}
		}
	}
	return nil
}

func l4Valid(b []byte, p *header.ParsedV6) error {
	if p.IsFragment() {
		return nil
	}
	t := b[p.TransportOff:]
	switch p.Proto {
	case header.ProtoUDP, header.ProtoTCP, header.ProtoICMPv6:
	default:
		return nil
	}
	if p.Proto == header.ProtoUDP && t[6] == 0 && t[7] == 0 {
		return nil
	}
	if header.Checksum(t, header.PseudoHeaderSum6(p.Src.Addr(), p.Dst.Addr(), p.Proto, uint32(len(t)))) != 0 {
		return errors.New("upper-layer checksum invalid")
	}
	return nil
}

// run6 processes b and returns the result, and the packet it leaves as:
// b itself, or the NAT's reply.
func run6(e *Engine, in Port, b []byte, now time.Time) (Result, header.ParsedV6, []byte) {
	reply := make([]byte, 1500)
	r := e.Process(in, b, reply, now)
	out := b
	if r.ReplyLen > 0 {
		out = reply[:r.ReplyLen]
	}
	var p header.ParsedV6
	p.Decode(out)
	return r, p, out
}

// none, reject and blackhole: what an inside host hears, and that
// nothing from outside gets in.
func TestIPv6Refusing(t *testing.T) {
	for _, tc := range []struct {
		mode  table.IPv6Mode
		v     Verdict
		reply bool
		code  uint8
	}{
		{table.IPv6None, DropIPv6None, true, header.ICMPv6CodeAdminProhibited},
		{table.IPv6Reject, DropIPv6Reject, true, header.ICMPv6CodeNoRoute},
		{table.IPv6Blackhole, DropIPv6Blackhole, false, 0},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			e := newEngine6(t, tc.mode, table.EndpointIndependent)
			out := udp6(ap(h6A, 5000), ap(srv6, 53), 64, "q")
			r, p, reply := run6(e, 1, out, t0)
			if r.Verdict != tc.v || (r.ReplyLen > 0) != tc.reply {
				t.Fatalf("outbound: %+v, want %v with reply %v", r, tc.v, tc.reply)
			}
			if tc.reply {
				if p.Proto != header.ProtoICMPv6 || p.ICMPType != header.ICMPv6DestUnreachable || p.ICMPCode != tc.code {
					t.Fatalf("reply type %d code %d, want 1/%d", p.ICMPType, p.ICMPCode, tc.code)
				}
				if p.Src.Addr() != gw6A || p.Dst.Addr() != h6A || p.InnerSrc != ap(h6A, 5000) || p.InnerDst != ap(srv6, 53) {
					t.Fatalf("reply %s -> %s quoting %s -> %s", p.Src, p.Dst, p.InnerSrc, p.InnerDst)
				}
				if err := sums6Valid(reply); err != nil {
					t.Fatal(err)
				}
			}
			in := udp6(ap(srv6, 53), ap(h6A, 5000), 64, "a")
			if r, _, _ := run6(e, Outside, in, t0); r.Verdict != tc.v || r.ReplyLen != 0 {
				t.Fatalf("inbound: %+v, want %v, no reply", r, tc.v)
			}
			if e.Count(tc.v) != 2 || e.Count(Forward) != 0 || e.Count(DropNotIPv4) != 0 {
				t.Fatalf("counters: %v %d forward %d", tc.v, e.Count(tc.v), e.Count(Forward))
			}
		})
	}
}

// The refusals pass the ICMP limiter, keyed by the IPv6 destination: a
// burst of 6 to one host, then one per interval; another host has its
// own bucket.
func TestIPv6RefusalsRateLimited(t *testing.T) {
	e := newEngine6(t, table.IPv6None, table.EndpointIndependent, func(c *table.Config) {
		c.ICMPInterval = time.Second
	})
	replies := 0
	for i := 0; i < 10; i++ {
		if r, _, _ := run6(e, 1, udp6(ap(h6A, 5000), ap(srv6, 53), 64, "q"), t0); r.ReplyLen > 0 {
			replies++
		}
	}
	if replies != icmpDestBurst || e.ICMPErrorsLimited() != 10-icmpDestBurst {
		t.Fatalf("%d replies, %d limited; want %d, %d", replies, e.ICMPErrorsLimited(), icmpDestBurst, 10-icmpDestBurst)
	}
	if r, _, _ := run6(e, 2, udp6(ap(h6B, 5000), ap(srv6, 53), 64, "q"), t0); r.ReplyLen == 0 {
		t.Fatal("another host's first refusal was held back")
	}
	if r, _, _ := run6(e, 1, udp6(ap(h6A, 5000), ap(srv6, 53), 64, "q"), t0.Add(time.Second)); r.ReplyLen == 0 {
		t.Fatal("no refusal after an interval")
	}
}

// forwardAllocs checks that forwarding out (from port 1) and in (from
// outside), over and over, allocates nothing; what names the case.
func forwardAllocs(t *testing.T, e *Engine, what string, out, in []byte) {
	t.Helper()
	buf, reply := make([]byte, max(len(out), len(in))), make([]byte, 1500)
	for _, tc := range []struct {
		port Port
		b    []byte
	}{{1, out}, {Outside, in}} {
		allocs := testing.AllocsPerRun(1000, func() {
			n := copy(buf, tc.b)
			if r := e.Process(tc.port, buf[:n], reply, t0); r.Verdict != Forward {
				t.Fatal(r.Verdict)
			}
		})
		if allocs != 0 {
			t.Errorf("%s from port %d: %v allocations per packet", what, tc.port, allocs)
		}
	}
}

// A packet of a live session, either way, and an NPTv6 translation
// allocate nothing.
func TestIPv6HitPathAllocs(t *testing.T) {
	for _, mode := range []table.IPv6Mode{table.IPv6Routed, table.IPv6NPTv6} {
		e := newEngine6(t, mode, table.AddressDependent)
		a := h6A
		if mode == table.IPv6NPTv6 {
			a = ula6A
		}
		out := udp6(ap(a, 5000), ap(srv6, 3478), 64, "x")
		r, p, _ := run6(e, 1, append([]byte(nil), out...), t0)
		if r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
		in := udp6(ap(srv6, 3478), p.Src, 64, "y")
		forwardAllocs(t, e, mode.String(), out, in)
	}
}

// IPv6 packets are traced as IPv4 ones are: a forward with its endpoints
// before and after, a drop with its reason.
func TestIPv6Trace(t *testing.T) {
	var got []string
	e := newEngine6(t, table.IPv6NPTv6, table.AddressAndPortDependent)
	e.SetObserver(func(ev Event) { got = append(got, traceLine(ev)) })
	e.SetTracing(true)
	run6(e, 1, udp6(ap(ula6A, 5000), ap(srv6, 53), 64, "q"), t0)
	run6(e, Outside, udp6(ap(srv6, 53), ap(srv6b, 1), 64, "q"), t0)
	if len(got) != 2 ||
		!strings.Contains(got[0], "XLATE forward in=1 out=0 udp [fd00:1::2]:5000>[2001:db8:ff::1]:53 => [2001:db8:f0:") ||
		!strings.Contains(got[1], "DROP no-route in=0") {
		t.Fatalf("trace:\n%s", strings.Join(got, "\n"))
	}
}

// BenchmarkProcess6: a packet of a live routed session either way, an
// NPTv6 translation either way, and a packet of a live nat66 mapping
// either way.
func BenchmarkProcess6(b *testing.B) {
	for _, mode := range []table.IPv6Mode{table.IPv6Routed, table.IPv6NPTv6, table.IPv6NAT66} {
		e := newEngine6(b, mode, table.AddressAndPortDependent)
		a := h6A
		if mode == table.IPv6NPTv6 {
			a = ula6A
		}
		out := udp6(ap(a, 5000), ap(srv6, 3478), 64, "0123456789012345678901234567890123456789")
		first := append([]byte(nil), out...)
		_, p, _ := run6(e, 1, first, t0)
		in := udp6(ap(srv6, 3478), p.Src, 64, "0123456789012345678901234567890123456789")
		for _, tc := range []struct {
			name string
			port Port
			pkt  []byte
		}{{"outbound", 1, out}, {"inbound", Outside, in}} {
			b.Run(mode.String()+"-"+tc.name, func(b *testing.B) {
				buf, reply := make([]byte, len(tc.pkt)), make([]byte, 1500)
				b.SetBytes(int64(len(tc.pkt)))
				b.ReportAllocs()
				for b.Loop() {
					copy(buf, tc.pkt)
					if r := e.Process(tc.port, buf, reply, t0); r.Verdict != Forward {
						b.Fatal(r.Verdict)
					}
				}
			})
		}
	}
}

// From a device with offloads: an IPv6 packet's partial checksum is
// finished and it goes on plain; a super-packet is not passed on (the
// segmenting after the engine knows IPv4 only).
func TestIPv6Virtio(t *testing.T) {
	e := newEngine6(t, table.IPv6Routed, table.AddressAndPortDependent)
	b := udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "hello")
	// The partial sum a kernel leaves: the pseudo-header's, folded.
	ph := header.Fold(header.PseudoHeaderSum6(h6A, srv6, header.ProtoUDP, uint32(len(b)-40)))
	binary.BigEndian.PutUint16(b[46:], ph)
	h := offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, CsumStart: 40, CsumOffset: 6}
	if r := e.ProcessVirtio(1, b, &h, make([]byte, 1500), t0); r.Verdict != Forward || h.NeedsCsum() {
		t.Fatalf("%v, %+v", r.Verdict, h)
	}
	if err := sums6Valid(b); err != nil {
		t.Fatal(err)
	}
	// A super-packet goes on whole, its header and partial sum as they
	// were: routed changes nothing they cover.
	g := offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, GSOType: offload.GSOTCPv6, GSOSize: 1000, CsumStart: 40, CsumOffset: 16}
	want := g
	sp := tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPAck)
	sum := binary.BigEndian.Uint16(sp[56:])
	if r := e.ProcessVirtio(1, sp, &g, make([]byte, 1500), t0); r.Verdict != Forward || g != want || binary.BigEndian.Uint16(sp[56:]) != sum {
		t.Fatalf("super-packet: %v, header %+v (was %+v), checksum field %#04x (was %#04x)", r.Verdict, g, want, binary.BigEndian.Uint16(sp[56:]), sum)
	}
	// Other modes drop it with their reason; a kind the kernel never
	// sends is unsupported.
	bh := newEngine6(t, table.IPv6Blackhole, table.AddressAndPortDependent)
	if r := bh.ProcessVirtio(1, tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPAck), &g, make([]byte, 1500), t0); r.Verdict != DropIPv6Blackhole {
		t.Fatalf("super-packet in blackhole: %v", r.Verdict)
	}
	ufo := offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, GSOType: offload.GSOUDP, GSOSize: 1000, CsumStart: 40, CsumOffset: 6}
	if r := e.ProcessVirtio(1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "x"), &ufo, make([]byte, 1500), t0); r.Verdict != DropUnsupported {
		t.Fatalf("UFO super-packet: %v", r.Verdict)
	}
}

// An external IPv6 address inside an inside host's prefix would make
// routing ambiguous, as an IPv4 one does (RFC 4787 REQ-7).
func TestIPv6ExternalInsideRefused(t *testing.T) {
	c := table.DefaultConfig()
	c.External, c.External6, c.IPv6 = []netip.Addr{ext}, []netip.Addr{netip.MustParseAddr("2001:db8:1::99")}, table.IPv6Routed
	_, err := New(Config{Table: c, Inside: []InsidePort{{Hosts: []netip.Prefix{netip.PrefixFrom(hostA, 24), netip.PrefixFrom(h6A, 64)}, Gateway: gw}}})
	if err == nil || !strings.Contains(err.Error(), "2001:db8:1::99") {
		t.Fatalf("got %v", err)
	}
}

// The routed and NPTv6 modes answer from each port's prefix::1: a host
// given that address is refused at start-up.
func TestIPv6HostOnGatewayRefused(t *testing.T) {
	c := table.DefaultConfig()
	c.External, c.External6, c.IPv6 = []netip.Addr{ext}, []netip.Addr{ext6}, table.IPv6Routed
	cfg := Config{Table: c, Inside: []InsidePort{{Hosts: []netip.Prefix{netip.PrefixFrom(hostA, 24), netip.PrefixFrom(gw6A, 64)}, Gateway: gw}}}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "2001:db8:1::1") {
		t.Fatalf("got %v", err)
	}
	cfg.Table.IPv6 = table.IPv6None
	if _, err := New(cfg); err != nil {
		t.Fatalf("mode none: %v", err)
	}
}
