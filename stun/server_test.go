package stun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	pstun "github.com/pion/stun/v3"
)

const waitReply = 2 * time.Second // generous: a reply on loopback takes microseconds
const waitSilence = 200 * time.Millisecond

// decodeAddrs reads the response's address attributes with pion's own
// decoders, so the encoder here is checked against an independent one.
func decodeAddrs(t *testing.T, m *pstun.Message) (xor, mapped, origin, other netip.AddrPort) {
	t.Helper()
	var x pstun.XORMappedAddress
	if err := x.GetFrom(m); err != nil {
		t.Fatalf("XOR-MAPPED-ADDRESS: %v", err)
	}
	var ma pstun.MappedAddress
	if err := ma.GetFrom(m); err != nil {
		t.Fatalf("MAPPED-ADDRESS: %v", err)
	}
	var ro pstun.ResponseOrigin
	if err := ro.GetFrom(m); err != nil {
		t.Fatalf("RESPONSE-ORIGIN: %v", err)
	}
	var oa pstun.OtherAddress
	if err := oa.GetFrom(m); err != nil {
		t.Fatalf("OTHER-ADDRESS: %v", err)
	}
	conv := func(ip net.IP, port int) netip.AddrPort {
		a, _ := netip.AddrFromSlice(ip)
		return netip.AddrPortFrom(a.Unmap(), uint16(port))
	}
	return conv(x.IP, x.Port), conv(ma.IP, ma.Port), conv(ro.IP, ro.Port), conv(oa.IP, oa.Port)
}

// Every CHANGE-REQUEST combination sent to every one of the four sockets is
// answered from the socket RFC 5780 §6.1 names, and says so truthfully.
func TestServerChangeRequestMatrix(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	c := listenUDP(t)
	me := localAP(c)
	for in, dst := range addrs {
		for _, change := range []ChangeFlags{0, ChangePort, ChangeIP, ChangeIP | ChangePort} {
			t.Run(fmt.Sprintf("to %v change %v", dst, change), func(t *testing.T) {
				req := request(t, changeAttr(change))
				b, from, ok := exchange(t, c, req.Raw, dst, waitReply)
				if !ok {
					t.Fatal("no response")
				}
				want := in
				if change&ChangeIP != 0 {
					want ^= 2
				}
				if change&ChangePort != 0 {
					want ^= 1
				}
				if from != addrs[want] {
					t.Errorf("response came from %v, want %v", from, addrs[want])
				}
				m := new(pstun.Message)
				if err := pstun.Decode(b, m); err != nil {
					t.Fatal(err)
				}
				if m.Type != pstun.BindingSuccess || m.TransactionID != req.TransactionID {
					t.Fatalf("got %v id %x, want success for %x", m.Type, m.TransactionID, req.TransactionID)
				}
				xor, mapped, origin, other := decodeAddrs(t, m)
				if xor != me || mapped != me {
					t.Errorf("XOR-MAPPED %v, MAPPED %v, want both %v", xor, mapped, me)
				}
				if origin != from {
					t.Errorf("RESPONSE-ORIGIN %v but the datagram came from %v", origin, from)
				}
				if other != addrs[in^3] {
					t.Errorf("OTHER-ADDRESS %v, want %v", other, addrs[in^3])
				}
				if in == 0 && other != netip.AddrPortFrom(loA2, addrs[1].Port()) {
					t.Errorf("OTHER-ADDRESS for the primary is %v, want Alternate:AltPort", other)
				}
				if m.Contains(pstun.AttrSourceAddress) || m.Contains(pstun.AttrChangedAddress) {
					t.Errorf("RFC 5389 client got RFC 3489 attributes: %v", m)
				}
			})
		}
	}
	if st := s.Stats(); st.Requests != 16 || st.Responses != 16 || st.Errors != 0 || st.Malformed != 0 {
		t.Errorf("stats %+v, want 16 requests and responses", st)
	}
}

