package traverse

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server defaults.
const (
	DefaultMaxRegistrations = 1024
	DefaultRegistrationTTL  = time.Minute
	DefaultMaxTCPConns      = 256
	tcpIdleTimeout          = time.Minute
	tcpMaxBadLines          = 8
)

// ServerConfig configures a rendezvous server.
type ServerConfig struct {
	// Listen is the address and port for both the UDP socket and the TCP
	// listener. Port 0 picks one free for both.
	Listen netip.AddrPort
	// Net opens the sockets; nil means DefaultNet.
	Net Net
	// Logf, when set, gets one line per registration, expiry and failure
	// (never one per malformed message).
	Logf func(format string, args ...any)
	// MaxRegistrations caps the table (UDP and TCP together); a new name
	// beyond it gets an "error: full" reply. Zero means
	// DefaultMaxRegistrations.
	MaxRegistrations int
	// TTL is how long a registration lives after its last register or
	// lookup. Zero means DefaultRegistrationTTL.
	TTL time.Duration
	// MaxTCPConns caps concurrent TCP connections; more are closed at
	// once. Zero means DefaultMaxTCPConns.
	MaxTCPConns int
}

// ServerStats are a server's counters since NewServer.
type ServerStats struct {
	Messages      uint64 // well-formed messages handled
	Malformed     uint64 // datagrams and lines dropped unanswered: not JSON, wrong version, bad fields, unknown type, too long
	Rejected      uint64 // registrations refused because the table was full
	Replies       uint64 // replies sent
	Expired       uint64 // registrations removed after their TTL
	Registrations int    // registrations in the table now (including ones marked gone by bye)
	TCPConns      int    // TCP connections open now
	TCPRefused    uint64 // TCP connections closed because of MaxTCPConns
}

// Server is a rendezvous (referral) server: peers register their candidates
// under a name and look up their partner's. It listens on UDP and TCP at the
// same address and port; the two are separate tables, since a peer's UDP and
// TCP mappings differ.
type Server struct {
	reg     *registry
	udp     net.PacketConn
	tcp     net.Listener
	addr    netip.AddrPort
	logf    func(format string, args ...any)
	maxTCP  int
	closing chan struct{}
	once    sync.Once
	serving atomic.Bool

	mu         sync.Mutex
	conns      map[net.Conn]struct{}
	tcpRefused atomic.Uint64
	wg         sync.WaitGroup
}

// NewServer opens the server's UDP socket and TCP listener on cfg.Listen.
func NewServer(cfg ServerConfig) (*Server, error) {
	if !cfg.Listen.IsValid() {
		return nil, errors.New("traverse: server needs a listen address")
	}
	n := cfg.Net
	if n == nil {
		n = DefaultNet()
	}
	listen := unmap(cfg.Listen)
	network := "udp4"
	if !listen.Addr().Is4() {
		network = "udp6"
	}
	s := &Server{
		reg:     newRegistry(cfg.MaxRegistrations, cfg.TTL, cfg.Logf),
		logf:    cfg.Logf,
		maxTCP:  cfg.MaxTCPConns,
		closing: make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
	if s.maxTCP <= 0 {
		s.maxTCP = DefaultMaxTCPConns
	}
	// With port 0 the UDP port is picked first; if that port is taken for
	// TCP, try again with another.
	tries := 1
	if listen.Port() == 0 {
		tries = 16
	}
	var lastErr error
	for range tries {
		u, err := n.ListenPacket(network, listen.String())
		if err != nil {
			return nil, fmt.Errorf("traverse: listen udp %v: %w", listen, err)
		}
		port := addrPortOf(u.LocalAddr()).Port()
		at := netip.AddrPortFrom(listen.Addr(), port)
		t, err := n.ListenTCP(context.Background(), at.String())
		if err != nil {
			_ = u.Close()
			lastErr = fmt.Errorf("traverse: listen tcp %v: %w", at, err)
			continue
		}
		s.udp, s.tcp, s.addr = u, t, at
		return s, nil
	}
	return nil, lastErr
}

// Addr returns the address and port the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	st := s.reg.stats()
	s.mu.Lock()
	st.TCPConns = len(s.conns)
	s.mu.Unlock()
	st.TCPRefused = s.tcpRefused.Load()
	return st
}

