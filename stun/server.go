package stun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	pstun "github.com/pion/stun/v3"
)

// Default server ports: RFC 8489 §18.1 registers 3478; RFC 5780 §6 needs a
// second port, and 3479 is the customary choice.
const (
	DefaultPort    = 3478
	DefaultAltPort = 3479
)

// ServerConfig describes an RFC 5780 server: two IP addresses of this host,
// each with the same two ports open (RFC 5780 §6).
type ServerConfig struct {
	// Primary and Alternate are two addresses of the same family, IPv4 or
	// IPv6 (RFC 5780 applies to both; 127.0.0.1 and 127.0.0.2 in tests,
	// both on lo). A server answering both families is two Servers.
	Primary, Alternate netip.Addr
	// Port and AltPort are the two ports; zero means DefaultPort and
	// DefaultAltPort.
	Port, AltPort uint16
	// ListenPacket opens one UDP socket; nil means net.ListenPacket. gonat
	// passes one that opens the socket inside a network namespace.
	ListenPacket func(network, address string) (net.PacketConn, error)
	// Logf, when set, gets one line per request and per failure.
	Logf func(format string, args ...any)
}

// ServerStats are the server's counters since NewServer.
type ServerStats struct {
	Requests   uint64 // well-formed STUN requests received
	Responses  uint64 // Binding success responses sent
	Errors     uint64 // error responses sent: 420 Unknown Attribute, 400 Bad Request
	Malformed  uint64 // datagrams dropped as not STUN (short, bad length, bad header, bad FINGERPRINT)
	Ignored    uint64 // well-formed STUN that is not a request (indications, responses): dropped
	SendErrors uint64 // responses that could not be written to their socket
}

// Socket indexes: bit 1 is the address (0 Primary, 1 Alternate), bit 0 the
// port (0 Port, 1 AltPort). A CHANGE-REQUEST flips bits of the receiving
// socket's index, which is RFC 5780 §6.1 Table 1 in two XORs; OTHER-ADDRESS
// (Ca:Cp in that table) is the receiving socket's index with both bits
// flipped.
const (
	sockChangePort = 1
	sockChangeIP   = 2
	sockOther      = sockChangeIP | sockChangePort
)

// handler is the server without sockets: it turns one datagram received on
// one of the four transport addresses into at most one reply. Safe for
// concurrent use; each goroutine brings its own scratch.
type handler struct {
	local [4]netip.AddrPort
	logf  func(format string, args ...any)

	requests, responses, errors, malformed, ignored, sendErrors atomic.Uint64
}

// scratch holds the buffers one reading goroutine reuses for every datagram,
// so the success path allocates nothing.
type scratch struct {
	req, resp pstun.Message
	unknown   []pstun.AttrType
	val       [64]byte
}

func newScratch() *scratch {
	return &scratch{
		req:  pstun.Message{Raw: make([]byte, 0, 1500)},
		resp: pstun.Message{Raw: make([]byte, 0, 1500)},
	}
}

// reply is what handle decided to send: b from socket index from to dst.
type reply struct {
	b    []byte
	from int
	dst  netip.AddrPort
}

// understood lists the comprehension-required attributes (0x0000-0x7FFF,
// RFC 8489 §14) a Binding request may carry without a 420. Authentication
// attributes are accepted and not checked: this server does not
// authenticate (RFC 8489 §9 leaves that to the usage), and ICE connectivity
// checks pointed at it must still get answers. RESPONSE-ADDRESS (RFC 3489
// §11.2.2) is deliberately absent: it would let anyone aim responses at a
// third party, which is why RFC 5389 dropped it, so it gets a 420.
func understood(t pstun.AttrType) bool {
	switch t {
	case attrMappedAddress, attrChangeRequest, attrSourceAddress, attrChangedAddress,
		pstun.AttrUsername, pstun.AttrMessageIntegrity, pstun.AttrErrorCode,
		attrUnknownAttributes, pstun.AttrRealm, pstun.AttrNonce,
		pstun.AttrMessageIntegritySHA256, pstun.AttrPasswordAlgorithm, pstun.AttrUserhash,
		attrXORMappedAddress, pstun.AttrPriority, pstun.AttrUseCandidate,
		attrPadding, attrResponsePort:
		return true
	}
	return false
}

