package nat

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/tuntest"
)

const mss = tuntest.MSS

// fill fills b with pseudo-random bytes from seed.
func fill(b []byte, seed uint8) {
	var s [32]byte
	s[0] = seed
	rand.NewChaCha8(s).Read(b)
}

func tsoPkt(src, dst netip.AddrPort, payload []byte, flags uint8) ([]byte, tun.VirtioHdr) {
	return tuntest.TSO(src, dst, payload, flags)
}

func udpPartial(src, dst netip.AddrPort, ttl uint8, payload string) ([]byte, tun.VirtioHdr) {
	return tuntest.UDPPartial(src, dst, ttl, []byte(payload))
}

func deviceFinish(b []byte, h tun.VirtioHdr) []byte { return tuntest.DeviceFinish(b, h) }

func processV(t *testing.T, e *Engine, in Port, b []byte, h *tun.VirtioHdr) (Result, header.Parsed) {
	t.Helper()
	reply := make([]byte, 1500)
	r := e.ProcessVirtio(in, b, h, reply, t0)
	var p header.Parsed
	if r.ReplyLen > 0 {
		lastReply = reply[:r.ReplyLen]
		p.Decode(lastReply)
	} else {
		p.Decode(b)
	}
	return r, p
}

// A TSO super-packet is translated once, both ways; its partial checksum
// completes to what a full computation over the translated packet gives,
// and its segments are exactly the segments of the original.
func TestGSOTranslate(t *testing.T) {
	payload := make([]byte, 64000)
	fill(payload, 1)
	for _, preset := range []string{"port-restricted-cone", "symmetric"} { // symmetric: the port changes too
		t.Run(preset, func(t *testing.T) {
			e := newEngine(t, preset)
			b, h := tsoPkt(ap(hostA, 40000), ap(srv1, 5201), payload, header.TCPAck|header.TCPPsh)
			// The SYN first, as a real connection would.
			syn, sh := tsoPkt(ap(hostA, 40000), ap(srv1, 5201), nil, header.TCPSyn)
			if r, _ := processV(t, e, 1, syn, &sh); r.Verdict != Forward {
				t.Fatal(r.Verdict)
			}
			hIn := h
			r, p := processV(t, e, 1, b, &h)
			if r.Verdict != Forward || r.Out != Outside || p.Src.Addr() != ext {
				t.Fatalf("outbound: %v to %d from %s", r.Verdict, r.Out, p.Src)
			}
			if h != hIn {
				t.Fatalf("virtio header changed: %+v -> %+v", hIn, h)
			}
			if preset == "symmetric" && p.Src.Port() == 40000 {
				t.Fatal("symmetric kept the port; the test wants a port change")
			}
			checkSums(t, deviceFinish(b, h))
			checkSegments(t, b, h, payload)

			// The answer comes back as a super-packet too.
			back, bh := tsoPkt(ap(srv1, 5201), p.Src, payload, header.TCPAck)
			r, p = processV(t, e, Outside, back, &bh)
			if r.Verdict != Forward || r.Out != 1 || p.Dst != ap(hostA, 40000) {
				t.Fatalf("inbound: %v to %d for %s", r.Verdict, r.Out, p.Dst)
			}
			checkSums(t, deviceFinish(back, bh))
			checkSegments(t, back, bh, payload)
		})
	}
}

