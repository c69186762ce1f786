package nat

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun/offload"
)

// out66 sends b from inside port in through e and returns its verdict
// and the packet as it leaves, checking its checksums.
func pass66(t *testing.T, e *Engine, in Port, b []byte, now time.Time) (Result, header.ParsedV6) {
	t.Helper()
	r, p, out := run6(e, in, b, now)
	if r.Verdict == Forward || r.ReplyLen > 0 {
		if err := sums6Valid(out); err != nil {
			t.Fatalf("%v: %v", r.Verdict, err)
		}
	}
	return r, p
}

// The mapping and filtering behaviours, as the IPv4 side has them:
// which external port a second remote sees, and who may send in.
func TestNAT66Behaviours(t *testing.T) {
	B := table.AddressAndPortDependent
	A := table.AddressDependent
	E := table.EndpointIndependent
	for _, tc := range []struct {
		name             string
		mapping, filter  table.Behavior
		samePort, sameIP bool // the port srv6:3479 and srv6b:3478 see, the same as srv6:3478's
		inPort, inIP     bool // srv6:3479 and srv6b:3478 may send in unsolicited
	}{
		{"full cone", E, E, true, true, true, true},
		{"restricted cone", E, A, true, true, true, false},
		{"port-restricted cone", E, B, true, true, false, false},
		{"symmetric", B, B, false, false, false, false},
		{"address-dependent mapping", A, B, true, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine6(t, table.IPv6NAT66, tc.filter, func(c *table.Config) {
				c.Mapping = tc.mapping
				c.PortOverloading = false
			})
			r, p := pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "a"), t0)
			if r.Verdict != Forward || r.Out != Outside || p.Src.Addr() != ext6 || p.Dst != ap(srv6, 3478) || p.HopLimit != 63 {
				t.Fatalf("out: %v to %d, %s -> %s hop %d", r.Verdict, r.Out, p.Src, p.Dst, p.HopLimit)
			}
			first := p.Src
			// Inbound to a port nobody holds is dropped before any filter.
			if r, _ := pass66(t, e, Outside, udp6(ap(srv6, 3478), ap(ext6, first.Port()+1), 64, "x"), t0); r.Verdict != DropNoMapping {
				t.Fatalf("to an unheld port: %v", r.Verdict)
			}
			// Unsolicited, before h6A sent to them.
			for _, c := range []struct {
				from netip.AddrPort
				want bool
			}{{ap(srv6, 3479), tc.inPort}, {ap(srv6b, 3478), tc.inIP}} {
				r, p := pass66(t, e, Outside, udp6(c.from, first, 64, "u"), t0)
				if got := r.Verdict == Forward; got != c.want {
					t.Fatalf("unsolicited from %s: %v, want forward %v", c.from, r.Verdict, c.want)
				}
				if r.Verdict == Forward && (r.Out != 1 || p.Dst != ap(h6A, 5000) || p.Src != c.from) {
					t.Fatalf("let in as %s -> %s to port %d", p.Src, p.Dst, r.Out)
				}
				if r.Verdict != Forward && r.Verdict != DropFiltered {
					t.Fatalf("unsolicited from %s: %v, want %v", c.from, r.Verdict, DropFiltered)
				}
			}
			for _, c := range []struct {
				to   netip.AddrPort
				same bool
			}{{ap(srv6, 3479), tc.samePort}, {ap(srv6b, 3478), tc.sameIP}} {
				_, p := pass66(t, e, 1, udp6(ap(h6A, 5000), c.to, 64, "b"), t0)
				if (p.Src == first) != c.same {
					t.Fatalf("to %s from %s, first from %s: want same %v", c.to, p.Src, first, c.same)
				}
				// Its reply comes back in, to h6A.
				r, back := pass66(t, e, Outside, udp6(c.to, p.Src, 64, "r"), t0)
				if r.Verdict != Forward || back.Dst != ap(h6A, 5000) || back.Src != c.to {
					t.Fatalf("reply from %s: %v, %s -> %s", c.to, r.Verdict, back.Src, back.Dst)
				}
			}
		})
	}
}

