package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// fuzzSeeds adds the golden packets, hostile ones included, and a few
// built ones to the corpus.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for _, b := range goldenPackets {
		seeds = append(seeds, b)
	}
	g := newGen(10)
	for range 8 {
		seeds = append(seeds, g.transport())
		e, _ := g.icmpError()
		seeds = append(seeds, e)
	}
	seeds = append(seeds,
		nil,              // nothing
		[]byte{0x45},     // a version/IHL byte alone
		make([]byte, 20), // version 0
		[]byte{0x4f, 0, 0, 60, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 192, 0, 2, 1}, // IHL 15 in 20 bytes
	)
	return seeds
}

// checkParsed checks what Decode promises about p, decoded from b: every
// offset in bounds, and the fields equal to the bytes they came from.
func checkParsed(t *testing.T, b []byte, p *Parsed) {
	t.Helper()
	if p.Status != OK {
		if p.InnerOff != 0 || p.HasPorts() {
			t.Fatalf("%v with InnerOff %d HasPorts %v", p.Status, p.InnerOff, p.HasPorts())
		}
		return
	}
	ip := IPv4(b)
	if p.IPHeaderLen < IPv4MinSize || p.IPHeaderLen != ip.HeaderLen() || p.IPHeaderLen > p.Length ||
		p.Length > len(b) || p.Length != int(ip.TotalLen()) {
		t.Fatalf("lengths: header %d total %d buffer %d", p.IPHeaderLen, p.Length, len(b))
	}
	if p.IPProto != ip.Protocol() || p.TTL != ip.TTL() || p.ID != ip.ID() || p.FragOffset != ip.FragmentOffset() ||
		p.MoreFrags != ip.MoreFragments() || p.DontFrag != ip.DontFragment() {
		t.Fatalf("IPv4 fields disagree: %+v", p)
	}
	if p.Src.Addr() != ip.Src() || p.Dst.Addr() != ip.Dst() {
		t.Fatalf("addresses %v %v, bytes say %v %v", p.Src.Addr(), p.Dst.Addr(), ip.Src(), ip.Dst())
	}
	seg := b[p.IPHeaderLen:p.Length]
	var sp, dp uint16
	if p.HasPorts() {
		switch p.IPProto {
		case ProtoUDP:
			if len(seg) < UDPSize {
				t.Fatalf("UDP ports from %d bytes", len(seg))
			}
			sp, dp = UDP(seg).SrcPort(), UDP(seg).DstPort()
		case ProtoTCP:
			if len(seg) < TCPMinSize || TCP(seg).DataOffset() > len(seg) || TCP(seg).DataOffset() < TCPMinSize {
				t.Fatalf("TCP ports from %d bytes", len(seg))
			}
			sp, dp = TCP(seg).SrcPort(), TCP(seg).DstPort()
			if p.TCPFlags != TCP(seg).Flags() {
				t.Fatalf("TCP flags %#x, bytes say %#x", p.TCPFlags, TCP(seg).Flags())
			}
		case ProtoICMP:
			if len(seg) < ICMPv4MinSize {
				t.Fatalf("ICMP identifier from %d bytes", len(seg))
			}
			sp = ICMPv4(seg).Ident()
			dp = sp
		}
	}
	if p.Src.Port() != sp || p.Dst.Port() != dp {
		t.Fatalf("ports %d %d, bytes say %d %d", p.Src.Port(), p.Dst.Port(), sp, dp)
	}
	if p.IPProto == ProtoICMP && p.FragOffset == 0 {
		if len(seg) < ICMPv4MinSize || p.ICMPType != ICMPv4(seg).Type() || p.ICMPCode != ICMPv4(seg).Code() {
			t.Fatalf("ICMP type/code")
		}
	}
	if p.InnerOff == 0 {
		if p.IPProto == ProtoICMP && p.FragOffset == 0 && IsICMPError(p.ICMPType) {
			t.Fatal("OK ICMP error without a quote")
		}
		if p.InnerSrc.IsValid() || p.InnerDst.IsValid() || p.InnerProto != 0 || p.InnerHeaderLen != 0 {
			t.Fatalf("inner fields without a quote: %+v", p)
		}
		return
	}
	if p.IPProto != ProtoICMP || !IsICMPError(p.ICMPType) || p.FragOffset != 0 {
		t.Fatalf("quote in a packet that is not an ICMP error: %+v", p)
	}
	if p.InnerOff != p.IPHeaderLen+ICMPv4MinSize || p.InnerHeaderLen < IPv4MinSize ||
		p.InnerOff+p.InnerHeaderLen+8 > p.Length {
		t.Fatalf("quote offsets %d+%d in %d bytes", p.InnerOff, p.InnerHeaderLen, p.Length)
	}
	q := IPv4(b[p.InnerOff:p.Length])
	if q.HeaderLen() != p.InnerHeaderLen || q.Protocol() != p.InnerProto || q.FragmentOffset() != 0 ||
		q.Src() != p.InnerSrc.Addr() || q.Dst() != p.InnerDst.Addr() {
		t.Fatalf("quoted header disagrees: %+v", p)
	}
	qt := b[p.InnerOff+p.InnerHeaderLen : p.Length]
	switch p.InnerProto {
	case ProtoUDP, ProtoTCP:
		sp, dp = UDP(qt).SrcPort(), UDP(qt).DstPort()
	case ProtoICMP:
		if !IsICMPQuery(ICMPv4(qt).Type()) {
			t.Fatalf("quoted ICMP type %d", ICMPv4(qt).Type())
		}
		sp = ICMPv4(qt).Ident()
		dp = sp
	default:
		t.Fatalf("quoted protocol %d", p.InnerProto)
	}
	if p.InnerSrc.Port() != sp || p.InnerDst.Port() != dp {
		t.Fatalf("quoted ports %v %v, bytes say %d %d", p.InnerSrc, p.InnerDst, sp, dp)
	}
}