// checkSegments cuts super-packet b in software and checks each segment:
// valid checksums, consecutive sequence numbers and IDs, FIN/PSH on the
// last only, and together the payload.
func checkSegments(t *testing.T, b []byte, h tun.VirtioHdr, payload []byte) {
	t.Helper()
	n := NumSegments(b, &h)
	if want := (len(payload) + mss - 1) / mss; n != want {
		t.Fatalf("%d segments, want %d", n, want)
	}
	var got []byte
	seq0 := header.TCP(b[20:]).Seq()
	flags := header.TCP(b[20:]).Flags()
	seg := make([]byte, 1500)
	for i := range n {
		l := segment(seg, b, &h, i)
		if l == 0 || l > 1488 {
			t.Fatalf("segment %d: length %d", i, l)
		}
		s := seg[:l]
		checkSums(t, s)
		ip, tcp := header.IPv4(s), header.TCP(s[20:])
		if ip.ID() != header.IPv4(b).ID()+uint16(i) || ip.Src() != header.IPv4(b).Src() || ip.TTL() != header.IPv4(b).TTL() {
			t.Fatalf("segment %d: id %d src %s ttl %d", i, ip.ID(), ip.Src(), ip.TTL())
		}
		if tcp.Seq() != seq0+uint32(i*mss) || tcp.SrcPort() != header.TCP(b[20:]).SrcPort() {
			t.Fatalf("segment %d: seq %d port %d", i, tcp.Seq()-seq0, tcp.SrcPort())
		}
		wantFlags := flags
		if i < n-1 {
			wantFlags &^= header.TCPFin | header.TCPPsh
		}
		if tcp.Flags() != wantFlags {
			t.Fatalf("segment %d: flags %#x, want %#x", i, tcp.Flags(), wantFlags)
		}
		got = append(got, s[40:]...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("the segments do not add up to the payload")
	}
}

// Property: whatever the addresses, ports and length, a partial checksum
// translated by ProcessVirtio completes to the full checksum of the
// translated packet, outbound, inbound and hairpinned.
func TestPartialChecksumProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	e := newEngine(t, "symmetric", func(c *table.Config) { c.Hairpin = true })
	for i := range 2000 {
		payload := make([]byte, rng.IntN(3000))
		fill(payload, uint8(i))
		sport := uint16(1024 + rng.IntN(60000))
		remote := netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(250) + 1)})
		var b []byte
		var h tun.VirtioHdr
		if i%2 == 0 {
			b, h = tsoPkt(ap(hostA, sport), ap(remote, 443), payload, header.TCPSyn)
		} else {
			b, h = udpPartial(ap(hostA, sport), ap(remote, 53), 64, string(payload[:min(len(payload), 1400)]))
		}
		r, p := processV(t, e, 1, b, &h)
		if r.Verdict != Forward {
			t.Fatalf("packet %d: %v", i, r.Verdict)
		}
		if err := sumsValid(deviceFinish(b, h)); err != nil {
			t.Fatalf("packet %d outbound: %v", i, err)
		}
		var back []byte
		var bh tun.VirtioHdr
		if i%2 == 0 {
			back, bh = tsoPkt(ap(remote, 443), p.Src, payload, header.TCPSyn|header.TCPAck)
		} else {
			back, bh = udpPartial(ap(remote, 53), p.Src, 64, "answer")
		}
		if r, _ := processV(t, e, Outside, back, &bh); r.Verdict != Forward {
			t.Fatalf("packet %d inbound: %v", i, r.Verdict)
		}
		if err := sumsValid(deviceFinish(back, bh)); err != nil {
			t.Fatalf("packet %d inbound: %v", i, err)
		}
		// B sends to A's external endpoint: both addresses change.
		if i%2 == 1 {
			hp, hh := udpPartial(ap(hostB, 7000), p.Src, 64, "hairpin")
			e.ProcessVirtio(2, append([]byte(nil), hp...), &hh, make([]byte, 1500), t0) // B's mapping
			hp, hh = udpPartial(ap(hostB, 7000), p.Src, 64, "hairpin")
			if r, q := processV(t, e, 2, hp, &hh); r.Verdict == Forward {
				if q.Dst.Addr() != hostA || q.Src.Addr() != ext {
					t.Fatalf("hairpin: %s -> %s", q.Src, q.Dst)
				}
				if err := sumsValid(deviceFinish(hp, hh)); err != nil {
					t.Fatalf("packet %d hairpin: %v", i, err)
				}
			}
		}
	}
}

