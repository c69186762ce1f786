package header

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"net/netip"
	"testing"
)

// Documentation addresses: 10.0.0.0/8 inside; RFC 5737's three test
// networks outside.
var outsideNets = [...][3]byte{{192, 0, 2}, {198, 51, 100}, {203, 0, 113}}

// refSum is the textbook RFC 1071 sum, one 16-bit word at a time, folded:
// the reference Sum is checked against.
func refSum(b []byte) uint16 {
	var s uint64
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// gen makes random, valid packets from a fixed seed.
type gen struct{ *rand.Rand }

func newGen(seed int64) gen { return gen{rand.New(rand.NewSource(seed))} }

func (g gen) addr() netip.Addr {
	if g.Intn(3) == 0 {
		return netip.AddrFrom4([4]byte{10, byte(g.Intn(256)), byte(g.Intn(256)), byte(1 + g.Intn(254))})
	}
	n := outsideNets[g.Intn(len(outsideNets))]
	return netip.AddrFrom4([4]byte{n[0], n[1], n[2], byte(1 + g.Intn(254))})
}

// port is random, with the edge values 0, 1 and 0xFFFF now and then.
func (g gen) port() uint16 {
	switch g.Intn(16) {
	case 0:
		return 0
	case 1:
		return 0xffff
	case 2:
		return 1
	}
	return uint16(g.Intn(0x10000))
}

func (g gen) addrPort() netip.AddrPort { return netip.AddrPortFrom(g.addr(), g.port()) }

func (g gen) bytes(n int) []byte {
	b := make([]byte, n)
	g.Read(b)
	return b
}

// payloadLen is mostly small, sometimes odd, sometimes large.
func (g gen) payloadLen() int {
	switch g.Intn(8) {
	case 0:
		return 0
	case 1:
		return 500 + g.Intn(1000)
	}
	return g.Intn(64)
}

func (g gen) ipFields() IPv4Fields {
	return IPv4Fields{
		Src:      g.addr(),
		Dst:      g.addr(),
		TTL:      uint8(1 + g.Intn(255)),
		ID:       uint16(g.Intn(0x10000)),
		DontFrag: g.Intn(2) == 0,
	}
}

func (g gen) udp(zeroChecksum bool) []byte {
	buf := make([]byte, 2000)
	n := BuildUDP(buf, g.ipFields(), UDPFields{SrcPort: g.port(), DstPort: g.port()}, g.bytes(g.payloadLen()))
	pkt := buf[:n]
	if zeroChecksum {
		UDP(pkt[IPv4MinSize:]).SetChecksum(0)
	}
	return pkt
}

func (g gen) tcp() []byte {
	buf := make([]byte, 2000)
	tf := TCPFields{
		SrcPort: g.port(), DstPort: g.port(),
		Seq: g.Uint32(), Ack: g.Uint32(),
		Flags: uint8(g.Intn(0x40)), Window: uint16(g.Intn(0x10000)),
	}
	return buf[:BuildTCP(buf, g.ipFields(), tf, g.bytes(g.payloadLen()))]
}

func (g gen) icmpQuery() []byte {
	buf := make([]byte, 2000)
	types := [...]uint8{ICMPEchoRequest, ICMPEchoReply, ICMPTimestamp, ICMPTimestampReply}
	ic := ICMPFields{Type: types[g.Intn(len(types))], Ident: g.port(), Seq: uint16(g.Intn(0x10000))}
	return buf[:BuildICMP(buf, g.ipFields(), ic, g.bytes(g.payloadLen()))]
}

// withIPOptions returns pkt with words 4-byte words of options (NOPs,
// which gopacket accepts; nothing here interprets them) after its 20-byte
// header, and the header fields and checksum fixed.
func withIPOptions(pkt []byte, words int) []byte {
	out := make([]byte, 0, len(pkt)+4*words)
	out = append(out, pkt[:IPv4MinSize]...)
	out = append(out, bytes.Repeat([]byte{1}, 4*words)...)
	out = append(out, pkt[IPv4MinSize:]...)
	ip := IPv4(out)
	ip[0] = 4<<4 | byte(5+words)
	ip.SetTotalLen(uint16(len(out)))
	ip.SetChecksum(ip.ComputeChecksum())
	return out
}

// maybeOptions gives one packet in four IP options.
func (g gen) maybeOptions(pkt []byte) []byte {
	if g.Intn(4) == 0 {
		return withIPOptions(pkt, 1+g.Intn(10))
	}
	return pkt
}

// transport is a random UDP (one in eight without checksum), TCP or ICMP
// query packet.
func (g gen) transport() []byte {
	switch g.Intn(3) {
	case 0:
		return g.maybeOptions(g.udp(g.Intn(8) == 0))
	case 1:
		return g.maybeOptions(g.tcp())
	}
	return g.maybeOptions(g.icmpQuery())
}

// icmpError returns an ICMP error quoting orig, a random transport packet,
// and orig: the quote is the header and 8 bytes, or more, up to all of
// orig or 548 bytes (RFC 1812's 576-byte limit).
func (g gen) icmpError() (pkt, orig []byte) {
	orig = g.transport()
	hl := IPv4(orig).HeaderLen()
	maxq := min(len(orig), 548)
	q := hl + 8
	switch g.Intn(3) {
	case 0:
		q = maxq
	case 1:
		q += g.Intn(maxq - q + 1)
	}
	types := [...][2]uint8{
		{ICMPDestUnreachable, ICMPCodePortUnreachable},
		{ICMPDestUnreachable, ICMPCodeFragNeeded},
		{ICMPDestUnreachable, ICMPCodeAdminProhibited},
		{ICMPTimeExceeded, 0},
		{ICMPParamProblem, 0},
	}
	t := types[g.Intn(len(types))]
	buf := make([]byte, 2000)
	ip := g.ipFields()
	ip.Dst = IPv4(orig).Src()
	n := BuildICMP(buf, ip, ICMPFields{Type: t[0], Code: t[1], Seq: uint16(g.Intn(0x10000))}, orig[:q])
	return g.maybeOptions(buf[:n]), orig
}

// packet is any of the above.
func (g gen) packet() []byte {
	if g.Intn(4) == 0 {
		p, _ := g.icmpError()
		return p
	}
	return g.transport()
}

// recompute returns a copy of pkt with every checksum that Decode can
// locate computed afresh, the way a sender computes it: the IPv4 header
// checksum; for ICMP errors the quoted IPv4 header checksum and the quoted
// transport checksum when the whole quoted datagram is there; for
// unfragmented packets the transport checksum (a zero UDP checksum left
// alone), ICMP's last as it covers the quote. The incremental updates must give exactly this.
func recompute(t testing.TB, pkt []byte) []byte {
	t.Helper()
	b := bytes.Clone(pkt)
	var p Parsed
	p.Decode(b)
	if p.Status != OK {
		t.Fatalf("recompute: %v", p.Status)
	}
	IPv4(b).SetChecksum(IPv4(b).ComputeChecksum())
	if p.InnerOff != 0 {
		q := b[p.InnerOff:p.Length]
		IPv4(q).SetChecksum(IPv4(q).ComputeChecksum())
		if tl, whole := wholeQuote(q, &p); whole {
			recomputeTransport(q[:tl], p.InnerHeaderLen, p.InnerProto)
		}
	}
	if !p.IsFragment() {
		recomputeTransport(b[:p.Length], p.IPHeaderLen, p.IPProto)
	}
	return b
}

// wholeQuote reports whether quote q holds all of the quoted datagram, and
// that datagram's length: its checksum can then be computed.
func wholeQuote(q []byte, p *Parsed) (int, bool) {
	tl := int(IPv4(q).TotalLen())
	return tl, tl <= len(q) && tl >= p.InnerHeaderLen && !IPv4(q).MoreFragments()
}

// recomputeTransport computes the UDP, TCP or ICMP checksum of the whole
// datagram b whose header is hl bytes, if it is long enough to have one.
func recomputeTransport(b []byte, hl int, proto uint8) {
	seg := b[hl:]
	src, dst := IPv4(b).Src(), IPv4(b).Dst()
	switch proto {
	case ProtoUDP:
		if len(seg) >= UDPSize && UDP(seg).Checksum() != 0 {
			UDP(seg).SetChecksum(0)
			UDP(seg).SetChecksum(udpChecksumFix(Checksum(seg, PseudoHeaderSum(src, dst, ProtoUDP, uint16(len(seg))))))
		}
	case ProtoTCP:
		if len(seg) >= TCPMinSize {
			TCP(seg).SetChecksum(0)
			TCP(seg).SetChecksum(Checksum(seg, PseudoHeaderSum(src, dst, ProtoTCP, uint16(len(seg)))))
		}
	case ProtoICMP:
		if len(seg) >= ICMPv4MinSize {
			ICMPv4(seg).SetChecksum(0)
			ICMPv4(seg).SetChecksum(Checksum(seg, 0))
		}
	}
}

// fragment splits an unfragmented packet at payload offset cut (a multiple
// of 8) into two fragments, as a router would (RFC 791).
func fragment(pkt []byte, cut int) (first, second []byte) {
	hl := IPv4(pkt).HeaderLen()
	first = bytes.Clone(pkt[:hl+cut])
	binary.BigEndian.PutUint16(first[ipFlagsFrag:], ipFlagMF)
	IPv4(first).SetTotalLen(uint16(len(first)))
	IPv4(first).SetChecksum(IPv4(first).ComputeChecksum())
	second = append(bytes.Clone(pkt[:hl]), pkt[hl+cut:]...)
	binary.BigEndian.PutUint16(second[ipFlagsFrag:], uint16(cut>>3))
	IPv4(second).SetTotalLen(uint16(len(second)))
	IPv4(second).SetChecksum(IPv4(second).ComputeChecksum())
	return first, second
}

// decode is Decode as an expression.
func decode(b []byte) Parsed {
	var p Parsed
	p.Decode(b)
	return p
}
