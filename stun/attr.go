package stun

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"

	pstun "github.com/pion/stun/v3"
)

// Attribute types this package reads or writes. pion names most of them;
// they are repeated here so the server's list of understood attributes
// reads in one place.
const (
	attrMappedAddress     = pstun.AttrMappedAddress     // 0x0001, RFC 8489 §14.1
	attrResponseAddress   = pstun.AttrType(0x0002)      // RFC 3489 §11.2.2, not supported (reflection)
	attrChangeRequest     = pstun.AttrChangeRequest     // 0x0003, RFC 5780 §7.2
	attrSourceAddress     = pstun.AttrSourceAddress     // 0x0004, RFC 3489 §11.2.5
	attrChangedAddress    = pstun.AttrChangedAddress    // 0x0005, RFC 3489 §11.2.3
	attrXORMappedAddress  = pstun.AttrXORMappedAddress  // 0x0020, RFC 8489 §14.2
	attrPadding           = pstun.AttrPadding           // 0x0026, RFC 5780 §7.6
	attrResponsePort      = pstun.AttrResponsePort      // 0x0027, RFC 5780 §7.5
	attrFingerprint       = pstun.AttrFingerprint       // 0x8028, RFC 8489 §14.7
	attrResponseOrigin    = pstun.AttrResponseOrigin    // 0x802b, RFC 5780 §7.3
	attrOtherAddress      = pstun.AttrOtherAddress      // 0x802c, RFC 5780 §7.4
	attrUnknownAttributes = pstun.AttrUnknownAttributes // 0x000a, RFC 8489 §14.9
)

const (
	headerSize     = 20         // RFC 8489 §5
	magicCookie    = 0x2112A442 // RFC 8489 §5
	familyIPv4     = 0x01       // RFC 8489 §14.1
	familyIPv6     = 0x02
	fingerprintXOR = 0x5354554e // RFC 8489 §14.7
)

// ChangeFlags is the value of a CHANGE-REQUEST attribute (RFC 5780 §7.2,
// RFC 3489 §11.2.4): which of the server's address and port the response
// must come from instead of the ones the request was sent to.
type ChangeFlags uint32

// CHANGE-REQUEST flags. Bit "A" (0x04) asks for the other IP address, bit
// "B" (0x02) for the other port (RFC 5780 §7.2).
const (
	ChangePort ChangeFlags = 0x02
	ChangeIP   ChangeFlags = 0x04
)

// String names the flags: "none", "ip", "port" or "ip+port".
func (c ChangeFlags) String() string {
	var parts []string
	if c&ChangeIP != 0 {
		parts = append(parts, "ip")
	}
	if c&ChangePort != 0 {
		parts = append(parts, "port")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

var errBadAddress = errors.New("stun: malformed address attribute")

// appendAddr appends the value of a MAPPED-ADDRESS style attribute (RFC 8489
// §14.1): zero byte, family, port, address. With key non-nil the port and
// address are XOR-ed with it as for XOR-MAPPED-ADDRESS (RFC 8489 §14.2); key
// is the 16 bytes that follow the message length: the magic cookie and the
// transaction ID. For an RFC 3489 message the first four bytes of its 128-bit
// transaction ID stand where the cookie would be, which is what pre-RFC 5389
// servers XOR-ed with.
func appendAddr(b []byte, ap netip.AddrPort, key *[16]byte) []byte {
	a := ap.Addr().Unmap()
	port := ap.Port()
	if key != nil {
		port ^= binary.BigEndian.Uint16(key[0:2])
	}
	if a.Is4() {
		ip := a.As4()
		if key != nil {
			for i := range ip {
				ip[i] ^= key[i]
			}
		}
		b = append(b, 0, familyIPv4, byte(port>>8), byte(port))
		return append(b, ip[:]...)
	}
	ip := a.As16()
	if key != nil {
		for i := range ip {
			ip[i] ^= key[i]
		}
	}
	b = append(b, 0, familyIPv6, byte(port>>8), byte(port))
	return append(b, ip[:]...)
}

// parseAddr reads an address attribute value written by appendAddr.
func parseAddr(v []byte, key *[16]byte) (netip.AddrPort, error) {
	if len(v) < 4 {
		return netip.AddrPort{}, errBadAddress
	}
	port := binary.BigEndian.Uint16(v[2:4])
	if key != nil {
		port ^= binary.BigEndian.Uint16(key[0:2])
	}
	switch {
	case v[1] == familyIPv4 && len(v) == 8:
		var ip [4]byte
		copy(ip[:], v[4:8])
		if key != nil {
			for i := range ip {
				ip[i] ^= key[i]
			}
		}
		return netip.AddrPortFrom(netip.AddrFrom4(ip), port), nil
	case v[1] == familyIPv6 && len(v) == 20:
		var ip [16]byte
		copy(ip[:], v[4:20])
		if key != nil {
			for i := range ip {
				ip[i] ^= key[i]
			}
		}
		return netip.AddrPortFrom(netip.AddrFrom16(ip), port), nil
	}
	return netip.AddrPort{}, errBadAddress
}

// getAddr finds attribute t in m and parses it; the zero AddrPort when absent
// or malformed.
func getAddr(m *pstun.Message, t pstun.AttrType, key *[16]byte) netip.AddrPort {
	v, ok := m.Attributes.Get(t)
	if !ok {
		return netip.AddrPort{}
	}
	ap, err := parseAddr(v.Value, key)
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

// xorKey returns the cookie and transaction ID of a message as written in
// its header (bytes 4 to 20).
func xorKey(raw []byte) (k [16]byte) {
	copy(k[:], raw[4:headerSize])
	return k
}
