package offload

import "github.com/gonat/gonat/header"

// layout is where the headers of an IPv4 packet carrying TCP or UDP end.
type layout struct {
	ihl, total int // IPv4 header length, total length
	thl        int // transport header length
	csumOff    int // the transport checksum field's offset in its header
	proto      uint8
}

// hdrLen is the IPv4 and transport header bytes.
func (l layout) hdrLen() int { return l.ihl + l.thl }

// layoutOf reads the layout of b: a whole, unfragmented IPv4 packet
// within b, carrying TCP or UDP with its transport header inside the
// total length.
func layoutOf(b []byte) (l layout, ok bool) {
	if l.ihl, l.total, ok = ipv4Layout(b); !ok {
		return l, false
	}
	l.proto = header.IPv4(b).Protocol()
	l.thl, l.csumOff, ok = transportLayout(b, l.ihl, l.total)
	return l, ok
}

// ipv4Layout reads the header length and total length of b, and checks
// that it is a whole, unfragmented IPv4 packet within b.
func ipv4Layout(b []byte) (ihl, total int, ok bool) {
	if len(b) < header.IPv4MinSize {
		return 0, 0, false
	}
	ip := header.IPv4(b)
	ihl, total = ip.HeaderLen(), int(ip.TotalLen())
	return ihl, total, ip.Version() == 4 && ihl >= header.IPv4MinSize && total >= ihl && total <= len(b) && !ip.IsFragment()
}

// transportLayout returns the transport header length of a TCP or UDP
// packet b[:total] whose IPv4 header is ihl bytes, and the checksum
// field's offset in that header.
func transportLayout(b []byte, ihl, total int) (thl, csumOff int, ok bool) {
	switch header.IPv4(b).Protocol() {
	case header.ProtoTCP:
		if total < ihl+header.TCPMinSize {
			return 0, 0, false
		}
		thl = header.TCP(b[ihl:total]).DataOffset()
		if thl < header.TCPMinSize || ihl+thl > total {
			return 0, 0, false
		}
		return thl, header.TCPChecksumOffset, true
	case header.ProtoUDP:
		if total < ihl+header.UDPSize {
			return 0, 0, false
		}
		return header.UDPSize, header.UDPChecksumOffset, true
	}
	return 0, 0, false
}
