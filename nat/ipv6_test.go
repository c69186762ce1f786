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

// The routed firewall admits from outside what its filtering behaviour
// says, for the inside endpoint that sent; nothing else.
func TestIPv6RoutedFiltering(t *testing.T) {
	for _, tc := range []struct {
		f                    table.Behavior
		otherPort, otherAddr bool // admitted from srv6:3479, srv6b:3478
	}{
		{table.EndpointIndependent, true, true},
		{table.AddressDependent, true, false},
		{table.AddressAndPortDependent, false, false},
	} {
		t.Run(tc.f.String(), func(t *testing.T) {
			e := newEngine6(t, table.IPv6Routed, tc.f)
			out := udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "hello")
			r, p, _ := run6(e, 1, out, t0)
			if r.Verdict != Forward || r.Out != Outside || p.Src != ap(h6A, 5000) || p.Dst != ap(srv6, 3478) || p.HopLimit != 63 {
				t.Fatalf("outbound: %+v %s -> %s hop %d", r, p.Src, p.Dst, p.HopLimit)
			}
			if err := sums6Valid(out); err != nil {
				t.Fatal(err)
			}
			admit := func(from netip.AddrPort, to netip.AddrPort, want bool) {
				t.Helper()
				b := udp6(from, to, 64, "x")
				r, p, _ := run6(e, Outside, b, t0.Add(time.Second))
				if got := r.Verdict == Forward; got != want {
					t.Fatalf("from %s to %s: %v, want admitted %v", from, to, r.Verdict, want)
				}
				if want && (r.Out != 1 || p.HopLimit != 63 || sums6Valid(b) != nil) {
					t.Fatalf("from %s: %+v hop %d", from, r, p.HopLimit)
				}
				if !want && r.Verdict != DropIPv6Filtered {
					t.Fatalf("from %s: %v, want %v", from, r.Verdict, DropIPv6Filtered)
				}
			}
			admit(ap(srv6, 3478), ap(h6A, 5000), true)
			admit(ap(srv6, 3479), ap(h6A, 5000), tc.otherPort)
			admit(ap(srv6b, 3478), ap(h6A, 5000), tc.otherAddr)
			admit(ap(srv6, 3478), ap(h6A, 5001), false) // another endpoint of the host
			admit(ap(srv6, 3478), ap(h6B, 5000), false) // another host
			// After udp-timeout with nothing sent, nothing gets in.
			late := udp6(ap(srv6, 3478), ap(h6A, 5000), 64, "x")
			if r, _, _ := run6(e, Outside, late, t0.Add(table.DefaultUDPTimeout)); r.Verdict != DropIPv6Filtered {
				t.Fatalf("after the timeout: %v", r.Verdict)
			}
			if n := e.Expire(t0.Add(table.DefaultUDPTimeout)); n != 1 {
				t.Fatalf("Expire removed %d, want the one session", n)
			}
		})
	}
}

// TCP: an unsolicited SYN is dropped silently; a connection from inside
// lives by the established timeout once both sides talked, and by the
// transitory one once it closes.
func TestIPv6RoutedTCP(t *testing.T) {
	e := newEngine6(t, table.IPv6Routed, table.AddressAndPortDependent)
	a, s := ap(h6A, 40000), ap(srv6, 443)
	if r, _, _ := run6(e, Outside, tcp6(s, a, header.TCPSyn), t0); r.Verdict != DropUnsolicitedSYN || r.ReplyLen != 0 {
		t.Fatalf("unsolicited SYN: %+v", r)
	}
	step := func(in Port, b []byte, at time.Duration, want Verdict) {
		t.Helper()
		if r, _, _ := run6(e, in, b, t0.Add(at)); r.Verdict != want {
			t.Fatalf("at %v from port %d: %v, want %v", at, in, r.Verdict, want)
		}
	}
	step(1, tcp6(a, s, header.TCPSyn), 0, Forward)
	step(Outside, tcp6(s, a, header.TCPSyn|header.TCPAck), time.Second, Forward)
	step(1, tcp6(a, s, header.TCPAck), time.Second, Forward)
	var state string
	e.Mappings(t0.Add(time.Second), func(m MappingInfo) {
		if m.Proto == table.TCP && m.Internal == a && len(m.Remotes) == 1 && m.Remotes[0].Remote == s {
			state = m.Remotes[0].State
		}
	})
	if state != "ESTABLISHED" {
		t.Fatalf("session state %q, want ESTABLISHED", state)
	}
	// Well past the transitory timeout, the established session admits.
	est := time.Second + 2*table.DefaultTCPTransitoryTimeout
	step(Outside, tcp6(s, a, header.TCPAck), est, Forward)
	step(Outside, tcp6(s, a, header.TCPFin|header.TCPAck), est, Forward)
	step(Outside, tcp6(s, a, header.TCPAck), est+table.DefaultTCPTransitoryTimeout, DropIPv6Filtered)
}