// FuzzDecode: Decode never panics, and whatever it reports OK holds.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		var p Parsed
		p.Decode(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("Decode wrote to the packet")
		}
		checkParsed(t, b, &p)
		checkFlow(t, b, &p)
		// BuildICMPError reads the same bytes; it must not panic either.
		var buf [576]byte
		if n := BuildICMPError(buf[:], b, netip.MustParseAddr("192.0.2.254"), ICMPTimeExceeded, 0, 0); n != 0 {
			if p.Status != OK || p.FragOffset != 0 {
				t.Fatalf("BuildICMPError answered a %v packet at offset %d", p.Status, p.FragOffset)
			}
			var e Parsed
			e.Decode(buf[:n])
			// A quote of anything but UDP, TCP or an ICMP query is
			// BadInner to Decode, which translates only those.
			if (e.Status != OK && !(e.Status == BadInner && !p.HasPorts())) ||
				!IPv4(buf[:n]).ChecksumValid() || Checksum(buf[IPv4MinSize:n], 0) != 0 {
				t.Fatalf("BuildICMPError made %v, %d bytes", e.Status, n)
			}
		}
	})
}

// checksumState records which checksums of a packet verify, by full
// computation over the bytes: IPv4 header; transport (unfragmented
// packets only, the UDP "none" value apart); the quoted IPv4 header;
// the quoted transport checksum when the whole quoted datagram is there.
type checksumState struct {
	ip, transport, innerIP, innerTransport bool
	udpNone, innerUDPNone                  bool
}

func checksums(b []byte, p *Parsed) checksumState {
	var s checksumState
	s.ip = IPv4(b).ChecksumValid()
	if !p.IsFragment() {
		s.transport, s.udpNone = transportValid(b[:p.Length], p.IPHeaderLen, p.IPProto)
	}
	if p.InnerOff != 0 {
		q := b[p.InnerOff:p.Length]
		s.innerIP = InnerIPChecksumValid(b, p)
		if tl, whole := wholeQuote(q, p); whole {
			s.innerTransport, s.innerUDPNone = transportValid(q[:tl], p.InnerHeaderLen, p.InnerProto)
		}
	}
	return s
}

// transportValid verifies the transport checksum of the datagram b whose
// IPv4 header is hl bytes long.
func transportValid(b []byte, hl int, proto uint8) (valid, udpNone bool) {
	seg := b[hl:]
	src, dst := IPv4(b).Src(), IPv4(b).Dst()
	switch proto {
	case ProtoUDP:
		if len(seg) < UDPSize {
			return false, false
		}
		if UDP(seg).Checksum() == 0 {
			return false, true
		}
		return Checksum(seg, PseudoHeaderSum(src, dst, proto, uint16(len(seg)))) == 0, false
	case ProtoTCP:
		// A "TCP" shorter than its checksum field cannot be fixed.
		if len(seg) < TCPMinSize {
			return false, false
		}
		return Checksum(seg, PseudoHeaderSum(src, dst, proto, uint16(len(seg)))) == 0, false
	case ProtoICMP:
		return len(seg) >= ICMPv4MinSize && Checksum(seg, 0) == 0, false
	}
	return false, false
}

