// Package offload reads and writes what a TUN device with offloads
// (IFF_VNET_HDR) puts around its packets: the virtio-net header, partial
// checksums, and TCP and UDP super-packets (GSO), which it cuts into
// segments or builds from datagrams. It is the one place gonat parses
// those bytes, through the views of package header; the NAT engine, the
// router and the pcap tap all call it.
//
// It lives beside package tun rather than in it because it is packet
// arithmetic, not device I/O: the engine uses it without depending on
// devices, and tun uses it for the header's size.
package offload

import (
	"encoding/binary"

	"github.com/gonat/gonat/header"
)

// VirtioHdrLen is the size of the virtio-net header (struct
// virtio_net_hdr in linux/virtio_net.h) that a TUN device opened with
// IFF_VNET_HDR puts in front of every packet it reads, and expects in
// front of every packet written to it. It is also the kernel's default
// TUNSETVNETHDRSZ.
const VirtioHdrLen = 10

// Flags of VirtioHdr.Flags (linux/virtio_net.h).
const (
	// VirtioNeedsCsum: the transport checksum is not computed yet. The
	// field at CsumStart+CsumOffset holds the folded pseudo-header sum
	// (not inverted), and whoever delivers the packet on computes the
	// checksum over everything from CsumStart to the end with that field
	// as it is (the kernel's CHECKSUM_PARTIAL).
	VirtioNeedsCsum = 0x01
	// VirtioDataValid: the checksum was verified (CHECKSUM_UNNECESSARY).
	VirtioDataValid = 0x02
)

// Values of VirtioHdr.GSOType (linux/virtio_net.h).
const (
	GSONone  = 0x00 // one packet
	GSOTCPv4 = 0x01 // TCP over IPv4, segmented at GSOSize payload bytes (TSO)
	GSOUDP   = 0x03 // UFO (IP fragmentation); never offered here
	GSOTCPv6 = 0x04
	GSOUDPL4 = 0x05 // UDP segmentation (USO), one datagram per GSOSize bytes
	GSOECN   = 0x80 // flag: the TCP stream has ECN set (TSO_ECN)
)

// VirtioHdr is a decoded virtio-net header: how a packet of a TUN device
// with offloads is to be checksummed and cut into segments. A GSO packet
// (GSOType other than GSONone) is one "super-packet": its IPv4 and
// transport headers are those of the first segment (total length and
// UDP length cover the whole), and the segments are its payload cut
// every GSOSize bytes, each with a copy of the headers.
type VirtioHdr struct {
	Flags   uint8
	GSOType uint8
	// HdrLen is a hint of the header bytes: the kernel reports its
	// linear part here, which may hold more than the headers.
	HdrLen uint16
	// GSOSize is the payload bytes per segment (the MSS for TCP).
	GSOSize uint16
	// CsumStart is where the transport checksum coverage starts, from
	// the first byte of the IP header; CsumOffset is where the checksum
	// field sits from there (16 for TCP, 6 for UDP).
	CsumStart, CsumOffset uint16
}

// Decode reads a header from the first VirtioHdrLen bytes of b. The
// fields are in the host's byte order, as legacy virtio-net on a TUN
// device is (the kernel's tun_is_little_endian is the host's).
func (h *VirtioHdr) Decode(b []byte) {
	_ = b[VirtioHdrLen-1]
	h.Flags = b[0]
	h.GSOType = b[1]
	h.HdrLen = binary.NativeEndian.Uint16(b[2:])
	h.GSOSize = binary.NativeEndian.Uint16(b[4:])
	h.CsumStart = binary.NativeEndian.Uint16(b[6:])
	h.CsumOffset = binary.NativeEndian.Uint16(b[8:])
}

// Encode writes h into the first VirtioHdrLen bytes of b.
func (h *VirtioHdr) Encode(b []byte) {
	_ = b[VirtioHdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
}

// WireSegments returns how many packets super-packet pkt (IPv4, ending
// where pkt does) becomes on the wire and the header bytes each of them
// carries: 1 and 0 for a packet that is not a super-packet or is too
// short to tell, so a counter can count what a link would see.
func (h *VirtioHdr) WireSegments(pkt []byte) (n, hdrLen int) {
	if !h.IsGSO() || h.GSOSize == 0 || len(pkt) < header.IPv4MinSize {
		return 1, 0
	}
	ihl := header.IPv4(pkt).HeaderLen()
	thl, _, ok := transportLayout(pkt, ihl, len(pkt))
	if !ok {
		return 1, 0
	}
	return h.segments(len(pkt) - ihl - thl), ihl + thl
}

// segments is how many segments a payload of n bytes is cut into.
func (h *VirtioHdr) segments(n int) int {
	if !h.IsGSO() || h.GSOSize == 0 || n <= int(h.GSOSize) {
		return 1
	}
	return (n + int(h.GSOSize) - 1) / int(h.GSOSize)
}

// IsGSO reports whether the packet is a super-packet to be segmented.
func (h *VirtioHdr) IsGSO() bool { return h.GSOType != GSONone }

// NeedsCsum reports whether the transport checksum is still partial.
func (h *VirtioHdr) NeedsCsum() bool { return h.Flags&VirtioNeedsCsum != 0 }

// Plain reports whether the packet is complete as it is: one packet with
// its checksums computed, fit for a device without offloads.
func (h *VirtioHdr) Plain() bool { return h.GSOType == GSONone && h.Flags&VirtioNeedsCsum == 0 }