// Echoes match by identifier; an echo request from outside is
// unsolicited; errors pass when their quote is a live session's.
func TestIPv6RoutedICMP(t *testing.T) {
	e := newEngine6(t, table.IPv6Routed, table.EndpointIndependent)
	if r, _, _ := run6(e, 1, echo6(h6A, srv6, header.ICMPv6EchoRequest, 7), t0); r.Verdict != Forward {
		t.Fatalf("echo out: %v", r.Verdict)
	}
	for _, tc := range []struct {
		b    []byte
		want Verdict
	}{
		{echo6(srv6, h6A, header.ICMPv6EchoReply, 7), Forward},
		{echo6(srv6, h6A, header.ICMPv6EchoReply, 8), DropIPv6Filtered},
		{echo6(srv6b, h6A, header.ICMPv6EchoReply, 7), DropIPv6Filtered},
		{echo6(srv6, h6A, header.ICMPv6EchoRequest, 9), DropIPv6Filtered},
	} {
		if r, _, _ := run6(e, Outside, tc.b, t0); r.Verdict != tc.want {
			t.Errorf("%x: %v, want %v", tc.b[40:44], r.Verdict, tc.want)
		}
	}
	sent := udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "x")
	if r, _, _ := run6(e, 1, sent, t0); r.Verdict != Forward {
		t.Fatal(r.Verdict)
	}
	rtr6 := netip.MustParseAddr("2001:db8:ee::1")
	errIn := icmp6Err(sent, rtr6, header.ICMPv6DestUnreachable, header.ICMPv6CodePortUnreachable)
	if r, _, _ := run6(e, Outside, errIn, t0); r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("error quoting a live session: %+v", r)
	}
	// From a link-local router too (a lab core's links).
	errLL := icmp6Err(sent, netip.MustParseAddr("fe80::9"), header.ICMPv6TimeExceeded, 0)
	if r, _, _ := run6(e, Outside, errLL, t0); r.Verdict != Forward {
		t.Fatalf("link-local error: %v", r.Verdict)
	}
	other := udp6(ap(h6A, 6000), ap(srv6, 3478), 64, "x")
	forged := icmp6Err(other, rtr6, header.ICMPv6DestUnreachable, header.ICMPv6CodePortUnreachable)
	if r, _, _ := run6(e, Outside, forged, t0); r.Verdict != DropIPv6Filtered {
		t.Fatalf("error quoting no session: %v", r.Verdict)
	}
}