// FuzzRewrite: decode, rewrite source and destination (and the quote's,
// for an ICMP error) to fuzzed endpoints; every checksum that verified
// before still does, a zero UDP checksum stays zero, Parsed equals a
// fresh decode, and nothing past p.Length is touched. Random bytes seldom
// carry valid checksums, so when fix is set every checksum is made valid
// first; then rewriting back must also restore the exact bytes.
func FuzzRewrite(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s, uint32(0x0a000002+i), uint16(i), uint32(0xc0000201), uint16(53), i%2 == 0)
	}
	// To identifier 0: the all-zero echo reply of TestICMPAllZeroEcho.
	f.Add([]byte{
		0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00, // IPv4, 28 bytes, ICMP
		0xc6, 0x33, 0x64, 0x07, 0xcb, 0x00, 0x71, 0x01, // 198.51.100.7 -> 203.0.113.1
		0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x00, // echo reply, identifier 0x1234, sequence 0
	}, uint32(0xc6336407), uint16(0), uint32(0x0a000002), uint16(0), true)
	f.Fuzz(func(t *testing.T, b []byte, srcIP uint32, srcPort uint16, dstIP uint32, dstPort uint16, fix bool) {
		var p Parsed
		p.Decode(b)
		if p.Status != OK {
			return
		}
		if fix {
			copy(b, recompute(t, b))
		}
		var a, c [4]byte
		binary.BigEndian.PutUint32(a[:], srcIP)
		binary.BigEndian.PutUint32(c[:], dstIP)
		src := netip.AddrPortFrom(netip.AddrFrom4(a), srcPort)
		dst := netip.AddrPortFrom(netip.AddrFrom4(c), dstPort)
		orig := bytes.Clone(b)
		p0 := p
		before := checksums(b, &p)

		RewriteSrc(b, &p, src)
		RewriteDst(b, &p, dst)
		if p.InnerOff != 0 {
			RewriteInnerSrc(b, &p, dst)
			RewriteInnerDst(b, &p, src)
		}

		after := checksums(b, &p)
		if before.ip && !after.ip {
			t.Error("IPv4 checksum broken")
		}
		if before.transport && !after.transport {
			t.Error("transport checksum broken")
		}
		if before.udpNone && !after.udpNone {
			t.Error("zero UDP checksum changed")
		}
		if before.innerIP && !after.innerIP {
			t.Error("quoted IPv4 checksum broken")
		}
		if before.innerTransport && !after.innerTransport {
			t.Error("quoted transport checksum broken")
		}
		if before.innerUDPNone && !after.innerUDPNone {
			t.Error("quoted zero UDP checksum changed")
		}
		if !bytes.Equal(b[p.Length:], orig[p.Length:]) {
			t.Error("bytes past the packet changed")
		}
		var fresh Parsed
		fresh.Decode(b)
		if fresh != p {
			t.Fatalf("Parsed out of step:\nkept  %+v\nfresh %+v", p, fresh)
		}

		if p.InnerOff != 0 {
			RewriteInnerDst(b, &p, p0.InnerDst)
			RewriteInnerSrc(b, &p, p0.InnerSrc)
		}
		RewriteDst(b, &p, p0.Dst)
		RewriteSrc(b, &p, p0.Src)
		if p != p0 {
			t.Errorf("Parsed after the round trip %+v, want %+v", p, p0)
		}
		// Exact only from checksums a sender computes: a TCP or ICMP
		// checksum cut off from its data may be a -0 no sender writes,
		// which comes back as +0.
		if fix && !unfixedNegZero(orig, &p0) && !bytes.Equal(b, orig) {
			t.Errorf("round trip:\n got %x\nwant %x", b, orig)
		}
	})
}

// unfixedNegZero reports whether b holds a TCP or ICMP checksum of 0xFFFF
// that recompute leaves alone (in a first fragment, or in a quote), the
// -0 no sender computes for TCP or for ICMP data that is not all zeros.
func unfixedNegZero(b []byte, p *Parsed) bool {
	if p.IsFragment() && p.FragOffset == 0 {
		t := b[p.IPHeaderLen:p.Length]
		if (p.IPProto == ProtoTCP && TCP(t).Checksum() == 0xffff) || (p.IPProto == ProtoICMP && ICMPv4(t).Checksum() == 0xffff) {
			return true
		}
	}
	if p.InnerOff == 0 {
		return false
	}
	t := b[p.InnerOff+p.InnerHeaderLen : p.Length]
	switch p.InnerProto {
	case ProtoTCP:
		return len(t) >= tcpChecksum+2 && TCP(t).Checksum() == 0xffff
	case ProtoICMP:
		return ICMPv4(t).Checksum() == 0xffff
	}
	return false
}

// checkFlow holds Flow to Decode: ok exactly for the packets that
// Decode finds OK with ports, and then the same protocol and endpoints.
func checkFlow(t *testing.T, b []byte, p *Parsed) {
	t.Helper()
	proto, src, dst, ok := Flow(b)
	if ok != p.HasPorts() {
		t.Fatalf("Flow ok = %v, Decode: %v, HasPorts %v", ok, p.Status, p.HasPorts())
	}
	if ok && (proto != p.IPProto || src != p.Src || dst != p.Dst) {
		t.Fatalf("Flow = %d %s -> %s, Decode %d %s -> %s", proto, src, dst, p.IPProto, p.Src, p.Dst)
	}
}

// Flow agrees with Decode on every seed of the fuzz target (and on
// each one cut short), which covers UDP, TCP, ICMP queries and errors,
// options, fragments and the malformed ones.
func TestFlow(t *testing.T) {
	n := 0
	for _, s := range fuzzSeeds() {
		for cut := len(s); cut >= 0 && cut > len(s)-40; cut-- {
			var p Parsed
			p.Decode(s[:cut])
			checkFlow(t, s[:cut], &p)
			if p.HasPorts() {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no seed has ports: the test checks nothing")
	}
	seed := fuzzSeeds()[0]
	if a := testing.AllocsPerRun(100, func() { Flow(seed) }); a > 0 {
		t.Errorf("Flow: %v allocs", a)
	}
}