// Binding request attributes after validation.
type bindingParams struct {
	change       ChangeFlags
	responsePort uint16
	padding      int // length of the request's PADDING value; -1 when absent
	fingerprint  bool
}

// handle processes datagram pkt that arrived on socket in from src. It
// returns ok=false when nothing is to be sent. It never retains pkt.
func (h *handler) handle(sc *scratch, pkt []byte, in int, src netip.AddrPort) (reply, bool) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	// RFC 8489 §6.3: the two top bits are zero, the length is a multiple of
	// four and, for UDP, the datagram is exactly one message. RFC 3489
	// messages (no magic cookie) obey the same framing.
	if len(pkt) < headerSize || pkt[0]&0xC0 != 0 {
		h.malformed.Add(1)
		return reply{}, false
	}
	length := int(binary.BigEndian.Uint16(pkt[2:4]))
	if length%4 != 0 || headerSize+length != len(pkt) {
		h.malformed.Add(1)
		return reply{}, false
	}
	classic := binary.BigEndian.Uint32(pkt[4:8]) != magicCookie
	req := &sc.req
	req.Raw = append(req.Raw[:0], pkt...)
	if classic {
		// pion only decodes RFC 5389 messages; put a cookie in the copy and
		// keep the client's 128-bit transaction ID in pkt.
		binary.BigEndian.PutUint32(req.Raw[4:8], magicCookie)
	}
	if err := req.Decode(); err != nil {
		h.malformed.Add(1)
		return reply{}, false
	}
	p := bindingParams{padding: -1}
	// FINGERPRINT (RFC 8489 §14.7) must be last and must match; a mismatch
	// means the datagram is not STUN (it exists to tell STUN from other
	// protocols on the same port), so it is dropped like garbage.
	for i, a := range req.Attributes {
		if a.Type != attrFingerprint {
			continue
		}
		if i != len(req.Attributes)-1 || len(a.Value) != 4 ||
			binary.BigEndian.Uint32(a.Value) != crc32.ChecksumIEEE(pkt[:len(pkt)-8])^fingerprintXOR {
			h.malformed.Add(1)
			return reply{}, false
		}
		p.fingerprint = true
	}
	if req.Type.Class != pstun.ClassRequest {
		h.ignored.Add(1)
		return reply{}, false
	}
	h.requests.Add(1)
	key := xorKey(pkt)
	if req.Type.Method != pstun.MethodBinding {
		// RFC 8489 §6.3.1.1: a request for a method the server does not
		// know gets 400.
		return h.errorReply(sc, pkt, in, src, pstun.CodeBadRequest, "only Binding is served", nil)
	}
	sc.unknown = sc.unknown[:0]
	for _, a := range req.Attributes {
		switch a.Type {
		case attrChangeRequest:
			if len(a.Value) != 4 {
				return h.errorReply(sc, pkt, in, src, pstun.CodeBadRequest, "CHANGE-REQUEST must be 4 bytes", nil)
			}
			p.change = ChangeFlags(binary.BigEndian.Uint32(a.Value)) & (ChangeIP | ChangePort)
		case attrResponsePort:
			// RFC 5780 §7.5: a 16-bit port and two bytes of padding.
			if len(a.Value) != 4 || binary.BigEndian.Uint16(a.Value) == 0 {
				return h.errorReply(sc, pkt, in, src, pstun.CodeBadRequest, "bad RESPONSE-PORT", nil)
			}
			p.responsePort = binary.BigEndian.Uint16(a.Value)
		case attrPadding:
			p.padding = len(a.Value)
		default:
			if a.Type.Required() && !understood(a.Type) && !containsAttr(sc.unknown, a.Type) {
				sc.unknown = append(sc.unknown, a.Type)
			}
		}
	}
	if len(sc.unknown) > 0 {
		// RFC 8489 §6.3.1.1: unknown comprehension-required attributes.
		return h.errorReply(sc, pkt, in, src, pstun.CodeUnknownAttribute, "Unknown Attribute", sc.unknown)
	}
	if p.padding >= 0 && p.responsePort != 0 {
		// PADDING makes big, fragmented responses (RFC 5780 §7.6); sending
		// those to a port the request did not come from would make the
		// server a fragment cannon, so the two are refused together.
		return h.errorReply(sc, pkt, in, src, pstun.CodeBadRequest, "PADDING with RESPONSE-PORT", nil)
	}
	return h.successReply(sc, pkt, classic, &key, in, src, p), true
}