// What a router refuses whatever the firewall says: spoofed sources,
// martians, packets for the NAT itself; hop limits running out; the
// session limit.
func TestIPv6RoutedValidation(t *testing.T) {
	e := newEngine6(t, table.IPv6Routed, table.EndpointIndependent, func(c *table.Config) { c.LimitSessions = 2 })
	for _, tc := range []struct {
		name string
		in   Port
		b    []byte
		want Verdict
	}{
		{"spoofed off-port", 1, udp6(ap(h6B, 1), ap(srv6, 53), 64, "x"), DropSpoofed},
		{"spoofed foreign", 1, udp6(ap(srv6b, 1), ap(srv6, 53), 64, "x"), DropSpoofed},
		{"link-local dst", 1, udp6(ap(h6A, 1), ap(netip.MustParseAddr("fe80::1"), 53), 64, "x"), DropMartian},
		{"multicast dst", 1, udp6(ap(h6A, 1), ap(netip.MustParseAddr("ff02::1"), 53), 64, "x"), DropMartian},
		{"to the gateway", 1, udp6(ap(h6A, 1), ap(gw6A, 53), 64, "x"), DropLocal},
		{"inside source from outside", Outside, udp6(ap(h6B, 1), ap(h6A, 53), 64, "x"), DropMartian},
		{"loopback from outside", Outside, udp6(ap(netip.IPv6Loopback(), 1), ap(h6A, 53), 64, "x"), DropMartian},
		{"no inside network", Outside, udp6(ap(srv6, 1), ap(netip.MustParseAddr("2001:db8:9::1"), 53), 64, "x"), DropNoRoute},
		{"not IPv6 at all", 1, []byte{0x70, 0, 0, 0}, DropNotIPv4},
		{"truncated", 1, udp6(ap(h6A, 1), ap(srv6, 53), 64, "x")[:30], DropMalformed},
	} {
		if r, _, _ := run6(e, tc.in, tc.b, t0); r.Verdict != tc.want || r.ReplyLen != 0 {
			t.Errorf("%s: %+v, want %v", tc.name, r, tc.want)
		}
	}
	// Between inside ports: forwarded, no session.
	if r, _, _ := run6(e, 1, udp6(ap(h6A, 1), ap(h6B, 2), 64, "x"), t0); r.Verdict != Forward || r.Out != 2 {
		t.Fatalf("inside to inside: %+v", r)
	}
	// Hop limit 1 going out: Time Exceeded from the port's gateway.
	r, p, reply := run6(e, 1, udp6(ap(h6A, 5000), ap(srv6, 53), 1, "x"), t0)
	if r.Verdict != DropTTLExceeded || p.ICMPType != header.ICMPv6TimeExceeded || p.Src.Addr() != gw6A || p.Dst.Addr() != h6A || sums6Valid(reply) != nil {
		t.Fatalf("hop limit 1 out: %+v type %d from %s", r, p.ICMPType, p.Src)
	}
	// Coming in, only once admitted; then from the external address.
	run6(e, 1, udp6(ap(h6A, 5000), ap(srv6, 53), 64, "x"), t0)
	if r, _, _ := run6(e, Outside, udp6(ap(srv6, 53), ap(h6A, 5001), 1, "x"), t0); r.Verdict != DropIPv6Filtered || r.ReplyLen != 0 {
		t.Fatalf("unadmitted hop limit 1: %+v", r)
	}
	r, p, _ = run6(e, Outside, udp6(ap(srv6, 53), ap(h6A, 5000), 1, "x"), t0)
	if r.Verdict != DropTTLExceeded || p.Src.Addr() != ext6 || p.Dst.Addr() != srv6 {
		t.Fatalf("admitted hop limit 1: %+v from %s to %s", r, p.Src, p.Dst)
	}
	// limit-sessions 2: a third is refused until one lapses.
	run6(e, 1, udp6(ap(h6A, 5001), ap(srv6, 53), 64, "x"), t0)
	if r, _, _ := run6(e, 1, udp6(ap(h6A, 5002), ap(srv6, 53), 64, "x"), t0); r.Verdict != DropLimitSessions {
		t.Fatalf("over the limit: %v", r.Verdict)
	}
	if r, _, _ := run6(e, 1, udp6(ap(h6A, 5002), ap(srv6, 53), 64, "x"), t0.Add(table.DefaultUDPTimeout)); r.Verdict != Forward {
		t.Fatalf("after the others lapsed: %v", r.Verdict)
	}
}

// Sessions are visible as mappings whose inside and external endpoints
// are one (nothing is translated), and Flush drops them.
func TestIPv6RoutedMappings(t *testing.T) {
	e := newEngine6(t, table.IPv6Routed, table.AddressAndPortDependent)
	run6(e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "x"), t0)
	var got []MappingInfo
	e.Mappings(t0, func(m MappingInfo) { got = append(got, m) })
	if len(got) != 1 || got[0].Proto != table.UDP || got[0].Internal != ap(h6A, 5000) || got[0].External != ap(h6A, 5000) ||
		len(got[0].Remotes) != 1 || got[0].Remotes[0].Remote != ap(srv6, 3478) || !got[0].Expires.Equal(t0.Add(table.DefaultUDPTimeout)) {
		t.Fatalf("mappings: %+v", got)
	}
	e.Flush()
	if r, _, _ := run6(e, Outside, udp6(ap(srv6, 3478), ap(h6A, 5000), 64, "x"), t0); r.Verdict != DropIPv6Filtered {
		t.Fatalf("after Flush: %v", r.Verdict)
	}
}

