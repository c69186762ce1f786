package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

func countMappings(e *Engine, now time.Time) int {
	n := 0
	e.Mappings(now, func(MappingInfo) { n++ })
	return n
}

// Every packet's IPv4 header checksum is verified (RFC 1812 §5.2.2), in
// both directions, before anything is looked up or made.
func TestBadHeaderChecksumDropped(t *testing.T) {
	e := newEngine(t, "full-cone")
	out := udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x")
	out[10] ^= 0x40
	if r, _ := process(t, e, 1, out, t0); r.Verdict != DropBadChecksum {
		t.Fatalf("outbound with a bad header checksum: %v", r.Verdict)
	}
	if n := countMappings(e, t0); n != 0 {
		t.Fatalf("it made %d mappings", n)
	}
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x"), t0)
	in := udpPkt(ap(srv2, 1), ap(ext, 5000), 64, "y")
	in[8]-- // TTL changed, checksum not
	if r, _ := process(t, e, Outside, in, t0); r.Verdict != DropBadChecksum {
		t.Fatalf("inbound with a bad header checksum: %v", r.Verdict)
	}
	if c := e.Count(DropBadChecksum); c != 2 {
		t.Fatalf("bad-checksum counted %d, want 2", c)
	}
}

// From inside, a source must be on the port the packet came by (BCP 38).
func TestSpoofedInsideSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  netip.Addr
		dst  netip.Addr
		want Verdict
	}{
		{"another port's host", hostB, srv1, DropSpoofed},
		{"off the port's networks", netip.MustParseAddr("192.0.2.7"), srv1, DropSpoofed},
		{"another port's host, to an inside host", hostB, hostA, DropSpoofed},
		{"on the port's network, not a host", netip.MustParseAddr("10.0.0.99"), srv1, DropNoRoute},
		{"its own address", hostA, srv1, Forward},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, "full-cone")
			r, _ := process(t, e, 1, udpPkt(ap(tc.src, 5000), ap(tc.dst, 9), 64, "x"), t0)
			if r.Verdict != tc.want {
				t.Fatalf("from port 1 with source %s: %v, want %v", tc.src, r.Verdict, tc.want)
			}
			if n := countMappings(e, t0); tc.want != Forward && n != 0 {
				t.Fatalf("it made %d mappings", n)
			}
		})
	}
}

// Under full cone, packets to a live mapping from martian sources never
// reach the inside host; private sources do (nested NATs).
func TestMartianSourcesFromOutside(t *testing.T) {
	e := newEngine(t, "full-cone")
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x"), t0)
	for _, s := range []string{
		"0.0.0.0", "0.1.2.3", "127.0.0.1", "169.254.1.1", "224.0.0.1", "239.1.2.3",
		"240.0.0.1", "255.255.255.255",
		"198.51.100.1", // the NAT's own external address
		"10.0.0.3",     // an inside host
		"10.0.0.77",    // in an inside network
		"10.0.0.1",     // the NAT's gateway
	} {
		src := netip.MustParseAddr(s)
		if r, _ := process(t, e, Outside, udpPkt(ap(src, 53), ap(ext, 5000), 64, "martian"), t0); r.Verdict != DropMartian {
			t.Errorf("from %s: %v, want martian", src, r.Verdict)
		}
	}
	for _, s := range []string{"192.168.1.1", "172.16.0.1", "10.1.0.1", "100.64.0.1"} {
		src := netip.MustParseAddr(s)
		if r, _ := process(t, e, Outside, udpPkt(ap(src, 53), ap(ext, 5000), 64, "ok"), t0); r.Verdict != Forward {
			t.Errorf("from %s: %v, want forward", src, r.Verdict)
		}
	}
	// A router with only link-local addresses still reports errors.
	out := udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x")
	process(t, e, 1, out, t0)
	te := quote(t, out, netip.MustParseAddr("169.254.0.1"), header.ICMPTimeExceeded, 0)
	if r, _ := process(t, e, Outside, te, t0); r.Verdict != Forward {
		t.Errorf("ICMP error from a link-local router: %v, want forward", r.Verdict)
	}
}

// Loopback, broadcast, multicast, class E, this-network and link-local
// destinations are not translated.
func TestMartianDestinations(t *testing.T) {
	e := newEngine(t, "full-cone")
	for _, s := range []string{"127.0.0.1", "255.255.255.255", "224.0.0.251", "240.0.0.1", "0.0.0.0", "169.254.9.9"} {
		dst := netip.MustParseAddr(s)
		if r, _ := process(t, e, 1, udpPkt(ap(hostA, 5000), ap(dst, 9), 64, "x"), t0); r.Verdict != DropMartian {
			t.Errorf("to %s: %v, want martian", dst, r.Verdict)
		}
	}
	if n := countMappings(e, t0); n != 0 {
		t.Fatalf("%d mappings made", n)
	}
	if c := e.Count(DropMartian); c != 6 {
		t.Fatalf("martian counted %d, want 6", c)
	}
}