// Routed between inside hosts, a partial checksum is left as it is.
func TestPartialInsideToInside(t *testing.T) {
	e := newEngine(t, "full-cone")
	b, h := udpPartial(ap(hostA, 5000), ap(hostB, 6000), 64, "next door")
	want := binary.BigEndian.Uint16(b[26:])
	r, _ := processV(t, e, 1, b, &h)
	if r.Verdict != Forward || r.Out != 2 || binary.BigEndian.Uint16(b[26:]) != want {
		t.Fatalf("%v to %d, partial %#x want %#x", r.Verdict, r.Out, binary.BigEndian.Uint16(b[26:]), want)
	}
	checkSums(t, deviceFinish(b, h))
}

// An ICMP error the NAT generates about a super-packet quotes its first
// segment as it would have been on the wire (RFC 792: the header and the
// first bytes of the datagram), with complete checksums.
func TestGSOTimeExceededQuotesFirstSegment(t *testing.T) {
	payload := make([]byte, 20000)
	fill(payload, 5)
	e := newEngine(t, "full-cone")
	b, h := tsoPkt(ap(hostA, 40000), ap(srv1, 5201), payload, header.TCPAck|header.TCPFin)
	header.IPv4(b).SetTTL(1)
	setIPChecksum(b, 20)
	first := make([]byte, 1500)
	first = first[:segment(first, b, &h, 0)]
	r, p := processV(t, e, 1, b, &h)
	if r.Verdict != DropTTLExceeded || r.ReplyLen == 0 || p.ICMPType != header.ICMPTimeExceeded || p.Src.Addr() != gw {
		t.Fatalf("%+v type %d from %s", r, p.ICMPType, p.Src)
	}
	checkSums(t, lastReply)
	q := lastReply[p.InnerOff:]
	if !bytes.Equal(q, first[:len(q)]) {
		t.Fatalf("the quote is not the first segment:\n got %x\nwant %x", q[:40], first[:40])
	}
	if tl := header.IPv4(q).TotalLen(); tl != 40+mss {
		t.Fatalf("quoted total length %d", tl)
	}
	if header.TCP(q[20:]).Flags()&header.TCPFin != 0 {
		t.Fatal("the first segment quotes the FIN of the last")
	}
}

// The same for a partial checksum without GSO: the 3/13 a full pool
// sends quotes the datagram with its checksum complete.
func TestPartialPoolExhaustedQuote(t *testing.T) {
	e := newEngine(t, "full-cone", func(c *table.Config) { c.PortLo, c.PortHi = 20000, 20000 })
	b, h := udpPartial(ap(hostA, 30000), ap(srv1, 1), 64, "x")
	if r, _ := processV(t, e, 1, b, &h); r.Verdict != Forward {
		t.Fatal(r.Verdict)
	}
	b, h = udpPartial(ap(hostA, 30001), ap(srv1, 1), 64, "full")
	full := deviceFinish(b, h)
	r, p := processV(t, e, 1, b, &h)
	if r.Verdict != DropPoolExhausted || p.ICMPCode != header.ICMPCodeAdminProhibited {
		t.Fatalf("%+v", r)
	}
	checkSums(t, lastReply)
	if q := lastReply[p.InnerOff:]; !bytes.Equal(q, full) {
		t.Fatalf("quote %x\nwant  %x", q, full)
	}
}