func containsAttr(list []pstun.AttrType, t pstun.AttrType) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

// successReply builds the Binding success response (RFC 8489 §6.3.1.2, RFC
// 5780 §6.1).
func (h *handler) successReply(sc *scratch, pkt []byte, classic bool, key *[16]byte, in int, src netip.AddrPort, p bindingParams) reply {
	from := in
	if p.change&ChangeIP != 0 {
		from ^= sockChangeIP
	}
	if p.change&ChangePort != 0 {
		from ^= sockChangePort
	}
	dst := src
	if p.responsePort != 0 {
		// RFC 5780 §7.5: same IP address, the port the client asked for.
		dst = netip.AddrPortFrom(src.Addr(), p.responsePort)
	}
	origin := h.local[from]
	other := h.local[in^sockOther]

	m := &sc.resp
	m.Reset()
	m.Type = pstun.BindingSuccess
	m.TransactionID = sc.req.TransactionID
	m.WriteHeader()
	if classic {
		// RFC 3489 clients: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS
		// (RFC 3489 §11.2.1, .3, .5) first, and no XOR-MAPPED-ADDRESS: RFC
		// 5389 §12.2 says to send MAPPED-ADDRESS "instead", and an RFC 3489
		// client must fail a response carrying a comprehension-required
		// attribute it does not know (RFC 3489 §11.1).
		m.Add(attrMappedAddress, appendAddr(sc.val[:0], src, nil))
		m.Add(attrSourceAddress, appendAddr(sc.val[:0], origin, nil))
		m.Add(attrChangedAddress, appendAddr(sc.val[:0], other, nil))
	} else {
		m.Add(attrXORMappedAddress, appendAddr(sc.val[:0], src, key))
		// Both forms, so a client can spot an ALG that rewrites one (RFC
		// 5780 §3.6).
		m.Add(attrMappedAddress, appendAddr(sc.val[:0], src, nil))
	}
	m.Add(attrResponseOrigin, appendAddr(sc.val[:0], origin, nil))
	m.Add(attrOtherAddress, appendAddr(sc.val[:0], other, nil))
	if p.padding > 0 {
		// RFC 5780 §7.6: answer with PADDING of the same size. Its value is
		// free-form; zeros it is. (Rounded up to a multiple of 4 for RFC
		// 3489 clients; see errorReply.)
		n := p.padding
		if classic {
			n = (n + 3) &^ 3
		}
		addZeros(m, attrPadding, n)
	}
	if p.fingerprint && !classic {
		addFingerprint(m)
	}
	if classic {
		copy(m.Raw[4:8], pkt[4:8])
	}
	h.responses.Add(1)
	if h.logf != nil {
		h.logf("stun: %v -> %v binding change=%v: %v sends to %v mapped %v",
			src, h.local[in], p.change, origin, dst, src)
	}
	return reply{b: m.Raw, from: from, dst: dst}
}

