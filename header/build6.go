package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6Fields describes the fixed IPv6 header the builders write, with no
// extension headers. Every field is written as given; in particular hop
// limit 0 stays 0.
type IPv6Fields struct {
	Src, Dst netip.Addr // IPv6 only (an IPv4-mapped address is IPv6)
	// NextHeader is used by BuildIPv6; the other builders write their
	// own.
	NextHeader   uint8
	TrafficClass uint8  // DSCP and ECN
	FlowLabel    uint32 // the low 20 bits
	HopLimit     uint8
}

// ipv6Packet checks that a packet of n payload bytes fits in dst and in
// a payload length, and writes its IPv6 header. It returns the packet's
// length, or 0 when it wrote nothing.
func ipv6Packet(dst []byte, f *IPv6Fields, next uint8, n int) int {
	total := IPv6Size + n
	if total > len(dst) || n > 0xffff || !f.Src.Is6() || !f.Dst.Is6() {
		return 0
	}
	h := IPv6(dst[:IPv6Size])
	binary.BigEndian.PutUint32(h[ip6VersTCFlow:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	h.SetPayloadLen(uint16(n))
	h[ip6NextHeader] = next
	h[ip6HopLimit] = f.HopLimit
	h.SetSrc(f.Src)
	h.SetDst(f.Dst)
	return total
}

// BuildIPv6 writes an IPv6 packet with next header ip.NextHeader and the
// given payload (taken as is: extension and upper-layer headers are the
// caller's) into dst and returns its length: 0 if dst is too small, the
// payload exceeds 65535 bytes, or an address is not IPv6.
func BuildIPv6(dst []byte, ip IPv6Fields, payload []byte) int {
	n := ipv6Packet(dst, &ip, ip.NextHeader, len(payload))
	if n == 0 {
		return 0
	}
	copy(dst[IPv6Size:n], payload)
	return n
}

// BuildUDP6 writes an IPv6/UDP packet with a valid checksum into dst and
// returns its length, or 0 as BuildIPv6 does. A computed checksum of 0 is
// sent as 0xFFFF (RFC 8200 section 8.1).
func BuildUDP6(dst []byte, ip IPv6Fields, u UDPFields, payload []byte) int {
	n := ipv6Packet(dst, &ip, ProtoUDP, UDPSize+len(payload))
	if n == 0 {
		return 0
	}
	t := UDP(dst[IPv6Size:n])
	t.SetSrcPort(u.SrcPort)
	t.SetDstPort(u.DstPort)
	t.SetLength(uint16(len(t)))
	t.SetChecksum(0)
	copy(t[UDPSize:], payload)
	t.SetChecksum(udpChecksumFix(Checksum(t, PseudoHeaderSum6(ip.Src, ip.Dst, ProtoUDP, uint32(len(t))))))
	return n
}

// BuildTCP6 writes an IPv6/TCP packet with a valid checksum into dst and
// returns its length, or 0 as BuildIPv6 does. The TCP header is 20
// bytes, as BuildTCP's.
func BuildTCP6(dst []byte, ip IPv6Fields, tf TCPFields, payload []byte) int {
	n := ipv6Packet(dst, &ip, ProtoTCP, TCPMinSize+len(payload))
	if n == 0 {
		return 0
	}
	t := TCP(dst[IPv6Size:n])
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
	t.SetChecksum(Checksum(t, PseudoHeaderSum6(ip.Src, ip.Dst, ProtoTCP, uint32(len(t)))))
	return n
}

// BuildICMPv6 writes an IPv6/ICMPv6 packet with a valid checksum into
// dst and returns its length, or 0 as BuildIPv6 does. ic.Ident and
// ic.Seq fill bytes 4-7 whatever the type.
func BuildICMPv6(dst []byte, ip IPv6Fields, ic ICMPFields, payload []byte) int {
	n := ipv6Packet(dst, &ip, ProtoICMPv6, ICMPv6MinSize+len(payload))
	if n == 0 {
		return 0
	}
	writeICMPv6(dst[:n], ic.Type, ic.Code, uint32(ic.Ident)<<16|uint32(ic.Seq), payload)
	return n
}

// writeICMPv6 fills the ICMPv6 message after the fixed header of IPv6
// packet pkt, whose length is 48 plus len(payload); payload may already
// be in place.
func writeICMPv6(pkt []byte, typ, code uint8, rest uint32, payload []byte) {
	m := ICMPv6(pkt[IPv6Size:])
	m[icmpType] = typ
	m[icmpCode] = code
	m.SetChecksum(0)
	binary.BigEndian.PutUint32(m[icmpIdent:], rest)
	copy(m[ICMPv6MinSize:], payload)
	ip := IPv6(pkt)
	m.SetChecksum(Checksum(m, PseudoHeaderSum6(ip.Src(), ip.Dst(), ProtoICMPv6, uint32(len(m)))))
}

// Limits of an ICMPv6 error (RFC 4443 section 2.4(c): quote as much as
// fits without the error exceeding the minimum MTU).
const (
	icmpv6ErrorMaxQuote = IPv6MinMTU - IPv6Size - ICMPv6MinSize
	icmpv6ErrorHopLimit = 64
	icmpv6Redirect      = 137 // RFC 4861 section 4.5
)

// BuildICMPv6Error writes into dst an ICMPv6 error of type typ and code
// code about packet orig, sent from src to orig's source, and returns
// its length. The error quotes as much of orig as keeps it within 1280
// bytes (RFC 4443 section 2.4(c)), or within dst if that is smaller, but
// never less than orig's headers and 8 bytes of its upper layer. param
// fills bytes 4-7: the MTU of Packet Too Big, the pointer of Parameter
// Problem, 0 for the others. The error has hop limit 64, traffic class 0
// and flow label 0.
//
// It returns 0, writing nothing, when orig must not be answered with an
// error (RFC 4443 section 2.4(e)): orig is itself an ICMPv6 error or a
// redirect, or was sent to a multicast address (unless the error is
// Packet Too Big or Parameter Problem code 2), or from an address that
// does not name one host (unspecified, loopback, multicast). It also
// returns 0 when orig's fixed header is not whole (Truncated,
// BadVersion, BadPayloadLen), src is not IPv6, or dst cannot hold the
// minimum quote. A later fragment may be answered (Packet Too Big is
// owed to any fragment too large for the next link).
//
// dst may overlap orig. It does not allocate.
func BuildICMPv6Error(dst []byte, orig []byte, src netip.Addr, typ, code uint8, param uint32) int {
	var p ParsedV6
	p.Decode(orig)
	switch p.Status {
	case Truncated, BadVersion, BadPayloadLen:
		return 0
	}
	if !src.Is6() {
		return 0
	}
	if p.Proto == ProtoICMPv6 && p.FragOffset == 0 &&
		(p.Status == BadTransport || IsICMPv6Error(p.ICMPType) || p.ICMPType == icmpv6Redirect || p.Status == BadInner) {
		return 0
	}
	to := p.Src.Addr()
	if to.IsUnspecified() || to.IsLoopback() || to.IsMulticast() {
		return 0
	}
	if p.Dst.Addr().IsMulticast() && typ != ICMPv6PacketTooBig && (typ != ICMPv6ParamProblem || code != 2) {
		return 0
	}
	need := IPv6Size
	if p.Status == OK {
		need = p.TransportOff + 8
	}
	q := min(p.Length, icmpv6ErrorMaxQuote, len(dst)-IPv6Size-ICMPv6MinSize)
	if q < min(p.Length, need) {
		return 0
	}
	off := IPv6Size + ICMPv6MinSize
	copy(dst[off:off+q], orig[:q])
	ip := IPv6Fields{Src: src, Dst: to, HopLimit: icmpv6ErrorHopLimit}
	n := ipv6Packet(dst, &ip, ProtoICMPv6, ICMPv6MinSize+q)
	writeICMPv6(dst[:n], typ, code, param, nil)
	return n
}
