package stun

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"testing"

	pstun "github.com/pion/stun/v3"
)

// rfc5769IPv6Response is RFC 5769 §2.2 "Sample IPv6 Response", byte for
// byte: a Binding success response to [2001:db8:1234:5678:11:2233:4455:6677]:32853.
var rfc5769IPv6Response = []byte{
	0x01, 0x01, 0x00, 0x48, // Binding success response, length 72
	0x21, 0x12, 0xa4, 0x42, // magic cookie
	0xb7, 0xe7, 0xa7, 0x01, // transaction ID
	0xbc, 0x34, 0xd6, 0x86,
	0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, // SOFTWARE, 11 bytes
	0x74, 0x65, 0x73, 0x74, // "test vector", padded
	0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x14, // XOR-MAPPED-ADDRESS, 20 bytes
	0x00, 0x02, 0xa1, 0x47, // family IPv6, X-Port
	0x01, 0x13, 0xa9, 0xfa, // X-Address: the address XOR cookie and transaction ID
	0xa5, 0xd3, 0xf1, 0x79,
	0xbc, 0x25, 0xf4, 0xb5,
	0xbe, 0xd2, 0xb9, 0xd9,
	0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY
	0xa3, 0x82, 0x95, 0x4e,
	0x4b, 0xe6, 0x7b, 0xf1,
	0x17, 0x84, 0xc9, 0x7c,
	0x82, 0x92, 0xc2, 0x75,
	0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, // FINGERPRINT
	0xc8, 0xfb, 0x0b, 0x4c,
}

var rfc5769Mapped = netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853")

// The IPv6 XOR-MAPPED-ADDRESS of RFC 5769 §2.2 decodes to the vector's
// address, and encoding that address with the vector's transaction ID
// gives the vector's bytes; the plain form (MAPPED-ADDRESS, RESPONSE-ORIGIN,
// OTHER-ADDRESS) is family 0x02, the port and the 16 bytes as they are.
func TestRFC5769IPv6Address(t *testing.T) {
	msg := rfc5769IPv6Response
	key := xorKey(msg)
	const at = 20 + 4 + 12 // header, SOFTWARE header and padded value
	if binary.BigEndian.Uint16(msg[at:]) != uint16(attrXORMappedAddress) {
		t.Fatalf("vector transcribed wrongly: no XOR-MAPPED-ADDRESS at byte %d", at)
	}
	golden := msg[at+4 : at+4+20]
	got, err := parseAddr(golden, &key)
	if err != nil || got != rfc5769Mapped {
		t.Fatalf("parseAddr = %v, %v; want %v", got, err, rfc5769Mapped)
	}
	if enc := appendAddr(nil, rfc5769Mapped, &key); !bytes.Equal(enc, golden) {
		t.Errorf("appendAddr XOR:\n got % x\nwant % x", enc, golden)
	}
	plain := appendAddr(nil, rfc5769Mapped, nil)
	want := append([]byte{0, familyIPv6, 0x80, 0x55}, rfc5769Mapped.Addr().AsSlice()...)
	if !bytes.Equal(plain, want) {
		t.Errorf("appendAddr plain:\n got % x\nwant % x", plain, want)
	}
	if back, err := parseAddr(plain, nil); err != nil || back != rfc5769Mapped {
		t.Errorf("plain round trip = %v, %v", back, err)
	}
	// The vector's FINGERPRINT is what addFingerprint computes.
	fp := binary.BigEndian.Uint32(msg[len(msg)-4:])
	if c := crc32.ChecksumIEEE(msg[:len(msg)-8]) ^ fingerprintXOR; c != fp {
		t.Errorf("FINGERPRINT %08x, computed %08x", fp, c)
	}
	// pion reads the whole vector, and its decoder agrees.
	m := new(pstun.Message)
	if err := pstun.Decode(append([]byte(nil), msg...), m); err != nil {
		t.Fatal(err)
	}
	if a := getAddr(m, attrXORMappedAddress, &key); a != rfc5769Mapped {
		t.Errorf("getAddr = %v", a)
	}
	var x pstun.XORMappedAddress
	if err := x.GetFrom(m); err != nil || x.String() != rfc5769Mapped.String() {
		t.Errorf("pion reads %v, %v", x, err)
	}
}

// A malformed IPv6 address attribute is refused: wrong length for the
// family, or an unknown family.
func TestParseAddrIPv6Malformed(t *testing.T) {
	good := appendAddr(nil, rfc5769Mapped, nil)
	for name, v := range map[string][]byte{
		"short":         good[:19],
		"long":          append(append([]byte(nil), good...), 0),
		"v6 as family1": append([]byte{0, familyIPv4}, good[2:]...),
		"family 3":      append([]byte{0, 3}, good[2:]...),
	} {
		if a, err := parseAddr(v, nil); err == nil {
			t.Errorf("%s: parsed as %v", name, a)
		}
	}
}

// The server's answer to an IPv6 client, from the RFC 5769 vector's
// transaction ID and address: XOR-MAPPED-ADDRESS is the vector's bytes,
// and MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS are IPv6 (family
// 0x02), with CHANGE-REQUEST honoured across the two IPv6 addresses.
func TestServerAnswersIPv6(t *testing.T) {
	a1, a2 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	h := &handler{local: [4]netip.AddrPort{
		netip.AddrPortFrom(a1, 3478), netip.AddrPortFrom(a1, 3479),
		netip.AddrPortFrom(a2, 3478), netip.AddrPortFrom(a2, 3479),
	}}
	sc := newScratch()
	for _, tc := range []struct {
		change ChangeFlags
		from   int
	}{{0, 0}, {ChangePort, 1}, {ChangeIP, 2}, {ChangeIP | ChangePort, 3}} {
		req := pstun.New()
		req.Type = pstun.BindingRequest
		copy(req.TransactionID[:], rfc5769IPv6Response[8:20])
		req.WriteHeader()
		if tc.change != 0 {
			req.Add(attrChangeRequest, binary.BigEndian.AppendUint32(nil, uint32(tc.change)))
		}
		r, ok := h.handle(sc, req.Raw, 0, rfc5769Mapped)
		if !ok {
			t.Fatalf("change %v: no reply", tc.change)
		}
		if r.from != tc.from || r.dst != rfc5769Mapped {
			t.Errorf("change %v: reply from socket %d to %v, want %d to %v", tc.change, r.from, r.dst, tc.from, rfc5769Mapped)
		}
		m := new(pstun.Message)
		if err := pstun.Decode(append([]byte(nil), r.b...), m); err != nil {
			t.Fatal(err)
		}
		xv, _ := m.Attributes.Get(attrXORMappedAddress)
		if want := rfc5769IPv6Response[40:60]; !bytes.Equal(xv.Value, want) {
			t.Errorf("change %v: XOR-MAPPED-ADDRESS % x, want RFC 5769's % x", tc.change, xv.Value, want)
		}
		for at, want := range map[pstun.AttrType]netip.AddrPort{
			attrMappedAddress:  rfc5769Mapped,
			attrResponseOrigin: h.local[tc.from],
			attrOtherAddress:   h.local[3],
		} {
			v, ok := m.Attributes.Get(at)
			if !ok || len(v.Value) != 20 || v.Value[1] != familyIPv6 {
				t.Errorf("change %v: %v = % x, want an IPv6 address", tc.change, at, v.Value)
				continue
			}
			if got, _ := parseAddr(v.Value, nil); got != want {
				t.Errorf("change %v: %v = %v, want %v", tc.change, at, got, want)
			}
		}
	}
}