// errorReply builds an error response (RFC 8489 §6.3.1.1). Errors come from
// the socket the request reached and go to its source: a CHANGE-REQUEST or
// RESPONSE-PORT in a request that failed is not honoured.
//
// RFC 3489 had no attribute padding: its clients step over an attribute by
// its length alone (Debian's stun does), so for them the reason phrase is
// padded with spaces (RFC 3489 §11.2.9) and an odd list of unknown
// attributes repeats one (§11.2.10), keeping every length a multiple of 4.
func (h *handler) errorReply(sc *scratch, pkt []byte, in int, src netip.AddrPort, code pstun.ErrorCode, reason string, unknown []pstun.AttrType) (reply, bool) {
	classic := binary.BigEndian.Uint32(pkt[4:8]) != magicCookie
	m := &sc.resp
	m.Reset()
	m.Type = pstun.NewType(sc.req.Type.Method, pstun.ClassErrorResponse)
	m.TransactionID = sc.req.TransactionID
	m.WriteHeader()
	phrase := reason
	if classic {
		for len(phrase)%4 != 0 {
			phrase += " "
		}
		if len(unknown)%2 == 1 {
			unknown = append(unknown, unknown[0])
		}
	}
	_ = pstun.ErrorCodeAttribute{Code: code, Reason: []byte(phrase)}.AddTo(m)
	if len(unknown) > 0 {
		_ = pstun.UnknownAttributes(unknown).AddTo(m)
	}
	copy(m.Raw[4:8], pkt[4:8]) // the cookie, or an RFC 3489 client's ID
	h.errors.Add(1)
	if h.logf != nil {
		h.logf("stun: %v -> %v: error %d %s %v", src, h.local[in], int(code), reason, unknown)
	}
	return reply{b: m.Raw, from: in, dst: src}, true
}

// addZeros appends an attribute of n zero bytes without a temporary buffer.
func addZeros(m *pstun.Message, t pstun.AttrType, n int) {
	var zeros [256]byte
	if n <= len(zeros) {
		m.Add(t, zeros[:n])
		return
	}
	m.Add(t, make([]byte, n))
}

// addFingerprint appends FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message
// so far, with the length already counting the attribute, XOR 0x5354554e.
func addFingerprint(m *pstun.Message) {
	l := m.Length
	m.Length += 8
	m.WriteLength()
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], crc32.ChecksumIEEE(m.Raw)^fingerprintXOR)
	m.Length = l
	m.Add(attrFingerprint, v[:])
}

func (h *handler) stats() ServerStats {
	return ServerStats{
		Requests:   h.requests.Load(),
		Responses:  h.responses.Load(),
		Errors:     h.errors.Load(),
		Malformed:  h.malformed.Load(),
		Ignored:    h.ignored.Load(),
		SendErrors: h.sendErrors.Load(),
	}
}

// Server is an RFC 5780 STUN server (RFC 5780 §6) that also answers RFC 3489
// clients. It owns four UDP sockets: Primary:Port, Primary:AltPort,
// Alternate:Port and Alternate:AltPort.
type Server struct {
	h       handler
	conns   [4]net.PacketConn
	logf    func(format string, args ...any)
	closing chan struct{}
	once    sync.Once
	serving atomic.Bool
}