// TCP goes by the table's state machine: an unsolicited SYN is dropped
// silently, a connection opened from inside is admitted back.
func TestNAT66TCP(t *testing.T) {
	e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent)
	if r, _ := pass66(t, e, Outside, tcp6(ap(srv6, 80), ap(ext6, 5000), header.TCPSyn), t0); r.Verdict != DropUnsolicitedSYN {
		t.Fatalf("unsolicited SYN: %v", r.Verdict)
	}
	r, p := pass66(t, e, 1, tcp6(ap(h6A, 40000), ap(srv6, 80), header.TCPSyn), t0)
	if r.Verdict != Forward || p.Src.Addr() != ext6 {
		t.Fatalf("SYN out: %v from %s", r.Verdict, p.Src)
	}
	r, back := pass66(t, e, Outside, tcp6(ap(srv6, 80), p.Src, header.TCPSyn|header.TCPAck), t0)
	if r.Verdict != Forward || back.Dst != ap(h6A, 40000) {
		t.Fatalf("SYN-ACK in: %v to %s", r.Verdict, back.Dst)
	}
	if r, _ := pass66(t, e, Outside, tcp6(ap(srv6b, 80), p.Src, header.TCPSyn|header.TCPAck), t0); r.Verdict != DropFiltered {
		t.Fatalf("SYN-ACK from another server: %v", r.Verdict)
	}
}

