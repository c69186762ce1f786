package tuntest

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun"
)

// MSS is a TSO super-packet's GSOSize at MTU 1500.
const MSS = 1448

// TSO builds a TCP super-packet the way the kernel hands one to a TUN
// device with TSO: the headers of the first segment with the total
// length of the whole, a valid IPv4 header checksum, and in the TCP
// checksum field the partial sum (folded pseudo-header sum, not
// inverted) that NEEDS_CSUM means. A payload of at most MSS bytes gives
// a plain packet with a partial checksum.
func TSO(src, dst netip.AddrPort, payload []byte, flags uint8) ([]byte, tun.VirtioHdr) {
	b := make([]byte, 65535)
	n := header.BuildTCP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), TTL: 64, ID: 100, DontFrag: true},
		header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), Seq: 1 << 31, Ack: 7, Flags: flags, Window: 512}, payload)
	b = b[:n]
	MakePartial(b)
	h := tun.VirtioHdr{Flags: tun.VirtioNeedsCsum, CsumStart: 20, CsumOffset: 16}
	if len(payload) > MSS {
		h.GSOType, h.GSOSize, h.HdrLen = tun.GSOTCPv4, MSS, 40
	}
	return b, h
}

// UDPPartial is an IPv4/UDP datagram (identification 1, TTL ttl) with
// the partial checksum a UDP socket leaves to a device with checksum
// offload, and the header that says so.
func UDPPartial(src, dst netip.AddrPort, ttl uint8, payload []byte) ([]byte, tun.VirtioHdr) {
	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), Protocol: header.ProtoUDP, TTL: ttl, ID: 1},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, payload)
	b = b[:n]
	MakePartial(b)
	return b, tun.VirtioHdr{Flags: tun.VirtioNeedsCsum, CsumStart: 20, CsumOffset: 6}
}

// MakePartial replaces the TCP or UDP checksum of IPv4 packet b (no
// options) by the partial sum.
func MakePartial(b []byte) {
	ip := header.IPv4(b)
	off := 16
	if ip.Protocol() == header.ProtoUDP {
		off = 6
	}
	l := len(ip.Payload())
	binary.BigEndian.PutUint16(b[20+off:], header.Fold(header.PseudoHeaderSum(ip.Src(), ip.Dst(), ip.Protocol(), uint16(l))))
}

// DeviceFinish returns a copy of b with its partial checksum completed
// the way the kernel does for CHECKSUM_PARTIAL (skb_checksum_help): the
// checksum of everything from CsumStart on, with the field as it is,
// goes in the field. It is the reference translated partial sums are
// checked against.
func DeviceFinish(b []byte, h tun.VirtioHdr) []byte {
	c := append([]byte(nil), b...)
	at := int(h.CsumStart + h.CsumOffset)
	binary.BigEndian.PutUint16(c[at:], header.Checksum(c[h.CsumStart:], 0))
	return c
}

// ChecksumsValid recomputes every checksum of IPv4 packet b from scratch,
// the embedded ones of an ICMP error included, and says which is wrong.
// The transport checksum of a fragment (it spans all fragments) and a
// zero UDP checksum are not checked.
func ChecksumsValid(b []byte) error {
	var p header.Parsed
	p.Decode(b)
	if p.Status != header.OK {
		return fmt.Errorf("does not decode: %v", p.Status)
	}
	b = b[:p.Length]
	ip := header.IPv4(b)
	if !ip.ChecksumValid() {
		return fmt.Errorf("IPv4 header checksum %#04x invalid", ip.Checksum())
	}
	pl := ip.Payload()
	switch ip.Protocol() {
	case header.ProtoUDP, header.ProtoTCP:
		if p.IsFragment() {
			return nil
		}
		if ip.Protocol() == header.ProtoUDP && binary.BigEndian.Uint16(pl[6:]) == 0 {
			return nil
		}
		if header.Checksum(pl, header.PseudoHeaderSum(ip.Src(), ip.Dst(), ip.Protocol(), uint16(len(pl)))) != 0 {
			return fmt.Errorf("transport checksum invalid")
		}
	case header.ProtoICMP:
		if p.IsFragment() {
			return nil
		}
		if header.Checksum(pl, 0) != 0 {
			return fmt.Errorf("ICMP checksum invalid")
		}
		if p.InnerOff != 0 && !header.InnerIPChecksumValid(b, &p) {
			return fmt.Errorf("embedded IPv4 checksum invalid")
		}
	}
	return nil
}
