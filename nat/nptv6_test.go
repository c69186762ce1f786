package nat

import (
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

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
