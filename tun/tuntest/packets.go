package tuntest

import (
	"net/netip"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun"
)

// UDP returns an IPv4/UDP packet from src to dst with valid checksums,
// TTL 64.
func UDP(src, dst netip.AddrPort, payload []byte) []byte {
	return UDPWithTTL(src, dst, 64, payload)
}

// UDPWithTTL is UDP with the given TTL.
func UDPWithTTL(src, dst netip.AddrPort, ttl uint8, payload []byte) []byte {
	b := make([]byte, header.IPv4MinSize+header.UDPSize+len(payload))
	f := ipv4(src.Addr(), dst.Addr())
	f.TTL = ttl
	n := header.BuildUDP(b, f, header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, payload)
	return b[:n]
}

// TCP returns an IPv4/TCP segment from src to dst with the given flags
// (header.TCPSyn, ...) and valid checksums, TTL 64.
func TCP(src, dst netip.AddrPort, flags uint8, payload []byte) []byte {
	b := make([]byte, header.IPv4MinSize+header.TCPMinSize+len(payload))
	n := header.BuildTCP(b, ipv4(src.Addr(), dst.Addr()),
		header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), Flags: flags, Window: 65535}, payload)
	return b[:n]
}

func ipv4(src, dst netip.Addr) header.IPv4Fields {
	return header.IPv4Fields{Src: src, Dst: dst, TTL: 64}
}

// WithVirtioHdr returns pkt behind the virtio-net header h, the form a
// VirtioChannel takes on In and gives on Out.
func WithVirtioHdr(h tun.VirtioHdr, pkt []byte) []byte {
	b := make([]byte, tun.VirtioHdrLen+len(pkt))
	h.Encode(b)
	copy(b[tun.VirtioHdrLen:], pkt)
	return b
}
