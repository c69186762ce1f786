package stun

import (
	"encoding/binary"
	"net/netip"
	"testing"

	pstun "github.com/pion/stun/v3"
)

// testHandler is a handler with the documentation-range addresses of
// docs/nat-requirements.md §0 (A1=203.0.113.1, A2=.2, P1=3478, P2=3479).
func testHandler() *handler {
	a1, a2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	return &handler{local: [4]netip.AddrPort{
		netip.AddrPortFrom(a1, 3478), netip.AddrPortFrom(a1, 3479),
		netip.AddrPortFrom(a2, 3478), netip.AddrPortFrom(a2, 3479),
	}}
}

var fuzzSrc = netip.MustParseAddrPort("198.51.100.1:40001")

// FuzzHandle feeds arbitrary datagrams to the request handler. Properties:
// it never panics; a reply is well-framed STUN (RFC 8489 §6), echoes the
// request's 16 bytes of cookie and transaction ID, goes back to the source IP,
// comes from one of the four sockets, and is never much bigger than the
// request (no amplification beyond the fixed attributes).
func FuzzHandle(f *testing.F) {
	seed := func(b []byte) { f.Add(b, uint8(0)) }
	// A plain RFC 8489 Binding request.
	plain := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest)
	seed(plain.Raw)
	// With CHANGE-REQUEST ip+port, RESPONSE-PORT, PADDING, FINGERPRINT.
	cr := make([]byte, 4)
	binary.BigEndian.PutUint32(cr, uint32(ChangeIP|ChangePort))
	seed(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest,
		pstun.RawAttribute{Type: attrChangeRequest, Value: cr}).Raw)
	seed(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest,
		pstun.RawAttribute{Type: attrResponsePort, Value: []byte{0x12, 0x34, 0, 0}}).Raw)
	seed(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest,
		pstun.RawAttribute{Type: attrPadding, Value: make([]byte, 37)}, pstun.Fingerprint).Raw)
	// Unknown comprehension-required attribute: 420.
	seed(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest,
		pstun.RawAttribute{Type: 0x0777, Value: []byte{1}}).Raw)
	// Another method: 400.
	seed(pstun.MustBuild(pstun.TransactionID, pstun.NewType(pstun.MethodAllocate, pstun.ClassRequest)).Raw)
	// RFC 3489 request, no cookie.
	classic, _ := classicRequest(ChangePort)
	seed(classic)
	// Garbage: empty, short, an attribute that overruns, a response.
	seed(nil)
	seed([]byte{0, 1, 0, 0})
	overrun := append([]byte{}, plain.Raw...)
	overrun = append(overrun, 0x00, 0x03, 0x00, 0xff)
	binary.BigEndian.PutUint16(overrun[2:4], 4)
	seed(overrun)
	seed(pstun.MustBuild(pstun.TransactionID, pstun.BindingSuccess).Raw)

	h := testHandler()
	f.Fuzz(func(t *testing.T, pkt []byte, in uint8) {
		sc := newScratch()
		sock := int(in % 4)
		orig := append([]byte(nil), pkt...)
		r, ok := h.handle(sc, pkt, sock, fuzzSrc)
		if string(orig) != string(pkt) {
			t.Fatal("handle modified its input")
		}
		if !ok {
			return
		}
		b := r.b
		if len(b) < headerSize || b[0]&0xC0 != 0 || int(binary.BigEndian.Uint16(b[2:4]))+headerSize != len(b) || len(b)%4 != 0 {
			t.Fatalf("badly framed reply % x", b)
		}
		if string(b[4:headerSize]) != string(pkt[4:headerSize]) {
			t.Fatalf("reply ID % x, request % x", b[4:headerSize], pkt[4:headerSize])
		}
		if r.dst.Addr() != fuzzSrc.Addr() {
			t.Fatalf("reply to %v, request from %v", r.dst, fuzzSrc)
		}
		if r.from < 0 || r.from > 3 {
			t.Fatalf("reply from socket %d", r.from)
		}
		if len(b) > len(pkt)+160 {
			t.Fatalf("reply of %d bytes to a request of %d", len(b), len(pkt))
		}
		// The reply decodes (with a cookie in place for RFC 3489 ones).
		cp := append([]byte(nil), b...)
		binary.BigEndian.PutUint32(cp[4:8], magicCookie)
		var m pstun.Message
		if err := pstun.Decode(cp, &m); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		if m.Type.Class != pstun.ClassSuccessResponse && m.Type.Class != pstun.ClassErrorResponse {
			t.Fatalf("reply class %v", m.Type.Class)
		}
	})
}