// Echoes by identifier, ICMPv6 errors with their quotes translated both
// ways, the hop limit, and what nat66 does not translate.
func TestNAT66ICMP(t *testing.T) {
	e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent, func(c *table.Config) {
		c.PortAssignment = table.Sequential
	})
	r, p := pass66(t, e, 1, echo6(h6A, srv6, header.ICMPv6EchoRequest, 77), t0)
	if r.Verdict != Forward || p.Src.Addr() != ext6 {
		t.Fatalf("echo out: %v from %s", r.Verdict, p.Src)
	}
	id := p.Src.Port()
	r, back := pass66(t, e, Outside, echo6(srv6, ext6, header.ICMPv6EchoReply, id), t0)
	if r.Verdict != Forward || back.Dst != ap(h6A, 77) {
		t.Fatalf("echo reply: %v to %s", r.Verdict, back.Dst)
	}
	if r, _ := pass66(t, e, Outside, echo6(srv6b, ext6, header.ICMPv6EchoReply, id), t0); r.Verdict != DropFiltered {
		t.Fatalf("echo reply from another address: %v", r.Verdict)
	}

	// Errors from outside about what went out: a router's Packet Too Big.
	out := udp6(ap(h6A, 6000), ap(srv6, 53), 64, "query")
	_, sent := pass66(t, e, 1, out, t0)
	router := netip.MustParseAddr("2001:db8:ee::1")
	r, ep := pass66(t, e, Outside, icmp6Err(out, router, 2, 0), t0)
	if r.Verdict != Forward || r.Out != 1 || ep.Dst.Addr() != h6A || ep.Src.Addr() != router ||
		ep.InnerSrc != ap(h6A, 6000) || ep.InnerDst != ap(srv6, 53) {
		t.Fatalf("packet too big in: %v to %d, %s -> %s quoting %s -> %s", r.Verdict, r.Out, ep.Src, ep.Dst, ep.InnerSrc, ep.InnerDst)
	}
	// One quoting a flow the NAT never saw.
	stray := udp6(ap(ext6, 9), ap(srv6, 53), 64, "stray")
	if r, _ := pass66(t, e, Outside, icmp6Err(stray, router, 1, 4), t0); r.Verdict != DropNoMapping {
		t.Fatalf("error quoting no mapping: %v", r.Verdict)
	}
	// From inside about what came in: port unreachable.
	in := udp6(ap(srv6, 53), sent.Src, 64, "answer")
	_, got := pass66(t, e, Outside, in, t0)
	if got.Dst != ap(h6A, 6000) {
		t.Fatalf("answer to %s", got.Dst)
	}
	r, ep = pass66(t, e, 1, icmp6Err(in, h6A, 1, 4), t0)
	if r.Verdict != Forward || r.Out != Outside || ep.Src.Addr() != ext6 || ep.Dst.Addr() != srv6 ||
		ep.InnerSrc != ap(srv6, 53) || ep.InnerDst != sent.Src {
		t.Fatalf("port unreachable out: %v, %s -> %s quoting %s -> %s", r.Verdict, ep.Src, ep.Dst, ep.InnerSrc, ep.InnerDst)
	}

	// Hop limit: Time Exceeded from the gateway inside, the external
	// address outside.
	r, te := pass66(t, e, 1, udp6(ap(h6A, 6000), ap(srv6, 53), 1, "x"), t0)
	if r.Verdict != DropTTLExceeded || r.ReplyLen == 0 || te.Src.Addr() != gw6A || te.ICMPType != header.ICMPv6TimeExceeded {
		t.Fatalf("hop limit 1 out: %v, reply from %s type %d", r.Verdict, te.Src, te.ICMPType)
	}
	r, te = pass66(t, e, Outside, udp6(ap(srv6, 53), sent.Src, 1, "x"), t0.Add(2*time.Second))
	if r.Verdict != DropTTLExceeded || r.ReplyLen == 0 || te.Src.Addr() != ext6 {
		t.Fatalf("hop limit 1 in: %v, reply from %s", r.Verdict, te.Src)
	}

	// Fragments: out, each from the external address (the first with
	// its port); in, a later one follows its first to the host, and
	// one without its first is dropped.
	first, later := frags6(udp6(ap(h6A, 6000), ap(srv6, 53), 64, "0123456789abcdef0123456789abcdef"), 5, 16)
	for i, f := range [][]byte{later, first} {
		r, p := pass66(t, e, 1, f, t0)
		if r.Verdict != Forward || p.Src.Addr() != ext6 || i == 1 && p.Src != sent.Src {
			t.Fatalf("fragment %d out: %v from %s", i, r.Verdict, p.Src)
		}
	}
	first, later = frags6(udp6(ap(srv6, 53), sent.Src, 64, "0123456789abcdef0123456789abcdef"), 6, 16)
	if r, _ := pass66(t, e, Outside, append([]byte(nil), later...), t0); r.Verdict != DropFragment {
		t.Fatalf("later fragment before its first: %v", r.Verdict)
	}
	for i, f := range [][]byte{first, later} {
		r, p := pass66(t, e, Outside, f, t0)
		if r.Verdict != Forward || r.Out != 1 || p.Dst.Addr() != h6A {
			t.Fatalf("fragment %d in: %v to %d, %s", i, r.Verdict, r.Out, p.Dst)
		}
	}
	// Between inside hosts: routed as is.
	if r, p := pass66(t, e, 1, udp6(ap(h6A, 1), ap(h6B, 2), 64, "x"), t0); r.Verdict != Forward || r.Out != 2 || p.Src != ap(h6A, 1) {
		t.Fatalf("inside to inside: %v to %d from %s", r.Verdict, r.Out, p.Src)
	}
}

// One inside host reaches another through the NAT's external endpoint,
// and sees it as the NAT's external endpoint (RFC 4787 REQ-9).
func TestNAT66Hairpin(t *testing.T) {
	for _, on := range []bool{true, false} {
		e := newEngine6(t, table.IPv6NAT66, table.EndpointIndependent, func(c *table.Config) {
			c.Hairpin = on
			c.PortOverloading = false
		})
		_, pa := pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "a"), t0)
		r, p := pass66(t, e, 2, udp6(ap(h6B, 7000), pa.Src, 64, "b"), t0)
		if !on {
			if r.Verdict != DropHairpinOff {
				t.Fatalf("hairpin off: %v", r.Verdict)
			}
			continue
		}
		if r.Verdict != Forward || r.Out != 1 || p.Dst != ap(h6A, 5000) || p.Src.Addr() != ext6 {
			t.Fatalf("hairpin: %v to %d, %s -> %s", r.Verdict, r.Out, p.Src, p.Dst)
		}
		// h6A answers the endpoint it saw, back round the NAT to h6B.
		r, back := pass66(t, e, 1, udp6(ap(h6A, 5000), p.Src, 64, "c"), t0)
		if r.Verdict != Forward || r.Out != 2 || back.Dst != ap(h6B, 7000) || back.Src != pa.Src {
			t.Fatalf("hairpin back: %v to %d, %s -> %s", r.Verdict, r.Out, back.Src, back.Dst)
		}
	}
}