// NewServer opens the server's four sockets. It fails, naming the address,
// when one cannot be opened, and closes the ones already opened.
func NewServer(cfg ServerConfig) (*Server, error) {
	if !cfg.Primary.IsValid() || !cfg.Alternate.IsValid() {
		return nil, errors.New("stun: server needs a Primary and an Alternate address")
	}
	pri, alt := cfg.Primary.Unmap(), cfg.Alternate.Unmap()
	if pri == alt {
		return nil, fmt.Errorf("stun: Primary and Alternate are both %v; RFC 5780 needs two addresses", pri)
	}
	if pri.Is4() != alt.Is4() {
		return nil, fmt.Errorf("stun: Primary %v and Alternate %v are of different families", pri, alt)
	}
	port, altPort := cfg.Port, cfg.AltPort
	if port == 0 {
		port = DefaultPort
	}
	if altPort == 0 {
		altPort = DefaultAltPort
	}
	if port == altPort {
		return nil, fmt.Errorf("stun: Port and AltPort are both %d; RFC 5780 needs two ports", port)
	}
	listen := cfg.ListenPacket
	if listen == nil {
		listen = net.ListenPacket
	}
	network := "udp4"
	if !pri.Is4() {
		network = "udp6"
	}
	s := &Server{logf: cfg.Logf, closing: make(chan struct{})}
	s.h.logf = cfg.Logf
	for i := range s.conns {
		a := pri
		if i&sockChangeIP != 0 {
			a = alt
		}
		p := port
		if i&sockChangePort != 0 {
			p = altPort
		}
		s.h.local[i] = netip.AddrPortFrom(a, p)
		c, err := listen(network, s.h.local[i].String())
		if err != nil {
			for _, o := range s.conns[:i] {
				_ = o.Close()
			}
			return nil, fmt.Errorf("stun: listen on %v: %w", s.h.local[i], err)
		}
		s.conns[i] = c
	}
	return s, nil
}

// Addrs returns the four transport addresses in the order Primary:Port,
// Primary:AltPort, Alternate:Port, Alternate:AltPort.
func (s *Server) Addrs() [4]netip.AddrPort { return s.h.local }

// Serve answers requests until ctx is done or Close is called; then it
// closes the sockets and returns nil. It returns an error if called twice or
// if a socket fails for another reason.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("stun: Serve called twice")
	}
	select {
	case <-s.closing:
		return nil
	default:
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	if s.logf != nil {
		s.logf("stun: serving on %v %v %v %v", s.h.local[0], s.h.local[1], s.h.local[2], s.h.local[3])
	}
	errc := make(chan error, len(s.conns))
	for i := range s.conns {
		go func() { errc <- s.readLoop(i) }()
	}
	var first error
	for range s.conns {
		if err := <-errc; err != nil && first == nil {
			first = err
			_ = s.Close() // one socket failing stops the server
		}
	}
	return first
}

func (s *Server) readLoop(i int) error {
	c := s.conns[i]
	udp, _ := c.(*net.UDPConn)
	sc := newScratch()
	buf := make([]byte, 65536)
	for {
		var (
			n   int
			src netip.AddrPort
			err error
		)
		if udp != nil {
			n, src, err = udp.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = c.ReadFrom(buf)
			if err == nil {
				src = addrPortOf(a)
			}
		}
		if err != nil {
			select {
			case <-s.closing:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("stun: read on %v: %w", s.h.local[i], err)
		}
		if !src.IsValid() {
			continue
		}
		r, ok := s.h.handle(sc, buf[:n], i, src)
		if !ok {
			continue
		}
		if err := writeTo(s.conns[r.from], r.b, r.dst); err != nil {
			s.h.sendErrors.Add(1)
			if s.logf != nil {
				s.logf("stun: send from %v to %v: %v", s.h.local[r.from], r.dst, err)
			}
		}
	}
}

// Close stops Serve and closes the sockets. It is safe to call more than
// once.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closing)
		for _, c := range s.conns {
			if e := c.Close(); e != nil && err == nil {
				err = e
			}
		}
	})
	return err
}

// Stats returns the counters.
func (s *Server) Stats() ServerStats { return s.h.stats() }

// addrPortOf converts the net.Addr a PacketConn reports into a netip value;
// the zero AddrPort if it is not UDP.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

// writeTo sends b to dst, without allocating on a *net.UDPConn.
func writeTo(c net.PacketConn, b []byte, dst netip.AddrPort) error {
	if u, ok := c.(*net.UDPConn); ok {
		_, err := u.WriteToUDPAddrPort(b, dst)
		return err
	}
	_, err := c.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	return err
}
