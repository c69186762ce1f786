package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4Fields describes the IPv4 header the builders write: a 20-byte
// header without options, with a valid checksum. Every field is written
// as given; in particular TTL 0 stays 0.
type IPv4Fields struct {
	Src, Dst netip.Addr // IPv4 only
	// Protocol is used by BuildIPv4; the other builders write their own.
	Protocol  uint8
	TOS       uint8 // DSCP and ECN
	TTL       uint8
	ID        uint16
	DontFrag  bool
	MoreFrags bool
	// FragOffset is in bytes; its low 3 bits are dropped (the field
	// counts 8-byte units).
	FragOffset uint16
}

// UDPFields describes the UDP header BuildUDP writes; length and checksum
// are computed.
type UDPFields struct {
	SrcPort, DstPort uint16
}

// TCPFields describes the TCP header BuildTCP writes: 20 bytes, no
// options, urgent pointer 0; the checksum is computed.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
}

// ICMPFields describes the ICMP header BuildICMP writes; the checksum is
// computed. Ident and Seq fill bytes 4-7 whatever the type, so an error
// takes its next-hop MTU (type 3 code 4) in Seq.
type ICMPFields struct {
	Type, Code uint8
	Ident, Seq uint16
}

// is4 reports whether a can be written as an IPv4 address.
func is4(a netip.Addr) bool { return a.Is4() || a.Is4In6() }

// ipv4Packet checks that a packet of n payload bytes fits in dst and in
// an IPv4 total length, and writes its IPv4 header. It returns the total
// length, or 0 when it wrote nothing.
func ipv4Packet(dst []byte, f *IPv4Fields, proto uint8, n int) int {
	total := IPv4MinSize + n
	if total > len(dst) || total > 0xffff || !is4(f.Src) || !is4(f.Dst) {
		return 0
	}
	h := dst[:IPv4MinSize]
	h[ipVersIHL] = 4<<4 | IPv4MinSize>>2
	h[ipTOS] = f.TOS
	binary.BigEndian.PutUint16(h[ipTotalLen:], uint16(total))
	binary.BigEndian.PutUint16(h[ipID:], f.ID)
	frag := f.FragOffset >> 3
	if f.DontFrag {
		frag |= ipFlagDF
	}
	if f.MoreFrags {
		frag |= ipFlagMF
	}
	binary.BigEndian.PutUint16(h[ipFlagsFrag:], frag)
	h[ipTTL] = f.TTL
	h[ipProtocol] = proto
	IPv4(h).SetChecksum(0)
	IPv4(h).SetSrc(f.Src)
	IPv4(h).SetDst(f.Dst)
	IPv4(h).SetChecksum(IPv4(h).ComputeChecksum())
	return total
}

// BuildIPv4 writes an IPv4 packet with protocol ip.Protocol and the given
// payload (taken as is: any transport header is the caller's) into dst
// and returns its length: 0 if dst is too small, the packet would exceed
// 65535 bytes, or an address is not IPv4. Tests use it for fragments and
// unknown protocols.
func BuildIPv4(dst []byte, ip IPv4Fields, payload []byte) int {
	n := ipv4Packet(dst, &ip, ip.Protocol, len(payload))
	if n == 0 {
		return 0
	}
	copy(dst[IPv4MinSize:n], payload)
	return n
}

// BuildUDP writes an IPv4/UDP packet with valid checksums into dst and
// returns its length, or 0 as BuildIPv4 does. A computed UDP checksum of
// 0 is sent as 0xFFFF (RFC 768).
func BuildUDP(dst []byte, ip IPv4Fields, u UDPFields, payload []byte) int {
	n := ipv4Packet(dst, &ip, ProtoUDP, UDPSize+len(payload))
	if n == 0 {
		return 0
	}
	t := UDP(dst[IPv4MinSize:n])
	t.SetSrcPort(u.SrcPort)
	t.SetDstPort(u.DstPort)
	t.SetLength(uint16(len(t)))
	t.SetChecksum(0)
	copy(t[UDPSize:], payload)
	t.SetChecksum(udpChecksumFix(Checksum(t, PseudoHeaderSum(ip.Src, ip.Dst, ProtoUDP, uint16(len(t))))))
	return n
}

// BuildTCP writes an IPv4/TCP packet with valid checksums into dst and
// returns its length, or 0 as BuildIPv4 does.
func BuildTCP(dst []byte, ip IPv4Fields, tf TCPFields, payload []byte) int {
	n := ipv4Packet(dst, &ip, ProtoTCP, TCPMinSize+len(payload))
	if n == 0 {
		return 0
	}
	t := TCP(dst[IPv4MinSize:n])
	t.SetSrcPort(tf.SrcPort)
	t.SetDstPort(tf.DstPort)
	binary.BigEndian.PutUint32(t[tcpSeq:], tf.Seq)
	binary.BigEndian.PutUint32(t[tcpAck:], tf.Ack)
	t[tcpDataOffset] = TCPMinSize >> 2 << 4
	t[tcpFlags] = tf.Flags
	binary.BigEndian.PutUint16(t[tcpWindow:], tf.Window)
	t.SetChecksum(0)
	binary.BigEndian.PutUint16(t[18:], 0) // urgent pointer
	copy(t[TCPMinSize:], payload)
	t.SetChecksum(Checksum(t, PseudoHeaderSum(ip.Src, ip.Dst, ProtoTCP, uint16(len(t)))))
	return n
}