// Mappings, events and traces name the IPv6 endpoints, never the
// aliases; expiry frees the aliases after the mappings.
func TestNAT66Observed(t *testing.T) {
	e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent, func(c *table.Config) {
		c.UDPTimeout = 30 * time.Second
		c.PortHold = 0
	})
	var events []Event
	e.SetObserver(func(ev Event) { events = append(events, ev) })
	e.SetTracing(true)
	_, p := pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "a"), t0)
	pass66(t, e, Outside, udp6(ap(srv6, 3478), p.Src, 64, "b"), t0)
	var ms []MappingInfo
	e.Mappings(t0, func(m MappingInfo) { ms = append(ms, m) })
	if len(ms) != 1 || ms[0].Internal != ap(h6A, 5000) || ms[0].External != p.Src || len(ms[0].Remotes) != 1 ||
		ms[0].Remotes[0].Remote != ap(srv6, 3478) || ms[0].PacketsOut != 1 || ms[0].PacketsIn != 1 {
		t.Fatalf("mappings: %+v", ms)
	}
	n := e.MappingWindow(t0, 0, 10, 10, func(m MappingInfo, _ int) {
		if m.Internal != ap(h6A, 5000) || m.Remotes[0].Remote != ap(srv6, 3478) {
			t.Fatalf("window: %+v", m)
		}
	})
	pages := 0
	e.MappingPages(t0, 10, func(ms []MappingInfo) bool { pages += len(ms); return true })
	if n != 1 || pages != 1 || e.LiveMappings(t0)[table.UDP] != 1 {
		t.Fatalf("window %d, pages %d, live %v", n, pages, e.LiveMappings(t0))
	}
	var lines []string
	for _, ev := range events {
		lines = append(lines, traceLine(ev))
		if ev.Kind == EventCreated && ev.Mapping.Internal != ap(h6A, 5000) {
			t.Fatalf("created: %+v", ev.Mapping)
		}
	}
	all := strings.Join(lines, "\n")
	if strings.Contains(all, "0.0.0.") || strings.Contains(all, "240.0.0.1") ||
		!strings.Contains(all, "[2001:db8:1::2]:5000>[2001:db8:ff::1]:3478 => [2001:db8:f0::1]:") {
		t.Fatalf("events name aliases or miss the endpoints:\n%s", all)
	}
	events = nil
	if got := e.Expire(t0.Add(31 * time.Second)); got != 1 || len(events) != 1 || events[0].Mapping.Internal != ap(h6A, 5000) {
		t.Fatalf("expire: %d, %+v", got, events)
	}
	e.shared6.Lock()
	held := e.alias6.Len()
	e.shared6.Unlock()
	if held != 2 {
		t.Fatalf("aliases right after the mapping lapsed: %d, want 2 (kept until idle)", held)
	}
	// The longest timeout is TCP's established one (2 h 4 min).
	e.Expire(t0.Add(3 * time.Hour))
	e.shared6.Lock()
	held = e.alias6.Len()
	e.shared6.Unlock()
	if held != 0 {
		t.Fatalf("aliases long after: %d, want 0", held)
	}
	// A flush drops the nat66 mappings too.
	pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "a"), t0.Add(4*time.Hour))
	e.Flush()
	if n := e.LiveMappings(t0.Add(4 * time.Hour))[table.UDP]; n != 0 {
		t.Fatalf("after Flush: %d", n)
	}
}