func TestVirtioMalformed(t *testing.T) {
	e := newEngine(t, "full-cone")
	reply := make([]byte, 1500)
	// GSO without a partial checksum: never from the kernel.
	b, h := tsoPkt(ap(hostA, 1), ap(srv1, 2), make([]byte, 3000), header.TCPAck)
	h.Flags = 0
	if r := e.ProcessVirtio(1, b, &h, reply, t0); r.Verdict != DropMalformed {
		t.Fatalf("GSO without NEEDS_CSUM: %v", r.Verdict)
	}
	// TSO on a UDP packet, an IPv6 GSO type, a checksum past the end.
	for _, mod := range []func(*tun.VirtioHdr){
		func(h *tun.VirtioHdr) { h.GSOType, h.GSOSize = tun.GSOTCPv4, 100 },
		func(h *tun.VirtioHdr) { h.GSOType, h.GSOSize = tun.GSOTCPv6, 100 },
		func(h *tun.VirtioHdr) { h.CsumOffset = 60000 },
	} {
		b, h := udpPartial(ap(hostA, 5000), ap(srv1, 3478), 64, "x")
		mod(&h)
		if r := e.ProcessVirtio(1, b, &h, reply, t0); r.Verdict != DropMalformed {
			t.Fatalf("%+v: %v", h, r.Verdict)
		}
	}
	for _, b := range [][]byte{nil, {0x45}, make([]byte, 19), {0x60, 0, 0, 0}} {
		h := tun.VirtioHdr{Flags: tun.VirtioNeedsCsum, GSOType: tun.GSOTCPv4, GSOSize: 1, CsumStart: 20, CsumOffset: 16}
		if r := e.ProcessVirtio(1, b, &h, reply, t0); r.Verdict == Forward {
			t.Fatalf("%x forwarded", b)
		}
	}
}

// A partial checksum somewhere other than a UDP or TCP checksum (an ICMP
// message, say) is finished in software and the packet goes on plain.
func TestPartialElsewhereFinished(t *testing.T) {
	e := newEngine(t, "full-cone")
	b := echoPkt(hostA, srv1, header.ICMPEchoRequest, 77)
	binary.BigEndian.PutUint16(b[22:], 0) // the ICMP checksum, left to the device
	h := tun.VirtioHdr{Flags: tun.VirtioNeedsCsum, CsumStart: 20, CsumOffset: 2}
	r, p := processV(t, e, 1, b, &h)
	if r.Verdict != Forward || p.Src.Addr() != ext || h.NeedsCsum() {
		t.Fatalf("%v from %s, %+v", r.Verdict, p.Src, h)
	}
	checkSums(t, b)
}

func TestSegmenterSplitsInBatches(t *testing.T) {
	payload := make([]byte, 60000)
	fill(payload, 7)
	b, h := tsoPkt(ap(hostA, 1), ap(srv1, 2), payload, header.TCPAck)
	s := NewSegmenter(8, 1500, headroom)
	var got []byte
	n := NumSegments(b, &h)
	for k := 0; k < n; {
		q, next, lost := s.Split(b, &h, k)
		if lost != 0 || len(q) == 0 || len(q) > 8 {
			t.Fatalf("split from %d: %d packets, %d lost", k, len(q), lost)
		}
		for _, pkt := range q {
			checkSums(t, pkt[headroom:])
			got = append(got, pkt[headroom+40:]...)
		}
		k = next
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("segments do not add up")
	}
	// Segments that do not fit are counted, not written past the end.
	small := NewSegmenter(4, 500, headroom)
	if q, _, lost := small.Split(b, &h, 0); len(q) != 0 || lost == 0 {
		t.Fatalf("%d packets, %d lost", len(q), lost)
	}
}

// The offload translate path allocates nothing either.
func TestVirtioNoAllocs(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	payload := make([]byte, 64000)
	out, oh := tsoPkt(ap(hostA, 40000), ap(srv1, 5201), payload, header.TCPAck)
	in, ih := tsoPkt(ap(srv1, 5201), ap(ext, 40000), payload, header.TCPAck)
	uout, uh := udpPartial(ap(hostA, 5000), ap(srv1, 3478), 64, "hello")
	syn, sh := tsoPkt(ap(hostA, 40000), ap(srv1, 5201), nil, header.TCPSyn)
	reply := make([]byte, 1500)
	e.ProcessVirtio(1, syn, &sh, reply, t0)
	e.ProcessVirtio(1, append([]byte(nil), uout...), &uh, reply, t0)
	seg := make([]byte, 1500)
	for name, c := range map[string]struct {
		port Port
		pkt  []byte
		h    tun.VirtioHdr
	}{"tso outbound": {1, out, oh}, "tso inbound": {Outside, in, ih}, "udp partial outbound": {1, uout, uh}} {
		buf := make([]byte, len(c.pkt))
		allocs := testing.AllocsPerRun(200, func() {
			copy(buf[:min(60, len(buf))], c.pkt)
			h := c.h
			sinkResult = e.ProcessVirtio(c.port, buf, &h, reply, t0)
			segment(seg, buf, &h, 3)
		})
		if allocs != 0 || sinkResult.Verdict != Forward {
			t.Errorf("%s: %v allocs per packet, verdict %v", name, allocs, sinkResult.Verdict)
		}
	}
}