// NPTv6: the inside prefix leaves as the external one, checksum-neutral
// (no checksum field changes, and all stay valid), and comes back; an
// ICMPv6 error's quote is translated back too.
func TestIPv6NPTv6(t *testing.T) {
	e := newEngine6(t, table.IPv6NPTv6, table.AddressAndPortDependent)
	out := udp6(ap(ula6A, 5000), ap(srv6, 3478), 64, "hello")
	sum := [2]byte(out[46:48])
	r, p, _ := run6(e, 1, out, t0)
	if r.Verdict != Forward || r.Out != Outside {
		t.Fatalf("outbound: %+v", r)
	}
	x := p.Src.Addr()
	if !netip.MustParsePrefix("2001:db8:f0::/64").Contains(x) || p.Src.Port() != 5000 || p.Dst != ap(srv6, 3478) || p.HopLimit != 63 {
		t.Fatalf("outbound as %s -> %s hop %d", p.Src, p.Dst, p.HopLimit)
	}
	if [2]byte(out[46:48]) != sum || sums6Valid(out) != nil {
		t.Fatalf("checksum changed or invalid: %x", out[46:48])
	}
	back := udp6(ap(srv6, 3478), ap(x, 5000), 64, "world")
	r, p, _ = run6(e, Outside, back, t0)
	if r.Verdict != Forward || r.Out != 1 || p.Dst != ap(ula6A, 5000) || sums6Valid(back) != nil {
		t.Fatalf("inbound: %+v to %s", r, p.Dst)
	}
	// To port 2's host: the same prefix, its own port.
	if r, _, _ := run6(e, 1, udp6(ap(ula6B, 1), ap(srv6, 1), 64, "x"), t0); r.Verdict != DropSpoofed {
		t.Fatalf("port 2's host from port 1: %v", r.Verdict)
	}
	errIn := icmp6Err(out, netip.MustParseAddr("2001:db8:ee::1"), header.ICMPv6PacketTooBig, 0)
	r, p, _ = run6(e, Outside, errIn, t0)
	if r.Verdict != Forward || r.Out != 1 || p.Dst.Addr() != ula6A || p.InnerSrc != ap(ula6A, 5000) || sums6Valid(errIn) != nil {
		t.Fatalf("inbound error: %+v to %s quoting %s (%v)", r, p.Dst, p.InnerSrc, sums6Valid(errIn))
	}
	// An inside host's error about what came in: its quote goes out too.
	in2 := udp6(ap(srv6, 3478), ap(x, 5000), 64, "again")
	run6(e, Outside, in2, t0)
	errOut := icmp6Err(in2, ula6A, header.ICMPv6DestUnreachable, header.ICMPv6CodePortUnreachable)
	r, p, _ = run6(e, 1, errOut, t0)
	if r.Verdict != Forward || p.Src.Addr() != x || p.InnerDst != ap(x, 5000) || sums6Valid(errOut) != nil {
		t.Fatalf("outbound error: %+v from %s quoting %s", r, p.Src, p.InnerDst)
	}
	// Outside the external prefix: no route.
	if r, _, _ := run6(e, Outside, udp6(ap(srv6, 1), ap(srv6b, 1), 64, "x"), t0); r.Verdict != DropNoRoute {
		t.Fatalf("to a foreign address: %v", r.Verdict)
	}
}

// NPTv6 needs an inside IPv6 prefix, one only, and an external address.
func TestIPv6NPTv6Config(t *testing.T) {
	c := table.DefaultConfig()
	c.External, c.IPv6 = []netip.Addr{ext}, table.IPv6NPTv6
	cfg := Config{Table: c, Inside: []InsidePort{{Hosts: []netip.Prefix{netip.PrefixFrom(hostA, 24), netip.PrefixFrom(ula6A, 64)}, Gateway: gw}}}
	if _, err := New(cfg); err == nil {
		t.Fatal("nptv6 without an external IPv6 address accepted")
	}
	cfg.Table.External6 = []netip.Addr{ext6}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Inside = append(cfg.Inside, InsidePort{Hosts: []netip.Prefix{netip.PrefixFrom(h6B, 64)}})
	if _, err := New(cfg); err == nil {
		t.Fatal("two inside prefixes accepted")
	}
}