// Unsolicited packets from many addresses make no aliases; a full alias
// map refuses new mappings with its own reason.
func TestNAT66AliasesBounded(t *testing.T) {
	e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent, func(c *table.Config) {
		c.LimitMappings, c.LimitSessions = 1, 1 // aliases: 2
	})
	_, p := pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "a"), t0)
	for i := range 20 {
		from := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xaa, 15: byte(i + 1)}), 999)
		if r, _ := pass66(t, e, Outside, udp6(from, p.Src, 64, "x"), t0); r.Verdict != DropFiltered {
			t.Fatalf("unsolicited: %v", r.Verdict)
		}
	}
	e.shared6.Lock()
	held := e.alias6.Len()
	e.shared6.Unlock()
	if held != 2 {
		t.Fatalf("aliases: %d, want 2", held)
	}
	r, _ := pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6b, 3478), 64, "a"), t0)
	if r.Verdict != DropIPv6Aliases || r.ReplyLen == 0 {
		t.Fatalf("past the alias limit: %v, reply %d", r.Verdict, r.ReplyLen)
	}
}

func TestNAT66NeedsExternal6(t *testing.T) {
	c := table.DefaultConfig()
	c.External, c.IPv6 = []netip.Addr{ext}, table.IPv6NAT66
	_, err := New(Config{Table: c, Inside: []InsidePort{{Hosts: []netip.Prefix{netip.PrefixFrom(hostA, 24), netip.PrefixFrom(h6A, 64)}, Gateway: gw}}})
	if err == nil || !strings.Contains(err.Error(), "nat66") {
		t.Fatalf("nat66 without an external IPv6 address: %v", err)
	}
}

// A packet of a live mapping, either way, allocates nothing.
func TestNAT66HitPathAllocs(t *testing.T) {
	e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent)
	for _, proto := range []string{"udp", "tcp"} {
		out := udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "x")
		if proto == "tcp" {
			out = tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPSyn)
		}
		_, p := pass66(t, e, 1, append([]byte(nil), out...), t0)
		in := udp6(ap(srv6, 3478), p.Src, 64, "y")
		if proto == "tcp" {
			pass66(t, e, Outside, tcp6(ap(srv6, 80), p.Src, header.TCPSyn|header.TCPAck), t0)
			pass66(t, e, 1, tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPAck), t0)
			out = tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPAck)
			in = tcp6(ap(srv6, 80), p.Src, header.TCPAck)
		} else {
			pass66(t, e, Outside, append([]byte(nil), in...), t0)
		}
		forwardAllocs(t, e, proto, out, in)
	}
	// Later fragments, either way, once their first came in.
	_, p := pass66(t, e, 1, udp6(ap(h6A, 6000), ap(srv6, 53), 64, "x"), t0)
	first, laterIn := frags6(udp6(ap(srv6, 53), p.Src, 64, "0123456789abcdef0123456789abcdef"), 8, 16)
	if r, _ := pass66(t, e, Outside, first, t0); r.Verdict != Forward {
		t.Fatal(r.Verdict)
	}
	_, laterOut := frags6(udp6(ap(h6A, 6000), ap(srv6, 53), 64, "0123456789abcdef0123456789abcdef"), 9, 16)
	forwardAllocs(t, e, "a later fragment", laterOut, laterIn)
}