// Binding, the client side, reads the same things.
func TestBindingFunction(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	c := listenUDP(t)
	r, err := Binding(context.Background(), c, addrs[0], ChangeIP|ChangePort, 50*time.Millisecond, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := BindingResponse{Mapped: localAP(c), MappedAddress: localAP(c), ResponseOrigin: addrs[3], OtherAddress: addrs[3], From: addrs[3]}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
}

func TestBindingTimeout(t *testing.T) {
	c := listenUDP(t)
	silent := listenUDP(t) // a socket that never answers
	start := time.Now()
	_, err := Binding(context.Background(), c, localAP(silent), 0, 5*time.Millisecond, 2)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// Rc=2: sends at 0 and 5 ms, then Rm*RTO = 80 ms: 85 ms in all.
	if d := time.Since(start); d < 80*time.Millisecond || d > 2*time.Second {
		t.Errorf("took %v, want about 85ms", d)
	}
	// The silent socket saw both transmissions.
	for i := range 2 {
		if _, _, ok := receive(t, silent, waitReply); !ok {
			t.Fatalf("transmission %d missing", i+1)
		}
	}
}

func TestBindingContextCancel(t *testing.T) {
	c := listenUDP(t)
	silent := listenUDP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Binding(ctx, c, localAP(silent), 0, time.Second, 7)
	if err == nil || ctx.Err() == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want the context's", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

// RFC 3489 clients (no magic cookie) get SOURCE-ADDRESS and CHANGED-ADDRESS,
// their whole 128-bit transaction ID back, and no XOR-MAPPED-ADDRESS.
func TestServerClassicClient(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	c := listenUDP(t)
	me := localAP(c)
	for _, change := range []ChangeFlags{0, ChangeIP | ChangePort, ChangePort} {
		t.Run("change "+change.String(), func(t *testing.T) {
			req, id := classicRequest(change)
			b, from, ok := exchange(t, c, req, addrs[0], waitReply)
			if !ok {
				t.Fatal("no response")
			}
			if binary.BigEndian.Uint16(b[0:2]) != 0x0101 {
				t.Fatalf("type 0x%04x, want Binding Response 0x0101", binary.BigEndian.Uint16(b[0:2]))
			}
			if [16]byte(b[4:20]) != id {
				t.Fatalf("transaction ID % x, want % x", b[4:20], id)
			}
			attrs := classicAttrs(t, b)
			get := func(typ uint16) netip.AddrPort {
				v, ok := attrs[typ]
				if !ok {
					t.Fatalf("attribute 0x%04x missing", typ)
				}
				ap, err := parseAddr(v, nil)
				if err != nil {
					t.Fatalf("attribute 0x%04x: %v", typ, err)
				}
				return ap
			}
			if got := get(0x0001); got != me {
				t.Errorf("MAPPED-ADDRESS %v, want %v", got, me)
			}
			if got := get(0x0004); got != from {
				t.Errorf("SOURCE-ADDRESS %v, but it came from %v", got, from)
			}
			if got := get(0x0005); got != netip.AddrPortFrom(loA2, addrs[1].Port()) {
				t.Errorf("CHANGED-ADDRESS %v, want %v", got, addrs[3])
			}
			if got := get(0x802b); got != from {
				t.Errorf("RESPONSE-ORIGIN %v, but it came from %v", got, from)
			}
			if _, ok := attrs[0x0020]; ok {
				t.Errorf("XOR-MAPPED-ADDRESS sent to an RFC 3489 client")
			}
			for typ := range attrs {
				if typ < 0x8000 && typ != 0x0001 && typ != 0x0004 && typ != 0x0005 {
					t.Errorf("comprehension-required attribute 0x%04x would make an RFC 3489 client fail", typ)
				}
			}
		})
	}
}

// An RFC 3489 client's 420 keeps every attribute length a multiple of 4,
// since such clients step over attributes without padding.
func TestServerClassicUnknownAttribute(t *testing.T) {
	s := startServer(t)
	c := listenUDP(t)
	req, id := classicRequest(0)
	req = binary.BigEndian.AppendUint16(req, 0x0777)
	req = binary.BigEndian.AppendUint16(req, 4)
	req = append(req, 1, 2, 3, 4)
	binary.BigEndian.PutUint16(req[2:4], uint16(len(req)-20))
	b, _, ok := exchange(t, c, req, s.Addrs()[0], waitReply)
	if !ok {
		t.Fatal("no response")
	}
	if binary.BigEndian.Uint16(b[0:2]) != 0x0111 || [16]byte(b[4:20]) != id {
		t.Fatalf("got type 0x%04x id % x, want Binding Error Response 0x0111 for % x", binary.BigEndian.Uint16(b[0:2]), b[4:20], id)
	}
	for rest := b[20:]; len(rest) >= 4; {
		l := int(binary.BigEndian.Uint16(rest[2:4]))
		if l%4 != 0 {
			t.Errorf("attribute 0x%04x has length %d", binary.BigEndian.Uint16(rest[0:2]), l)
		}
		rest = rest[4+(l+3)&^3:]
	}
	attrs := classicAttrs(t, b)
	if ec := attrs[0x0009]; len(ec) < 4 || int(ec[2])*100+int(ec[3]) != 420 {
		t.Errorf("ERROR-CODE % x, want 420", ec)
	}
	if ua := attrs[0x000a]; string(ua) != "\x07\x77\x07\x77" {
		t.Errorf("UNKNOWN-ATTRIBUTES % x, want 0x0777 twice (RFC 3489 §11.2.10)", ua)
	}
}

// RESPONSE-PORT (RFC 5780 §7.5) sends the answer to another port of the
// same IP; CHANGE-REQUEST still picks the source.
func TestServerResponsePort(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	sender, receiver := listenUDP(t), listenUDP(t)
	req := request(t, responsePortAttr(localAP(receiver).Port()), changeAttr(ChangePort))
	if _, err := sender.WriteToUDPAddrPort(req.Raw, addrs[0]); err != nil {
		t.Fatal(err)
	}
	b, from, ok := receive(t, receiver, waitReply)
	if !ok {
		t.Fatal("no response at the RESPONSE-PORT")
	}
	if from != addrs[1] {
		t.Errorf("came from %v, want %v", from, addrs[1])
	}
	m := new(pstun.Message)
	if err := pstun.Decode(b, m); err != nil {
		t.Fatal(err)
	}
	if xor, _, _, _ := decodeAddrs(t, m); xor != localAP(sender) {
		t.Errorf("mapped %v, want the sender %v", xor, localAP(sender))
	}
	if _, _, ok := receive(t, sender, waitSilence); ok {
		t.Errorf("the sender got a response too")
	}
}

// Unknown comprehension-required attributes get 420 with UNKNOWN-ATTRIBUTES
// (RFC 8489 §6.3.1.1); unknown optional ones are ignored.
func TestServerUnknownAttributes(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	c := listenUDP(t)
	cases := []struct {
		name    string
		attrs   []pstun.Setter
		code    pstun.ErrorCode // 0: success expected
		unknown []pstun.AttrType
	}{
		{"required 0x0777", []pstun.Setter{rawAttr(0x0777, []byte{1, 2, 3})}, 420, []pstun.AttrType{0x0777}},
		{"two required, one repeated", []pstun.Setter{rawAttr(0x7001, nil), rawAttr(0x0030, []byte{1}), rawAttr(0x7001, nil)}, 420, []pstun.AttrType{0x7001, 0x0030}},
		{"RFC 3489 RESPONSE-ADDRESS", []pstun.Setter{rawAttr(0x0002, make([]byte, 8))}, 420, []pstun.AttrType{0x0002}},
		{"optional 0x8777", []pstun.Setter{rawAttr(0x8777, []byte{1})}, 0, nil},
		{"ICE attributes", []pstun.Setter{pstun.NewUsername("a:b"), rawAttr(0x0024, make([]byte, 4)), rawAttr(0x802a, make([]byte, 8))}, 0, nil},
		{"short CHANGE-REQUEST", []pstun.Setter{rawAttr(0x0003, []byte{0, 0, 6})}, 400, nil},
		{"RESPONSE-PORT 0", []pstun.Setter{responsePortAttr(0)}, 400, nil},
		{"PADDING with RESPONSE-PORT", []pstun.Setter{responsePortAttr(localAP(c).Port()), rawAttr(0x0026, make([]byte, 100))}, 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, tc.attrs...)
			b, from, ok := exchange(t, c, req.Raw, addrs[0], waitReply)
			if !ok {
				t.Fatal("no response")
			}
			if from != addrs[0] {
				t.Errorf("answered from %v, want %v", from, addrs[0])
			}
			m := new(pstun.Message)
			if err := pstun.Decode(b, m); err != nil {
				t.Fatal(err)
			}
			if m.TransactionID != req.TransactionID {
				t.Fatal("transaction ID differs")
			}
			if tc.code == 0 {
				if m.Type != pstun.BindingSuccess {
					t.Fatalf("got %v, want success", m)
				}
				return
			}
			if m.Type != pstun.BindingError {
				t.Fatalf("got %v, want an error response", m)
			}
			var ec pstun.ErrorCodeAttribute
			if err := ec.GetFrom(m); err != nil {
				t.Fatal(err)
			}
			if ec.Code != tc.code {
				t.Errorf("code %d (%s), want %d", ec.Code, ec.Reason, tc.code)
			}
			var ua pstun.UnknownAttributes
			err := ua.GetFrom(m)
			if tc.unknown == nil {
				if err == nil {
					t.Errorf("UNKNOWN-ATTRIBUTES %v in a %d", ua, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("UNKNOWN-ATTRIBUTES: %v", err)
			}
			if fmt.Sprint(ua) != fmt.Sprint(pstun.UnknownAttributes(tc.unknown)) {
				t.Errorf("UNKNOWN-ATTRIBUTES %v, want %v", ua, tc.unknown)
			}
		})
	}
}

// Anything that is not a STUN request is dropped, counted, and answered
// with nothing; the server keeps serving.
func TestServerGarbage(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	c := listenUDP(t)
	valid := request(t, changeAttr(0)).Raw
	badFingerprint := request(t, pstun.Fingerprint).Raw
	badFingerprint[len(badFingerprint)-1] ^= 1
	trailing := append(append([]byte{}, valid...), 0, 0, 0, 0)
	badLen := append([]byte{}, valid...)
	binary.BigEndian.PutUint16(badLen[2:4], 12)
	attrOverrun := append([]byte{}, valid...)
	binary.BigEndian.PutUint16(attrOverrun[22:24], 200)
	topBits := append([]byte{}, valid...)
	topBits[0] |= 0x80
	classicShort, _ := classicRequest(0)
	classicShort = classicShort[:24]
	garbage := map[string][]byte{
		"empty":           {},
		"one byte":        {0},
		"19 bytes":        make([]byte, 19),
		"text":            []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"trailing bytes":  trailing,
		"length mismatch": badLen,
		"attr overrun":    attrOverrun,
		"top bits set":    topBits,
		"bad FINGERPRINT": badFingerprint,
		"classic cut":     classicShort,
	}
	for name, b := range garbage {
		if _, ok := exchangeNoFail(c, b, addrs[0]); ok {
			t.Errorf("%s: got a response", name)
		}
	}
	// Well-formed but not requests: ignored, not malformed.
	ind := request(t)
	ind.Type = pstun.NewType(pstun.MethodBinding, pstun.ClassIndication)
	ind.WriteHeader()
	resp := request(t)
	resp.Type = pstun.BindingSuccess
	resp.WriteHeader()
	for _, b := range [][]byte{ind.Raw, resp.Raw} {
		if _, ok := exchangeNoFail(c, b, addrs[0]); ok {
			t.Errorf("got a response to a %v", b[:2])
		}
	}
	// Still serving.
	if _, _, ok := exchange(t, c, valid, addrs[0], waitReply); !ok {
		t.Fatal("no response to a valid request after the garbage")
	}
	st := s.Stats()
	if st.Malformed != uint64(len(garbage)) || st.Ignored != 2 || st.Requests != 1 || st.Responses != 1 {
		t.Errorf("stats %+v, want %d malformed, 2 ignored, 1 request", st, len(garbage))
	}
}

// exchangeNoFail sends b and reports whether anything came back within
// waitSilence.
func exchangeNoFail(c *net.UDPConn, b []byte, dst netip.AddrPort) ([]byte, bool) {
	if _, err := c.WriteToUDPAddrPort(b, dst); err != nil {
		return nil, false
	}
	_ = c.SetReadDeadline(time.Now().Add(waitSilence))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 2048)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

// PADDING (RFC 5780 §7.6) comes back the same size, and a FINGERPRINT in
// the request gets a valid one in the response.
func TestServerPaddingAndFingerprint(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	c := listenUDP(t)
	for _, size := range []int{1, 100, 1500, 4000} {
		req := request(t, rawAttr(0x0026, make([]byte, size)), pstun.Fingerprint)
		b, _, ok := exchange(t, c, req.Raw, addrs[0], waitReply)
		if !ok {
			t.Fatalf("padding %d: no response", size)
		}
		m := new(pstun.Message)
		if err := pstun.Decode(b, m); err != nil {
			t.Fatal(err)
		}
		v, err := m.Get(pstun.AttrPadding)
		if err != nil || len(v) != size {
			t.Errorf("padding %d: got %d bytes (%v)", size, len(v), err)
		}
		if err := pstun.Fingerprint.Check(m); err != nil {
			t.Errorf("padding %d: FINGERPRINT: %v", size, err)
		}
	}
}

func TestServerOtherMethod(t *testing.T) {
	s := startServer(t)
	c := listenUDP(t)
	req := request(t)
	req.Type = pstun.NewType(pstun.MethodAllocate, pstun.ClassRequest)
	req.WriteHeader()
	b, _, ok := exchange(t, c, req.Raw, s.Addrs()[0], waitReply)
	if !ok {
		t.Fatal("no response")
	}
	m := new(pstun.Message)
	if err := pstun.Decode(b, m); err != nil {
		t.Fatal(err)
	}
	var ec pstun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil || ec.Code != 400 || m.Type.Method != pstun.MethodAllocate || m.Type.Class != pstun.ClassErrorResponse {
		t.Errorf("got %v (%v %v), want 400 Allocate error", m, ec, err)
	}
}

func TestNewServerErrors(t *testing.T) {
	// Hold one of the four addresses; the error must name it.
	blocker := listenUDP(t)
	held := localAP(blocker)
	_, err := NewServer(ServerConfig{Primary: loA2, Alternate: loA1, Port: held.Port() - 1, AltPort: held.Port()})
	if err == nil || !strings.Contains(err.Error(), held.String()) {
		t.Errorf("err = %v, want one naming %v", err, held)
	}
	// The sockets opened before the failure were closed again.
	c, err := net.ListenPacket("udp4", netip.AddrPortFrom(loA2, held.Port()-1).String())
	if err != nil {
		t.Errorf("socket leaked by the failed NewServer: %v", err)
	} else {
		_ = c.Close()
	}
	for _, cfg := range []ServerConfig{
		{Primary: loA1},
		{Primary: loA1, Alternate: loA1},
		{Primary: loA1, Alternate: netip.MustParseAddr("::1")},
		{Primary: loA1, Alternate: loA2, Port: 4000, AltPort: 4000},
	} {
		if s, err := NewServer(cfg); err == nil {
			_ = s.Close()
			t.Errorf("NewServer(%+v) succeeded", cfg)
		}
	}
}

func TestServerCloseStopsServe(t *testing.T) {
	var s *Server
	var err error
	for range 50 {
		p := uint16(20000 + time.Now().UnixNano()%40000)
		if s, err = NewServer(ServerConfig{Primary: loA1, Alternate: loA2, Port: p, AltPort: p + 1}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	c := listenUDP(t)
	if _, _, ok := exchange(t, c, request(t).Raw, s.Addrs()[0], waitReply); !ok {
		t.Fatal("no response")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Errorf("second Serve succeeded")
	}
}