// Serve answers until ctx is done or Close is called, then closes the
// sockets and returns nil; an error if a socket fails otherwise, or if
// called twice.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("traverse: Serve called twice")
	}
	select {
	case <-s.closing:
		return nil
	default:
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	s.printf("rendezvous: serving udp and tcp on %v", s.addr)
	errc := make(chan error, 2)
	go func() { errc <- s.serveUDP() }()
	go func() { errc <- s.acceptTCP() }()
	s.wg.Add(1)
	go s.sweeper()
	var first error
	for range 2 {
		if err := <-errc; err != nil && first == nil {
			first = err
			_ = s.Close()
		}
	}
	s.wg.Wait()
	return first
}

// Close stops Serve and closes the sockets and every TCP connection. It is
// safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closing)
		err = errors.Join(s.udp.Close(), s.tcp.Close())
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	return err
}

func (s *Server) printf(format string, args ...any) {
	if s.logf != nil {
		s.logf(format, args...)
	}
}

func (s *Server) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

func (s *Server) sweeper() {
	defer s.wg.Done()
	every := s.reg.ttl / 4
	if every < 100*time.Millisecond {
		every = 100 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case now := <-t.C:
			s.reg.sweep(now)
		}
	}
}

func (s *Server) serveUDP() error {
	buf := make([]byte, 65536)
	for {
		n, a, err := s.udp.ReadFrom(buf)
		if err != nil {
			if s.closed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("traverse: rendezvous read udp: %w", err)
		}
		src := addrPortOf(a)
		if !src.IsValid() {
			continue
		}
		reply, _ := s.reg.handle(buf[:n], "udp", src, time.Now())
		if reply == nil {
			continue
		}
		if _, err := s.udp.WriteTo(reply, net.UDPAddrFromAddrPort(src)); err != nil {
			s.printf("rendezvous: send to udp %v: %v", src, err)
			continue
		}
		s.reg.replies.Add(1)
	}
}

func (s *Server) acceptTCP() error {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if s.closed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("traverse: rendezvous accept: %w", err)
		}
		s.mu.Lock()
		if s.closed() || len(s.conns) >= s.maxTCP {
			s.mu.Unlock()
			s.tcpRefused.Add(1)
			_ = c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveTCP(c)
	}
}

// serveTCP answers one line-per-message connection. Over-long lines and
// too many malformed ones close it.
func (s *Server) serveTCP(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	src := addrPortOf(c.RemoteAddr())
	if !src.IsValid() {
		return
	}
	br := bufio.NewReaderSize(c, maxMessage+2)
	bad := 0
	for {
		_ = c.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.reg.malformed.Add(1)
			return
		}
		if err != nil {
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			continue
		}
		reply, ok := s.reg.handle(line, "tcp", src, time.Now())
		if !ok {
			if bad++; bad >= tcpMaxBadLines {
				return
			}
			continue
		}
		if reply == nil {
			continue
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(append(reply, '\n')); err != nil {
			return
		}
		s.reg.replies.Add(1)
	}
}

// registry is the server without sockets: the table and the message
// handler. Safe for concurrent use.
type registry struct {
	max  int
	ttl  time.Duration
	logf func(format string, args ...any)

	mu   sync.Mutex
	regs map[regKey]*registration

	messages, malformed, rejected, replies, expired atomic.Uint64
}

type regKey struct{ proto, name string }

type registration struct {
	sid       string
	cands     []Candidate // declared by the peer
	observed  netip.AddrPort
	expires   time.Time
	gone      bool   // said bye: no longer returned as found, result kept until expiry
	result    string // resultReceived or resultNothing, about resultFor
	resultFor string
	// resultSid is the session of resultFor the result is about: a result
	// from an earlier session says nothing about the partner's next run.
	resultSid string
}

func newRegistry(max int, ttl time.Duration, logf func(string, ...any)) *registry {
	if max <= 0 {
		max = DefaultMaxRegistrations
	}
	if ttl <= 0 {
		ttl = DefaultRegistrationTTL
	}
	return &registry{max: max, ttl: ttl, logf: logf, regs: make(map[regKey]*registration)}
}

func (r *registry) printf(format string, args ...any) {
	if r.logf != nil {
		r.logf(format, args...)
	}
}

func (r *registry) stats() ServerStats {
	r.mu.Lock()
	n := len(r.regs)
	r.mu.Unlock()
	return ServerStats{
		Messages:      r.messages.Load(),
		Malformed:     r.malformed.Load(),
		Rejected:      r.rejected.Load(),
		Replies:       r.replies.Load(),
		Expired:       r.expired.Load(),
		Registrations: n,
	}
}