// FuzzNAT66 feeds arbitrary bytes into the nat66 mode either way, with
// one UDP mapping (APDF) in place: the engine never panics; what it
// forwards decodes, keeps valid checksums when it came with them, leaves
// from the external address, and comes in only for that mapping's
// remote (or as an error quoting it).
func FuzzNAT66(f *testing.F) {
	sess := udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "seed")
	f.Add(sess, uint8(0))
	f.Add(udp6(ap(srv6, 3478), ap(ext6, 5000), 64, "seed"), uint8(1))
	f.Add(udp6(ap(srv6, 3479), ap(ext6, 5000), 64, "seed"), uint8(1))
	f.Add(tcp6(ap(srv6, 80), ap(ext6, 5000), header.TCPSyn), uint8(1))
	f.Add(tcp6(ap(h6A, 5001), ap(srv6, 80), header.TCPSyn), uint8(0))
	f.Add(echo6(h6A, srv6, header.ICMPv6EchoRequest, 9), uint8(0))
	f.Add(echo6(srv6, ext6, header.ICMPv6EchoReply, 9), uint8(1))
	f.Add(udp6(ap(h6B, 7000), ap(ext6, 5000), 64, "hairpin"), uint8(2))
	out := append([]byte(nil), sess...)
	header.RewriteSrc6(out, func() *header.ParsedV6 { var p header.ParsedV6; p.Decode(out); return &p }(), ap(ext6, 5000))
	f.Add(icmp6Err(out, netip.MustParseAddr("2001:db8:ee::1"), 2, 0), uint8(1))
	f.Add(icmp6Err(udp6(ap(srv6, 3478), ap(h6A, 5000), 64, "x"), h6A, 1, 4), uint8(0))
	f.Add([]byte{0x60, 0, 0, 0}, uint8(1))
	first, later := frags6(udp6(ap(srv6, 3478), ap(ext6, 5000), 64, "0123456789abcdef0123456789abcdef"), 7, 16)
	f.Add(first, uint8(1))
	f.Add(later, uint8(1))
	_, later = frags6(udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "0123456789abcdef0123456789abcdef"), 7, 16)
	f.Add(later, uint8(0))
	f.Fuzz(func(t *testing.T, pkt []byte, how uint8) {
		port := Port(1 + how>>1&1)
		if how&1 != 0 {
			port = Outside
		}
		e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent, func(c *table.Config) { c.PortOverloading = false })
		r0, p0, _ := run6(e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "x"), t0)
		if r0.Verdict != Forward || p0.Src != ap(ext6, 5000) {
			t.Fatal(r0.Verdict, p0.Src)
		}
		r, buf, p, forwarded := processFuzzed6(t, e, port, pkt)
		if !forwarded {
			return
		}
		if r.Out == Outside {
			if port != Outside && p.Src.Addr() != ext6 {
				t.Fatalf("left from %s", p.Src)
			}
			return
		}
		if port != Outside {
			return // routed between inside hosts, or hairpinned
		}
		ours := p.Proto == header.ProtoUDP && p.Src == ap(srv6, 3478) && p.Dst == ap(h6A, 5000)
		quote := p.Proto == header.ProtoICMPv6 && header.IsICMPv6Error(p.ICMPType) && p.Dst.Addr() == h6A &&
			p.InnerProto == header.ProtoUDP && p.InnerSrc == ap(h6A, 5000) && p.InnerDst == ap(srv6, 3478)
		if !ours && !quote {
			t.Fatalf("let in %s -> %s proto %d type %d: %x", p.Src, p.Dst, p.Proto, p.ICMPType, buf)
		}
	})
}