// A packet of a live session, either way, and an NPTv6 translation
// allocate nothing.
func TestIPv6HitPathAllocs(t *testing.T) {
	reply := make([]byte, 1500)
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
		buf := make([]byte, len(out))
		for _, tc := range []struct {
			port Port
			b    []byte
		}{{1, out}, {Outside, in}} {
			allocs := testing.AllocsPerRun(1000, func() {
				copy(buf, tc.b)
				if r := e.Process(tc.port, buf, reply, t0); r.Verdict != Forward {
					t.Fatal(r.Verdict)
				}
			})
			if allocs != 0 {
				t.Errorf("%v from port %d: %v allocations per packet", mode, tc.port, allocs)
			}
		}
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

// BenchmarkProcess6: a packet of a live routed session either way, and
// an NPTv6 translation either way.
func BenchmarkProcess6(b *testing.B) {
	for _, mode := range []table.IPv6Mode{table.IPv6Routed, table.IPv6NPTv6} {
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

// frags6 splits IPv6 packet pkt (no extension headers) into two
// fragments of datagram id, the first with cut bytes of its payload.
func frags6(pkt []byte, id uint32, cut int) (first, later []byte) {
	mk := func(off int, more bool, data []byte) []byte {
		b := make([]byte, 48+len(data))
		copy(b, pkt[:40])
		binary.BigEndian.PutUint16(b[4:], uint16(8+len(data)))
		b[6] = 44 // Fragment header
		b[40] = pkt[6]
		fo := uint16(off)
		if more {
			fo |= 1
		}
		binary.BigEndian.PutUint16(b[42:], fo)
		binary.BigEndian.PutUint32(b[44:], id)
		copy(b[48:], data)
		return b
	}
	return mk(0, true, pkt[40:40+cut]), mk(cut, false, pkt[40+cut:])
}

// From outside, a later fragment passes the routed firewall only after
// its datagram's first fragment did.
func TestIPv6RoutedFragments(t *testing.T) {
	e := newEngine6(t, table.IPv6Routed, table.AddressAndPortDependent)
	run6(e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "x"), t0)
	big := udp6(ap(srv6, 3478), ap(h6A, 5000), 64, strings.Repeat("y", 100))
	first, later := frags6(big, 77, 48)
	if r, _, _ := run6(e, Outside, append([]byte(nil), later...), t0); r.Verdict != DropFragment {
		t.Fatalf("later fragment before its first: %v", r.Verdict)
	}
	if r, _, _ := run6(e, Outside, first, t0); r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("first fragment: %+v", r)
	}
	if r, _, _ := run6(e, Outside, append([]byte(nil), later...), t0); r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("later fragment: %+v", r)
	}
	// Another datagram's, or another source's, does not pass.
	_, other := frags6(big, 78, 48)
	if r, _, _ := run6(e, Outside, other, t0); r.Verdict != DropFragment {
		t.Fatalf("another datagram's later fragment: %v", r.Verdict)
	}
	if r, _, _ := run6(e, Outside, append([]byte(nil), later...), t0.Add(61*time.Second)); r.Verdict != DropFragment {
		t.Fatalf("a later fragment after reassembly time: %v", r.Verdict)
	}
	// A first fragment of no session does not open the way.
	stray := udp6(ap(srv6, 3479), ap(h6A, 5000), 64, strings.Repeat("z", 100))
	f2, l2 := frags6(stray, 90, 48)
	if r, _, _ := run6(e, Outside, f2, t0); r.Verdict != DropIPv6Filtered {
		t.Fatalf("first fragment of no session: %v", r.Verdict)
	}
	if r, _, _ := run6(e, Outside, l2, t0); r.Verdict != DropFragment {
		t.Fatalf("its later fragment: %v", r.Verdict)
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
	g := offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, GSOType: offload.GSOTCPv6, GSOSize: 1000, CsumStart: 40, CsumOffset: 16}
	if r := e.ProcessVirtio(1, tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPAck), &g, make([]byte, 1500), t0); r.Verdict != DropUnsupported {
		t.Fatalf("super-packet: %v", r.Verdict)
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