// BuildICMP writes an IPv4/ICMP packet with valid checksums into dst and
// returns its length, or 0 as BuildIPv4 does.
func BuildICMP(dst []byte, ip IPv4Fields, ic ICMPFields, payload []byte) int {
	n := ipv4Packet(dst, &ip, ProtoICMP, ICMPv4MinSize+len(payload))
	if n == 0 {
		return 0
	}
	writeICMP(ICMPv4(dst[IPv4MinSize:n]), ic, payload)
	return n
}

// writeICMP fills m, whose length is 8 plus len(payload); payload may
// already be in place.
func writeICMP(m ICMPv4, ic ICMPFields, payload []byte) {
	m[icmpType] = ic.Type
	m[icmpCode] = ic.Code
	m.SetChecksum(0)
	m.SetIdent(ic.Ident)
	binary.BigEndian.PutUint16(m[icmpSeq:], ic.Seq)
	copy(m[ICMPv4MinSize:], payload)
	m.SetChecksum(Checksum(m, 0))
}

// Limits of an ICMP error (RFC 1812 section 4.3.2.3: quote as much as
// fits without the error exceeding 576 bytes).
const (
	icmpErrorMaxLen   = 576
	icmpErrorMaxQuote = icmpErrorMaxLen - IPv4MinSize - ICMPv4MinSize
	icmpErrorTTL      = 64
)

// BuildICMPError writes into dst an ICMP error of type typ and code code
// about packet orig, sent from src to orig's source, and returns its
// length. The error quotes orig's IPv4 header and as much of the rest as
// keeps it within 576 bytes (RFC 1812 section 4.3.2.3), or within dst if
// that is smaller, but never less than the header and 8 bytes (RFC 792).
// mtu is the next-hop MTU of type 3 code 4 (RFC 1191); for type 12 its
// low byte is the pointer to the bad octet (RFC 792). The error has TTL
// 64, TOS 0xC0, DF clear, and orig's identification.
//
// It returns 0, writing nothing, when orig must not be answered with an
// error (RFC 1122 section 3.2.2, RFC 1812 section 4.3.2.7): orig is
// itself an ICMP error (types 3, 4, 5, 11, 12), a fragment other than
// the first, addressed to a broadcast or multicast address, or from an
// address that does not name one host (0.0.0.0/8, loopback, multicast,
// class E, broadcast). It also returns 0 when orig does not decode OK,
// src is not IPv4, or dst cannot hold the minimum quote.
//
// dst may overlap orig. It does not allocate.
func BuildICMPError(dst []byte, orig []byte, src netip.Addr, typ, code uint8, mtu uint16) int {
	var p Parsed
	p.Decode(orig)
	if p.Status != OK || p.FragOffset != 0 || !is4(src) {
		return 0
	}
	if p.IPProto == ProtoICMP && isAnyICMPError(p.ICMPType) {
		return 0
	}
	to := p.Src.Addr()
	if !singleHost(to) || p.Dst.Addr().IsMulticast() || p.Dst.Addr() == limitedBroadcast {
		return 0
	}
	q := min(p.Length, icmpErrorMaxQuote, len(dst)-IPv4MinSize-ICMPv4MinSize)
	if q < min(p.Length, p.IPHeaderLen+8) {
		return 0
	}
	off := IPv4MinSize + ICMPv4MinSize
	copy(dst[off:off+q], orig[:q])
	// Precedence 6, Internetwork Control (RFC 1812 section 4.3.2.5), as
	// Linux sends its errors; DSCP CS6 in today's terms.
	ip := IPv4Fields{Src: src, Dst: to, TOS: 0xc0, TTL: icmpErrorTTL, ID: p.ID}
	n := ipv4Packet(dst, &ip, ProtoICMP, ICMPv4MinSize+q)
	ic := ICMPFields{Type: typ, Code: code}
	switch {
	case typ == ICMPDestUnreachable && code == ICMPCodeFragNeeded:
		ic.Seq = mtu
	case typ == ICMPParamProblem:
		ic.Ident = uint16(uint8(mtu)) << 8
	}
	writeICMP(ICMPv4(dst[IPv4MinSize:n]), ic, nil)
	return n
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// singleHost reports whether a, an IPv4 address, can be the source of a
// packet that gets an ICMP error (RFC 1122 section 3.2.2): not in
// 0.0.0.0/8 ("this network"), loopback, multicast, or class E
// 240.0.0.0/4 (which holds the limited broadcast address).
func singleHost(a netip.Addr) bool {
	b := a.As4()
	return b[0] != 0 && !a.IsLoopback() && !a.IsMulticast() && b[0] < 240
}

// Fragments splits the IPv4 datagram whole into fragments carrying size
// bytes of its payload each (size is rounded down to a multiple of 8, as
// RFC 791 offsets count 8-byte units), in order, each a new slice with a
// valid header checksum. For building test traffic: it allocates.
func Fragments(whole []byte, size int) [][]byte {
	size &^= 7
	ip := IPv4(whole)
	if len(whole) < IPv4MinSize || size <= 0 {
		return nil
	}
	hl := ip.HeaderLen()
	pl := whole[hl:ip.TotalLen()]
	var out [][]byte
	for off := 0; off < len(pl); off += size {
		end := min(off+size, len(pl))
		f := make([]byte, hl+end-off)
		copy(f, whole[:hl])
		copy(f[hl:], pl[off:end])
		fi := IPv4(f)
		fi.SetTotalLen(uint16(len(f)))
		flags := uint16(off / 8)
		if end < len(pl) {
			flags |= 0x2000 // more fragments
		}
		binary.BigEndian.PutUint16(f[6:], flags)
		fi.SetChecksum(0)
		fi.SetChecksum(fi.ComputeChecksum())
		out = append(out, f)
	}
	return out
}