// A super-packet from a device with offloads is translated whole: its
// partial sum takes the address changes only, so that the checksum the
// next device finishes is right for the translated segment; one whose
// partial sum is not at its checksum field is unsupported.
func TestNAT66Virtio(t *testing.T) {
	e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent, func(c *table.Config) {
		c.PortAssignment = table.Sequential
	})
	reply := make([]byte, 1500)
	gso := func(b []byte, src, dst netip.Addr) *offload.VirtioHdr {
		binary.BigEndian.PutUint16(b[56:], header.Fold(header.PseudoHeaderSum6(src, dst, header.ProtoTCP, uint32(len(b)-40))))
		return &offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, GSOType: offload.GSOTCPv6, GSOSize: 1000, CsumStart: 40, CsumOffset: 16}
	}
	pass66(t, e, 1, tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPSyn), t0)
	out := tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPAck)
	h := gso(out, h6A, srv6)
	if r := e.ProcessVirtio(1, out, h, reply, t0); r.Verdict != Forward {
		t.Fatal(r.Verdict)
	}
	var p header.ParsedV6
	p.Decode(out)
	if p.Src.Addr() != ext6 || p.Src.Port() == 5000 {
		t.Fatalf("left from %s, want ext6 and a sequential port", p.Src)
	}
	if !h.FinishCsumAt(out) {
		t.Fatal("cannot finish the checksum")
	}
	if err := sums6Valid(out); err != nil {
		t.Fatalf("outbound super-packet: %v", err)
	}
	pass66(t, e, Outside, tcp6(ap(srv6, 80), p.Src, header.TCPSyn|header.TCPAck), t0)
	in := tcp6(ap(srv6, 80), p.Src, header.TCPAck)
	h = gso(in, srv6, ext6)
	if r := e.ProcessVirtio(Outside, in, h, reply, t0); r.Verdict != Forward || !h.FinishCsumAt(in) {
		t.Fatal(r.Verdict)
	}
	if err := sums6Valid(in); err != nil {
		t.Fatalf("inbound super-packet: %v", err)
	}
	bad := tcp6(ap(h6A, 5000), ap(srv6, 80), header.TCPAck)
	h = gso(bad, h6A, srv6)
	h.CsumOffset = 6
	if r := e.ProcessVirtio(1, bad, h, reply, t0); r.Verdict != DropUnsupported {
		t.Fatalf("partial sum off its field: %v", r.Verdict)
	}
}

// A new behaviour at run time reaches the nat66 table too, and drops
// its mappings as it drops IPv4's.
func TestNAT66SetTableConfig(t *testing.T) {
	e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent, func(c *table.Config) { c.PortOverloading = false })
	_, p := pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "a"), t0)
	c := e.Config().Table
	c.Filtering = table.EndpointIndependent
	if err := e.SetTableConfig(c); err != nil {
		t.Fatal(err)
	}
	if r, _ := pass66(t, e, Outside, udp6(ap(srv6, 3478), p.Src, 64, "b"), t0); r.Verdict != DropNoMapping {
		t.Fatalf("a mapping survived the change: %v", r.Verdict)
	}
	_, p = pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "a"), t0)
	if r, _ := pass66(t, e, Outside, udp6(ap(srv6b, 9), p.Src, 64, "b"), t0); r.Verdict != Forward {
		t.Fatalf("endpoint-independent filtering after the change: %v", r.Verdict)
	}
}

// Rebind moves the nat66 mappings to new ports of the external6 address
// as it moves IPv4's; a reboot with a new IPv4 address forgets them too.
func TestNAT66RebindReboot(t *testing.T) {
	e := newEngine6(t, table.IPv6NAT66, table.AddressAndPortDependent)
	send := func() netip.AddrPort {
		t.Helper()
		r, p := pass66(t, e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "x"), t0)
		if r.Verdict != Forward {
			t.Fatalf("outbound: %v", r.Verdict)
		}
		return p.Src
	}
	reply := func(to netip.AddrPort) Verdict {
		t.Helper()
		r, _ := pass66(t, e, Outside, udp6(ap(srv6, 3478), to, 64, "y"), t0)
		return r.Verdict
	}
	before := send()
	if n, err := e.Rebind(nil, t0); err != nil || n != 1 {
		t.Fatalf("rebind: %d moved, %v", n, err)
	}
	after := send()
	if after.Addr() != ext6 || after == before {
		t.Fatalf("left as %s before the rebind, %s after", before, after)
	}
	if v := reply(after); v != Forward {
		t.Fatalf("reply to the new endpoint: %v", v)
	}
	if v := reply(before); v == Forward {
		t.Fatalf("reply to the old endpoint %s forwarded", before)
	}
	if err := e.Reboot([]netip.Addr{netip.MustParseAddr("198.51.100.7")}, t0); err != nil {
		t.Fatal(err)
	}
	if v := reply(after); v != DropNoMapping {
		t.Fatalf("a nat66 mapping survived the reboot: %v", v)
	}
}
