package header

import "encoding/binary"

// ICMPv4 message types the NAT reads or generates (RFC 792).
const (
	ICMPEchoReply       = 0
	ICMPDestUnreachable = 3
	ICMPSourceQuench    = 4 // deprecated (RFC 6633); not an IsICMPError
	ICMPRedirect        = 5 // not an IsICMPError: never translated
	ICMPEchoRequest     = 8
	ICMPTimeExceeded    = 11
	ICMPParamProblem    = 12
	ICMPTimestamp       = 13
	ICMPTimestampReply  = 14
)

// ICMPv4 Destination Unreachable codes (RFC 792, RFC 1812 section
// 5.2.7.1).
const (
	ICMPCodeNetUnreachable  = 0
	ICMPCodeHostUnreachable = 1
	ICMPCodePortUnreachable = 3
	// ICMPCodeFragNeeded is "fragmentation needed and DF set", with the
	// next-hop MTU in bytes 6-7 (RFC 1191 section 4).
	ICMPCodeFragNeeded = 4
	// ICMPCodeAdminProhibited is "communication administratively
	// prohibited"; a NAT out of ports says so (RFC 5508 REQ-8).
	ICMPCodeAdminProhibited = 13
)

// TCP flags (RFC 9293 section 3.1), the low byte of TCP's flags field.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
	TCPEce = 0x40 // RFC 3168
	TCPCwr = 0x80 // RFC 3168
)

// Where the checksum field sits in a UDP and in a TCP header: what a
// virtio-net header's checksum offset says for each.
const (
	UDPChecksumOffset = udpChecksum
	TCPChecksumOffset = tcpChecksum
)

// IsICMPError reports whether typ is an ICMP error that the NAT
// translates: Destination Unreachable, Time Exceeded and Parameter
// Problem (RFC 5508 section 4). They quote the packet they are about, and
// Decode reads that quote. Source Quench (deprecated, RFC 6633) and
// Redirect (about the sender's own link) are errors too (RFC 1122
// section 3.2.2) but have no business crossing a NAT, so they are left
// out here; BuildICMPError still counts them as errors.
func IsICMPError(typ uint8) bool {
	return typ == ICMPDestUnreachable || typ == ICMPTimeExceeded || typ == ICMPParamProblem
}

// isAnyICMPError is IsICMPError plus the errors the NAT does not
// translate: the set RFC 1122 section 3.2.2 forbids answering with an
// error.
func isAnyICMPError(typ uint8) bool {
	return IsICMPError(typ) || typ == ICMPSourceQuench || typ == ICMPRedirect
}

// IsICMPQuery reports whether typ is an ICMP query the NAT maps by its
// identifier field (RFC 5508 section 3, RFC 792): echo and timestamp,
// requests and replies. The obsolete information and address mask
// messages (RFC 6918) are left out.
func IsICMPQuery(typ uint8) bool {
	switch typ {
	case ICMPEchoReply, ICMPEchoRequest, ICMPTimestamp, ICMPTimestampReply:
		return true
	}
	return false
}

// Transport field offsets.
const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6

	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpSeq        = 4
	tcpAck        = 8
	tcpDataOffset = 12
	tcpFlags      = 13
	tcpWindow     = 14
	tcpChecksum   = 16

	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpIdent    = 4
	icmpSeq      = 6
	icmpMTU      = 6
)

// UDP is a view of a UDP header and its payload (RFC 768).
type UDP []byte

// SrcPort is the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort:]) }

// DstPort is the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort:]) }

// Length is the length field: header plus data, in bytes.
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength:]) }

// Checksum is the checksum field; 0 means the sender computed none.
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// SetSrcPort sets the source port without fixing the checksum.
func (b UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(b[udpSrcPort:], p) }

// SetDstPort sets the destination port without fixing the checksum.
func (b UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(b[udpDstPort:], p) }

// SetLength sets the length field without fixing the checksum.
func (b UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(b[udpLength:], n) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[udpChecksum:], c) }

// TCP is a view of a TCP header and its payload (RFC 9293 section 3.1).
type TCP []byte

// SrcPort is the source port.
func (b TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[tcpSrcPort:]) }

// DstPort is the destination port.
func (b TCP) DstPort() uint16 { return binary.BigEndian.Uint16(b[tcpDstPort:]) }

// Seq is the sequence number.
func (b TCP) Seq() uint32 { return binary.BigEndian.Uint32(b[tcpSeq:]) }

// Ack is the acknowledgment number.
func (b TCP) Ack() uint32 { return binary.BigEndian.Uint32(b[tcpAck:]) }

// DataOffset is the header length in bytes, options included.
func (b TCP) DataOffset() int { return int(b[tcpDataOffset]>>4) << 2 }

// Flags is the flags byte: TCPFin, TCPSyn and so on (plus ECE 0x40 and
// CWR 0x80, RFC 3168).
func (b TCP) Flags() uint8 { return b[tcpFlags] }

// Window is the receive window, unscaled.
func (b TCP) Window() uint16 { return binary.BigEndian.Uint16(b[tcpWindow:]) }

// Checksum is the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[tcpChecksum:]) }

// SetSrcPort sets the source port without fixing the checksum.
func (b TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(b[tcpSrcPort:], p) }

// SetDstPort sets the destination port without fixing the checksum.
func (b TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(b[tcpDstPort:], p) }

// SetSeq sets the sequence number without fixing the checksum.
func (b TCP) SetSeq(n uint32) { binary.BigEndian.PutUint32(b[tcpSeq:], n) }

// SetFlags sets the flags byte without fixing the checksum.
func (b TCP) SetFlags(f uint8) { b[tcpFlags] = f }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[tcpChecksum:], c) }

// ICMPv4 is a view of an ICMPv4 message (RFC 792): an 8-byte header, then
// the payload (echo data, or the quoted packet of an error).
type ICMPv4 []byte

// Type is the message type.
func (b ICMPv4) Type() uint8 { return b[icmpType] }

// Code is the message code.
func (b ICMPv4) Code() uint8 { return b[icmpCode] }

// Checksum is the checksum field. It covers the whole ICMP message and,
// unlike UDP's and TCP's, no pseudo-header.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// Ident is the identifier of a query (echo, timestamp): the NAT's "port".
func (b ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(b[icmpIdent:]) }

// Seq is the sequence number of a query.
func (b ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(b[icmpSeq:]) }

// MTU is the next-hop MTU of a Destination Unreachable, Fragmentation
// Needed message (type 3 code 4, RFC 1191 section 4); 0 from routers
// older than RFC 1191.
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[icmpMTU:]) }

// SetIdent sets the identifier without fixing the checksum.
func (b ICMPv4) SetIdent(id uint16) { binary.BigEndian.PutUint16(b[icmpIdent:], id) }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], c) }

// Payload is the bytes after the 8-byte header.
func (b ICMPv4) Payload() []byte { return b[ICMPv4MinSize:] }