// An ICMP error from any router quoting a flow is translated, and
// changes nothing: with inbound refresh on and the session unreplied, it
// neither refreshes the mapping nor counts as a reply (RFC 5508 REQ-6).
func TestICMPErrorFromAnyRouterChangesNothing(t *testing.T) {
	e := newEngine(t, "linux") // inbound refresh; UDP 30s until answered
	out := udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x")
	process(t, e, 1, out, t0)
	for i, from := range []netip.Addr{rtr, srv2, netip.MustParseAddr("192.168.7.1")} {
		te := quote(t, out, from, header.ICMPTimeExceeded, 0)
		if r, _ := process(t, e, Outside, te, t0.Add(time.Duration(20+i)*time.Second)); r.Verdict != Forward {
			t.Fatalf("error from %s: %v", from, r.Verdict)
		}
	}
	in := udpPkt(ap(srv1, 9), ap(ext, 5000), 64, "late")
	if r, _ := process(t, e, Outside, in, t0.Add(30*time.Second+time.Millisecond)); r.Verdict != DropNoMapping {
		t.Fatalf("after the errors the mapping outlived its unreplied timeout: %v", r.Verdict)
	}
	// An error quoting a flow with no mapping makes none.
	stray := udpPkt(ap(ext, 6000), ap(srv1, 9), 64, "never sent")
	now := t0.Add(time.Minute)
	if r, _ := process(t, e, Outside, quote(t, stray, rtr, header.ICMPDestUnreachable, 3), now); r.Verdict != DropNoMapping {
		t.Fatalf("error without mapping: %v", r.Verdict)
	}
	if n := countMappings(e, now); n != 0 {
		t.Fatalf("%d mappings after an error about nothing", n)
	}
}

// netMasks agree with netip.Prefix.Contains.
func TestNetMasksMatchPrefixes(t *testing.T) {
	nets := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.0.1/32"),
		netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.168.1.77/23"),
		netip.MustParsePrefix("0.0.0.0/0"),
	}
	for _, n := range nets {
		ms := netMasks([]netip.Prefix{n})
		for i := range 20000 {
			a := [4]byte{byte(i * 7), byte(i >> 3), byte(i), byte(i * 13)}
			if i%2 == 0 { // near the network
				a = n.Masked().Addr().As4()
				a[2], a[3] = a[2]^byte(i>>8&3), byte(i)
			}
			k := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
			if got, want := k&ms[0].mask == ms[0].addr, n.Contains(netip.AddrFrom4(a)); got != want {
				t.Fatalf("%s contains %v: netMask says %v, Contains %v", n, a, got, want)
			}
		}
	}
}

// An ICMP error quoting an established TCP connection, from any router,
// is translated and leaves the session's state and expiry as they were.
func TestICMPErrorKeepsTCPState(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	syn := tcpPkt(ap(hostA, 5000), ap(srv1, 80), header.TCPSyn)
	process(t, e, 1, syn, t0)
	process(t, e, Outside, tcpPkt(ap(srv1, 80), ap(ext, 5000), header.TCPSyn|header.TCPAck), t0)
	process(t, e, 1, tcpPkt(ap(hostA, 5000), ap(srv1, 80), header.TCPAck), t0)
	sessions := func(now time.Time) (out []string) {
		e.Mappings(now, func(m MappingInfo) {
			for _, s := range m.Remotes {
				out = append(out, s.Remote.String()+" "+s.State+" "+s.Expires.String())
			}
		})
		return out
	}
	before := sessions(t0)
	if len(before) != 1 {
		t.Fatalf("sessions %v", before)
	}
	later := t0.Add(time.Minute)
	for _, from := range []netip.Addr{rtr, srv1, netip.MustParseAddr("192.168.7.1")} {
		for _, tc := range [][2]uint8{{header.ICMPDestUnreachable, header.ICMPCodePortUnreachable}, {header.ICMPTimeExceeded, 0}} {
			if r, _ := process(t, e, Outside, quote(t, syn, from, tc[0], tc[1]), later); r.Verdict != Forward {
				t.Fatalf("ICMP %d/%d from %s: %v", tc[0], tc[1], from, r.Verdict)
			}
		}
	}
	if after := sessions(later); len(after) != 1 || after[0] != before[0] {
		t.Fatalf("sessions before the errors %v, after %v", before, after)
	}
}

// With a big external pool (looked up by index rather than compared),
// each external address is still a martian source.
func TestMartianSourceBigPool(t *testing.T) {
	var pool []netip.Addr
	for i := range 16 {
		pool = append(pool, netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)}))
	}
	e := newEngine(t, "full-cone", func(c *table.Config) { c.External = pool; c.Pooling = table.Arbitrary })
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x"), t0)
	var m netip.AddrPort
	e.Mappings(t0, func(mi MappingInfo) { m = mi.External })
	for _, src := range append(pool, srv2) {
		want := DropMartian
		if src == srv2 {
			want = Forward
		}
		if r, _ := process(t, e, Outside, udpPkt(ap(src, 53), m, 64, "y"), t0); r.Verdict != want {
			t.Errorf("from %s: %v, want %v", src, r.Verdict, want)
		}
	}
}