// sweep removes expired registrations.
func (r *registry) sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
}

func (r *registry) sweepLocked(now time.Time) {
	for k, e := range r.regs {
		if now.After(e.expires) {
			delete(r.regs, k)
			r.expired.Add(1)
			r.printf("rendezvous: %s %q at %v expired", k.proto, k.name, e.observed)
		}
	}
}

// live returns the unexpired registration for k, removing an expired one.
func (r *registry) live(k regKey, now time.Time) *registration {
	e := r.regs[k]
	if e != nil && now.After(e.expires) {
		delete(r.regs, k)
		r.expired.Add(1)
		return nil
	}
	return e
}

// handle turns one message received over proto ("udp" or "tcp") from src
// into at most one reply. valid is false for garbage, which is counted and
// never answered.
func (r *registry) handle(b []byte, proto string, src netip.AddrPort, now time.Time) (reply []byte, valid bool) {
	m, err := decode(b)
	if err != nil {
		r.malformed.Add(1)
		return nil, false
	}
	switch m.T {
	case tRegister:
		if !ValidName(m.Name) {
			break
		}
		r.messages.Add(1)
		return r.register(m, proto, src, now), true
	case tLookup:
		if !ValidName(m.Name) || !ValidName(m.Peer) {
			break
		}
		switch m.Result {
		case "", resultReceived, resultNothing:
		default:
			r.malformed.Add(1)
			return nil, false
		}
		r.messages.Add(1)
		return r.lookup(m, proto, src, now), true
	case tBye:
		if !ValidName(m.Name) {
			break
		}
		r.messages.Add(1)
		r.bye(m, proto, src, now)
		return nil, true
	}
	r.malformed.Add(1)
	return nil, false
}

func (r *registry) register(m message, proto string, src netip.AddrPort, now time.Time) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := regKey{proto, m.Name}
	e := r.live(k, now)
	if e == nil && len(r.regs) >= r.max {
		r.sweepLocked(now)
		if len(r.regs) >= r.max {
			r.rejected.Add(1)
			return encode(message{T: tError, Name: m.Name, Err: errFull})
		}
	}
	if e == nil || e.sid != m.Sid || e.observed != src {
		if e == nil || e.observed != src {
			r.printf("rendezvous: %s %q registered from %v with %d candidates", proto, m.Name, src, len(m.Cands))
		}
		e = &registration{sid: m.Sid, observed: src}
		r.regs[k] = e
	}
	e.cands = append([]Candidate(nil), m.Cands...)
	e.expires = now.Add(r.ttl)
	e.gone = false
	return encode(message{T: tRegistered, Name: m.Name, Addr: src})
}

func (r *registry) lookup(m message, proto string, src netip.AddrPort, now time.Time) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	me := r.live(regKey{proto, m.Name}, now)
	if me == nil || me.observed != src || me.gone {
		// Answer only registered sources: a lookup reply is larger than
		// the request, and must not be aimed at a spoofed address.
		return encode(message{T: tError, Name: m.Name, Err: errNotRegistered})
	}
	me.expires = now.Add(r.ttl)
	p := r.live(regKey{proto, m.Peer}, now)
	if m.Result != "" {
		me.result, me.resultFor, me.resultSid = m.Result, m.Peer, ""
		if p != nil {
			me.resultSid = p.sid
		}
	}
	out := message{T: tPeer, Name: m.Name, Peer: m.Peer}
	if p != nil {
		if !p.gone {
			out.Found = true
			out.Sid = p.sid
			out.Cands = append([]Candidate(nil), p.cands...)
			if len(out.Cands) == maxCandidates {
				out.Cands = out.Cands[:maxCandidates-1]
			}
			out.Cands = appendCandidate(out.Cands, Candidate{Kind: KindSrflx, Addr: p.observed})
		}
		if p.resultFor == m.Name && p.resultSid == me.sid {
			out.Result = p.result
		}
	}
	return encode(out)
}

func (r *registry) bye(m message, proto string, src netip.AddrPort, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.live(regKey{proto, m.Name}, now)
	if e == nil || e.observed != src || (m.Sid != "" && m.Sid != e.sid) {
		return
	}
	if !e.gone {
		r.printf("rendezvous: %s %q at %v said bye", proto, m.Name, src)
	}
	e.gone = true
	e.cands = nil
}