// benchVirtio translates one 64 KB TSO super-packet per op: headers
// only, whatever the payload.
func benchVirtio(b *testing.B, port Port, pkt []byte, h tun.VirtioHdr, setup func(*Engine)) {
	e := newEngine(b, "port-restricted-cone")
	setup(e)
	reply := make([]byte, 1500)
	buf := append([]byte(nil), pkt...)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf[:40], pkt[:40]) // the headers; the payload is never touched
		hh := h
		sinkResult = e.ProcessVirtio(port, buf, &hh, reply, t0)
	}
	if sinkResult.Verdict != Forward {
		b.Fatal(sinkResult.Verdict)
	}
}

func BenchmarkTranslateGSO(b *testing.B) {
	payload := make([]byte, 65535-40)
	out, oh := tsoPkt(ap(hostA, 40000), ap(srv1, 5201), payload, header.TCPAck)
	in, ih := tsoPkt(ap(srv1, 5201), ap(ext, 40000), payload, header.TCPAck)
	open := func(e *Engine) {
		syn, sh := tsoPkt(ap(hostA, 40000), ap(srv1, 5201), nil, header.TCPSyn)
		e.ProcessVirtio(1, syn, &sh, make([]byte, 1500), t0)
	}
	b.Run("tso64k-outbound", func(b *testing.B) { benchVirtio(b, 1, out, oh, open) })
	b.Run("tso64k-inbound", func(b *testing.B) { benchVirtio(b, Outside, in, ih, open) })
	b.Run("tso64k-segment-software", func(b *testing.B) {
		s := NewSegmenter(64, 1500, headroom)
		b.SetBytes(int64(len(out)))
		b.ReportAllocs()
		for b.Loop() {
			for k, n := 0, NumSegments(out, &oh); k < n; {
				_, k, _ = s.Split(out, &oh, k)
			}
		}
	})
}

// A DF-clear super-packet becomes K datagrams numbered ID..ID+K-1 by the
// kernel's segmentation (found in review): the next datagram must not
// get one of those numbers.
func TestIPIDSkipsSegments(t *testing.T) {
	e := newEngine(t, "full-cone")
	reply := make([]byte, 1500)
	b, h := tsoPkt(ap(hostA, 5000), ap(srv1, 80), make([]byte, 3*mss), header.TCPAck)
	b[6] &^= 0x40 // DF clear
	ip := header.IPv4(b)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.ComputeChecksum())
	if n, _ := h.WireSegments(b); n != 3 {
		t.Fatalf("%d segments", n)
	}
	if r := e.ProcessVirtio(1, b, &h, reply, t0); r.Verdict != Forward {
		t.Fatal(r.Verdict)
	}
	first := header.IPv4(b).ID()
	next := udpPkt(ap(hostA, 5001), ap(srv1, 3478), 64, "after")
	if r, _ := process(t, e, 1, next, t0); r.Verdict != Forward {
		t.Fatal(r.Verdict)
	}
	if got := header.IPv4(next).ID(); got-first < 3 {
		t.Errorf("super-packet left as IDs %d..%d, the next datagram got %d", first, first+2, got)
	}
}
