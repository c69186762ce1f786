package header

import "encoding/binary"

// ICMPv6 message types the NAT reads or generates (RFC 4443 section 2.1:
// types below 128 are errors, the rest informational).
const (
	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
	ICMPv6ParamProblem    = 4
	ICMPv6EchoRequest     = 128
	ICMPv6EchoReply       = 129
)

// ICMPv6 Destination Unreachable codes (RFC 4443 section 3.1).
const (
	ICMPv6CodeNoRoute         = 0
	ICMPv6CodeAdminProhibited = 1
	ICMPv6CodeAddrUnreachable = 3
	ICMPv6CodePortUnreachable = 4
)

// IsICMPv6Error reports whether typ is an ICMPv6 error the NAT
// translates: Destination Unreachable, Packet Too Big, Time Exceeded and
// Parameter Problem (RFC 4443 section 2.1; RFC 7915 section 5.2 lists
// the same four). They quote the packet they are about, and
// ParsedV6.Decode reads that quote.
func IsICMPv6Error(typ uint8) bool { return typ-1 < 4 } // 1 to 4; 0 wraps to 255

// IsICMPv6Query reports whether typ is an ICMPv6 query the NAT maps by
// its identifier: echo request and reply (RFC 4443 section 4).
func IsICMPv6Query(typ uint8) bool { return typ == ICMPv6EchoRequest || typ == ICMPv6EchoReply }

// ICMPv6 is a view of an ICMPv6 message (RFC 4443): an 8-byte header,
// then the payload (echo data, or the quoted packet of an error). Its
// checksum covers an IPv6 pseudo-header, unlike ICMPv4's.
type ICMPv6 []byte

// Type is the message type.
func (b ICMPv6) Type() uint8 { return b[icmpType] }

// Code is the message code.
func (b ICMPv6) Code() uint8 { return b[icmpCode] }

// Checksum is the checksum field.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// Ident is the identifier of an echo request or reply: the NAT's "port".
func (b ICMPv6) Ident() uint16 { return binary.BigEndian.Uint16(b[icmpIdent:]) }

// Seq is the sequence number of an echo request or reply.
func (b ICMPv6) Seq() uint16 { return binary.BigEndian.Uint16(b[icmpSeq:]) }

// MTU is the MTU of a Packet Too Big message (RFC 4443 section 3.2): all
// of bytes 4-7.
func (b ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(b[icmpIdent:]) }

// Pointer is the pointer of a Parameter Problem message (RFC 4443
// section 3.4): the offset in the quoted packet of the bad field.
func (b ICMPv6) Pointer() uint32 { return binary.BigEndian.Uint32(b[icmpIdent:]) }

// SetIdent sets the identifier without fixing the checksum.
func (b ICMPv6) SetIdent(id uint16) { binary.BigEndian.PutUint16(b[icmpIdent:], id) }

// SetChecksum sets the checksum field.
func (b ICMPv6) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], c) }

// Payload is the bytes after the 8-byte header: an error's quoted packet.
func (b ICMPv6) Payload() []byte { return b[ICMPv6MinSize:] }
