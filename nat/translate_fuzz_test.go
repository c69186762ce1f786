package nat

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"

	"github.com/gonat/gonat/header"
)

// tableState is every live mapping with its sessions and counters: a
// packet the engine drops, and any ICMP error, must leave it as it was.
func tableState(e *Engine) []MappingInfo {
	var ms []MappingInfo
	e.Mappings(t0, func(m MappingInfo) { ms = append(ms, m) })
	return ms
}

// lie overwrites bytes of the quote in ICMP error b (after the outer IPv4
// and ICMP headers) from pairs (offset, value) in edits, then, when fix
// says so, makes the quoted IPv4 header's checksum right again, so that
// the lie gets past the checksum checks; the ICMP checksum is always
// recomputed.
func lie(b []byte, edits []byte, fix bool) {
	q := b[28:]
	for i := 0; i+1 < len(edits) && len(q) > 0; i += 2 {
		q[int(edits[i])%len(q)] = edits[i+1]
	}
	if ip := header.IPv4(q); fix && len(q) >= 20 && ip.HeaderLen() >= 20 && ip.HeaderLen() <= len(q) {
		ip.SetChecksum(ip.ComputeChecksum())
	}
	icmp := b[20:]
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[2:], header.Checksum(icmp, 0))
}

// FuzzTranslate drives one flow through the engine both ways, then ICMP
// errors about it in both directions with quotes that lie, then an
// arbitrary packet from outside. Properties:
//   - an outbound packet leaves from the external address with its
//     destination and payload intact and valid checksums; the reply comes
//     back to the inside endpoint that sent, payload intact, checksums valid;
//   - an ICMP error never changes the table (RFC 5508 REQ-6: looked up,
//     never created or refreshed); one forwarded is addressed to the inside
//     host (or leaves from the external address), quotes a live mapping's
//     endpoint, and carries valid checksums, the quote's included;
//   - a dropped packet leaves the table as it was.
func FuzzTranslate(f *testing.F) {
	// proto: 0 UDP, 1 TCP, 2 ICMP echo. mode bit 0: symmetric instead of
	// full-cone; bit 1: fix the quoted IPv4 checksum after the lie; bit 2:
	// Time Exceeded instead of Port Unreachable from outside.
	f.Add(uint8(0), uint16(5000), uint16(3478), []byte("hello"), uint8(0), []byte{}, []byte{})
	f.Add(uint8(1), uint16(40000), uint16(80), []byte{}, uint8(3), []byte{21, 7}, []byte{})
	f.Add(uint8(2), uint16(9), uint16(0), []byte("ping"), uint8(6), []byte{0, 0x46}, []byte{})
	// Quotes that lie: another source port, another protocol, a total
	// length past the end, an IHL of 15, the quoted source moved.
	f.Add(uint8(0), uint16(5000), uint16(53), []byte("q"), uint8(2), []byte{20, 0x13, 21, 0x89}, []byte{})
	f.Add(uint8(0), uint16(5000), uint16(53), []byte("q"), uint8(2), []byte{9, 6}, []byte{})
	f.Add(uint8(1), uint16(5000), uint16(443), []byte{}, uint8(2), []byte{2, 0xff, 3, 0xff}, []byte{})
	f.Add(uint8(0), uint16(5000), uint16(53), []byte("q"), uint8(6), []byte{0, 0x4f}, []byte{})
	f.Add(uint8(2), uint16(7), uint16(0), []byte("x"), uint8(2), []byte{15, 2}, []byte{})
	// Zero ports, and an arbitrary packet from outside after the flow.
	f.Add(uint8(0), uint16(0), uint16(0), []byte{}, uint8(0), []byte{}, udpPkt(ap(srv2, 1), ap(ext, 1024), 64, "z"))
	f.Add(uint8(1), uint16(5000), uint16(80), []byte{}, uint8(0), []byte{}, tcpPkt(ap(srv1, 80), ap(ext, 5000), header.TCPRst))
	f.Add(uint8(0), uint16(5000), uint16(80), []byte{}, uint8(1), []byte{}, []byte{0x45, 0, 0, 20})

	f.Fuzz(func(t *testing.T, proto uint8, sport, dport uint16, payload []byte, mode uint8, edits, raw []byte) {
		if len(payload) > 1200 {
			payload = payload[:1200]
		}
		preset := "full-cone"
		if mode&1 != 0 {
			preset = "symmetric"
		}
		e := newEngine(t, preset)
		inside, remote := ap(hostA, sport), ap(srv1, dport)
		b := make([]byte, 1500)
		var n int
		switch proto % 3 {
		case 0:
			n = header.BuildUDP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: 1},
				header.UDPFields{SrcPort: sport, DstPort: dport}, payload)
		case 1:
			n = header.BuildTCP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoTCP, TTL: 64, ID: 1},
				header.TCPFields{SrcPort: sport, DstPort: dport, Seq: 1000, Flags: header.TCPSyn, Window: 65535}, payload)
		case 2:
			inside, remote = ap(hostA, sport), ap(srv1, sport)
			n = header.BuildICMP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoICMP, TTL: 64, ID: 1},
				header.ICMPFields{Type: header.ICMPEchoRequest, Ident: sport, Seq: 1}, payload)
		}
		out := b[:n]
		want := tableState(e)
		r := e.Process(1, out, make([]byte, 1500), t0)
		if r.Verdict != Forward {
			if got := tableState(e); !reflect.DeepEqual(got, want) {
				t.Fatalf("dropped outbound (%v) changed the table: %+v", r.Verdict, got)
			}
			return
		}
		var p header.Parsed
		p.Decode(out)
		if r.Out != Outside || p.Src.Addr() != ext || p.Dst.Addr() != srv1 || proto%3 != 2 && p.Dst != remote {
			t.Fatalf("outbound %v -> %v left by %d as %v -> %v", inside, remote, r.Out, p.Src, p.Dst)
		}
		checkSums(t, out)
		if !bytes.Equal(out[n-len(payload):], payload) {
			t.Fatal("outbound payload changed")
		}
		mapped := p.Src

		// The reply.
		b = make([]byte, 1500)
		switch proto % 3 {
		case 0:
			n = header.BuildUDP(b, header.IPv4Fields{Src: srv1, Dst: ext, Protocol: header.ProtoUDP, TTL: 64, ID: 2},
				header.UDPFields{SrcPort: dport, DstPort: mapped.Port()}, payload)
		case 1:
			n = header.BuildTCP(b, header.IPv4Fields{Src: srv1, Dst: ext, Protocol: header.ProtoTCP, TTL: 64, ID: 2},
				header.TCPFields{SrcPort: dport, DstPort: mapped.Port(), Seq: 5000, Ack: 1001, Flags: header.TCPSyn | header.TCPAck, Window: 65535}, payload)
		case 2:
			n = header.BuildICMP(b, header.IPv4Fields{Src: srv1, Dst: ext, Protocol: header.ProtoICMP, TTL: 64, ID: 2},
				header.ICMPFields{Type: header.ICMPEchoReply, Ident: mapped.Port(), Seq: 1}, payload)
		}
		in := b[:n]
		r = e.Process(Outside, in, make([]byte, 1500), t0)
		if r.Verdict != Forward {
			t.Fatalf("reply to %v dropped: %v", mapped, r.Verdict)
		}
		p.Decode(in)
		if r.Out != 1 || p.Dst != inside || p.Src.Addr() != srv1 {
			t.Fatalf("reply came back by %d as %v -> %v, want -> %v", r.Out, p.Src, p.Dst, inside)
		}
		checkSums(t, in)
		if !bytes.Equal(in[n-len(payload):], payload) {
			t.Fatal("reply payload changed")
		}

		live := tableState(e)
		internals, externals := map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}
		for _, m := range live {
			internals[m.Internal], externals[m.External] = true, true
		}

		// From outside: an error about the packet that went out, its quote
		// edited. From a router on the path, or the server itself.
		from, typ := rtr, uint8(header.ICMPDestUnreachable)
		if mode&4 != 0 {
			from, typ = srv1, header.ICMPTimeExceeded
		}
		eb := make([]byte, 1500)
		en := header.BuildICMPError(eb, out, from, typ, 3, 0)
		msg := eb[:en]
		lie(msg, edits, mode&2 != 0)
		r = e.Process(Outside, msg, make([]byte, 1500), t0)
		if got := tableState(e); !reflect.DeepEqual(got, live) {
			t.Fatalf("inbound ICMP error (%v) changed the table:\n%+v\nwas\n%+v", r.Verdict, got, live)
		}
		if r.Verdict == Forward {
			p.Decode(msg)
			if r.Out != 1 || p.Dst.Addr() != hostA || !internals[p.InnerSrc] {
				t.Fatalf("inbound ICMP error forwarded by %d to %v quoting %v", r.Out, p.Dst, p.InnerSrc)
			}
			checkSums(t, msg)
		}

		// From inside: the host's error about the reply it got, edited.
		en = header.BuildICMPError(eb, in, hostA, header.ICMPDestUnreachable, 3, 0)
		msg = eb[:en]
		lie(msg, edits, mode&2 != 0)
		r = e.Process(1, msg, make([]byte, 1500), t0)
		if got := tableState(e); !reflect.DeepEqual(got, live) {
			t.Fatalf("outbound ICMP error (%v) changed the table:\n%+v\nwas\n%+v", r.Verdict, got, live)
		}
		if r.Verdict == Forward {
			p.Decode(msg)
			if r.Out != Outside || p.Src.Addr() != ext || !externals[p.InnerDst] {
				t.Fatalf("outbound ICMP error forwarded by %d from %v quoting %v", r.Out, p.Src, p.InnerDst)
			}
			checkSums(t, msg)
		}

		// Anything from outside: if dropped, nothing changes.
		pkt := append([]byte(nil), raw...)
		r = e.Process(Outside, pkt, make([]byte, 1500), t0)
		if r.Verdict != Forward && r.Verdict != HeldFragment {
			if got := tableState(e); !reflect.DeepEqual(got, live) {
				t.Fatalf("dropped inbound packet (%v) changed the table:\n%+v\nwas\n%+v", r.Verdict, got, live)
			}
		}
	})
}
