package offload

import (
	"encoding/binary"

	"github.com/gonat/gonat/header"
)

// PartialCsumOffset checks that h's partial checksum is the UDP or TCP
// checksum of the unfragmented IPv4 packet b, and that a GSO type fits
// the protocol, and returns the checksum field's offset in b.
func (h *VirtioHdr) PartialCsumOffset(b []byte) (int, bool) {
	if !h.NeedsCsum() {
		return 0, false
	}
	ihl, total, ok := ipv4Layout(b)
	if !ok {
		return 0, false
	}
	_, csumOff, ok := transportLayout(b, ihl, total)
	if !ok || int(h.CsumStart) != ihl || int(h.CsumOffset) != csumOff {
		return 0, false
	}
	proto := header.IPv4(b).Protocol()
	switch h.GSOType &^ GSOECN {
	case GSONone:
	case GSOTCPv4:
		if proto != header.ProtoTCP || h.GSOSize == 0 {
			return 0, false
		}
	case GSOUDPL4:
		if proto != header.ProtoUDP || h.GSOSize == 0 || h.GSOType&GSOECN != 0 {
			return 0, false
		}
	default:
		return 0, false
	}
	return ihl + csumOff, true
}

// FinishCsumAt completes a partial checksum wherever h puts it, the way
// the kernel does for a device without checksum offload: the checksum
// of everything from CsumStart on, field included, goes in the field.
// It reports false when that is not within b.
func (h *VirtioHdr) FinishCsumAt(b []byte) bool {
	start, off := int(h.CsumStart), int(h.CsumStart)+int(h.CsumOffset)
	if off+2 > len(b) || start > off {
		return false
	}
	binary.BigEndian.PutUint16(b[off:], header.Checksum(b[start:], 0))
	return true
}

// FinishCsum completes the partial checksum of a packet that is not a
// super-packet (checked by PartialCsumOffset), in place, for a device
// without offloads.
func FinishCsum(b []byte) {
	header.SetTransportChecksum(header.IPv4(b))
}
