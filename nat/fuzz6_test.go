package nat

import (
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// FuzzProcess6 feeds arbitrary bytes into the routed and NPTv6 modes,
// either way: the engine must never panic; what it forwards must decode
// and keep valid checksums when it came with them; and the routed
// firewall, holding one UDP session (APDF), lets in nothing but that
// session's packets and errors quoting it.
func FuzzProcess6(f *testing.F) {
	sess := udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "seed")
	f.Add(sess, uint8(0))
	f.Add(udp6(ap(srv6, 3478), ap(h6A, 5000), 64, "seed"), uint8(1))
	f.Add(udp6(ap(srv6, 3479), ap(h6A, 5000), 64, "seed"), uint8(1))
	f.Add(tcp6(ap(srv6, 80), ap(h6A, 5000), header.TCPSyn), uint8(1))
	f.Add(echo6(h6A, srv6, header.ICMPv6EchoRequest, 9), uint8(0))
	f.Add(icmp6Err(sess, netip.MustParseAddr("2001:db8:ee::1"), header.ICMPv6DestUnreachable, 4), uint8(1))
	f.Add(udp6(ap(ula6A, 5000), ap(srv6, 3478), 64, "seed"), uint8(2))
	f.Add(udp6(ap(srv6, 3478), ap(netip.MustParseAddr("2001:db8:f0::2"), 5000), 64, "seed"), uint8(3))
	f.Add([]byte{0x60, 0, 0, 0}, uint8(1))
	first, later := frags6(udp6(ap(srv6, 3478), ap(h6A, 5000), 64, "0123456789abcdef0123456789abcdef"), 5, 16)
	f.Add(first, uint8(1))
	f.Add(later, uint8(1))
	f.Fuzz(func(t *testing.T, pkt []byte, how uint8) {
		mode, port := table.IPv6Routed, Port(1)
		if how&2 != 0 {
			mode = table.IPv6NPTv6
		}
		if how&1 != 0 {
			port = Outside
		}
		e := newEngine6(t, mode, table.AddressAndPortDependent)
		if mode == table.IPv6Routed {
			if r, _, _ := run6(e, 1, udp6(ap(h6A, 5000), ap(srv6, 3478), 64, "x"), t0); r.Verdict != Forward {
				t.Fatal(r.Verdict)
			}
		}
		r, buf, p, forwarded := processFuzzed6(t, e, port, pkt)
		if !forwarded {
			return
		}
		if port != Outside {
			if r.Out == Outside && (mode == table.IPv6Routed && !netip.MustParsePrefix("2001:db8:1::/64").Contains(p.Src.Addr()) ||
				mode == table.IPv6NPTv6 && !netip.MustParsePrefix("2001:db8:f0::/64").Contains(p.Src.Addr())) {
				t.Fatalf("left from %s", p.Src)
			}
			return
		}
		if mode == table.IPv6NPTv6 {
			if !netip.MustParsePrefix("fd00:1::/64").Contains(p.Dst.Addr()) {
				t.Fatalf("let in to %s", p.Dst)
			}
			return
		}
		// Routed, from outside: the session's own packets (any of them
		// a later fragment is not) or an error quoting the session.
		ours := p.Proto == header.ProtoUDP && !p.IsFragment() && p.Src == ap(srv6, 3478) && p.Dst == ap(h6A, 5000)
		quote := p.Proto == header.ProtoICMPv6 && header.IsICMPv6Error(p.ICMPType) && p.Dst.Addr() == h6A &&
			p.InnerProto == header.ProtoUDP && p.InnerSrc == ap(h6A, 5000) && p.InnerDst == ap(srv6, 3478)
		firstFrag := p.Proto == header.ProtoUDP && p.IsFirstFragment() && p.Src == ap(srv6, 3478) && p.Dst == ap(h6A, 5000)
		if !ours && !quote && !firstFrag {
			t.Fatalf("the firewall let in %s -> %s proto %d type %d: %x", p.Src, p.Dst, p.Proto, p.ICMPType, buf)
		}
	})
}

// processFuzzed6 runs fuzzed pkt through e from port and checks what
// every IPv6 mode owes any input: an error the NAT makes is a valid
// ICMPv6 message (its quote may be of anything, so only its own checksum
// counts), and a forwarded packet decodes and keeps valid checksums when
// it came with them. forwarded says whether pkt was forwarded; buf is
// then the packet as it left and p its decoding.
func processFuzzed6(t *testing.T, e *Engine, port Port, pkt []byte) (r Result, buf []byte, p header.ParsedV6, forwarded bool) {
	t.Helper()
	validBefore := len(pkt) > 0 && pkt[0]>>4 == 6 && sums6Valid(pkt) == nil
	buf = append([]byte(nil), pkt...)
	reply := make([]byte, 1500)
	r = e.Process(port, buf, reply, t0)
	if r.ReplyLen > 0 {
		m := header.IPv6(reply[:r.ReplyLen])
		if m.Version() != 6 || m.NextHeader() != header.ProtoICMPv6 ||
			header.Checksum(m.Payload(), header.PseudoHeaderSum6(m.Src(), m.Dst(), header.ProtoICMPv6, uint32(len(m.Payload())))) != 0 {
			t.Fatalf("the NAT's own error is not a valid ICMPv6 message: %x", m)
		}
	}
	if r.Verdict != Forward {
		return r, buf, p, false
	}
	p.Decode(buf)
	if p.Status != header.OK {
		t.Fatalf("forwarded a packet that does not decode: %v", p.Status)
	}
	if validBefore {
		if err := sums6Valid(buf); err != nil {
			t.Fatalf("forwarded with %v: %x", err, buf)
		}
	}
	return r, buf, p, true
}
