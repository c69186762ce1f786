package nat

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

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

// Queues side by side on routed sessions, with expiry and queries
// between them: the firewall's lock keeps them apart (run with -race).
func TestIPv6RoutedConcurrent(t *testing.T) {
	e := newEngine6(t, table.IPv6Routed, table.AddressDependent)
	done := make(chan bool)
	for w := 0; w < 2; w++ {
		q := e.NewQueue()
		go func() {
			reply := make([]byte, 1500)
			for i := 0; i < 500; i++ {
				port := uint16(5000 + w*1000 + i%50)
				out := udp6(ap(h6A, port), ap(srv6, 3478), 64, "x")
				if r := q.Process(1, out, reply, t0); r.Verdict != Forward {
					t.Errorf("out: %v", r.Verdict)
				}
				in := udp6(ap(srv6, 3479), ap(h6A, port), 64, "y")
				if r := q.Process(Outside, in, reply, t0); r.Verdict != Forward {
					t.Errorf("in: %v", r.Verdict)
				}
			}
			done <- true
		}()
	}
	for i := 0; i < 20; i++ {
		e.Expire(t0)
		e.Mappings(t0, func(MappingInfo) {})
	}
	<-done
	<-done
	n := 0
	e.Mappings(t0, func(MappingInfo) { n++ })
	if n != 100 || e.Count(Forward) != 2000 {
		t.Fatalf("%d sessions, %d forwarded; want 100, 2000", n, e.Count(Forward))
	}
}
