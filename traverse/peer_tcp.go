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
	"time"
)

// TCP pacing.
const (
	dialAttempt    = 1500 * time.Millisecond // one connect(2), SYN retransmissions included
	dialPause      = 150 * time.Millisecond  // between attempts to one candidate
	handshakeLimit = 2 * time.Second
	serverRedial   = 300 * time.Millisecond
)

// tcpEvent is what the goroutines of a TCP run tell its loop.
type tcpEvent struct {
	server     *message // a line from the rendezvous server
	serverDown bool     // the rendezvous connection ended
	hs         *tcpConn // a connection completed the handshake
	hello      *tcpConn // (controlled side) the controlling peer said hello on this one
	helloMsg   message  // with hello
	exchanged  *exchangeResult
	dialErr    error     // first failure dialing a candidate, for the log
	dialTo     Candidate // with dialErr
}

// tcpConn is a connection to the peer that completed the handshake.
type tcpConn struct {
	c    net.Conn
	br   *bufio.Reader
	from netip.AddrPort // the peer's address as we see it
	at   netip.AddrPort // our address as the peer sees it
}

// tcpRun is the TCP half of a peer: a listener, a rendezvous connection and
// dials, all from one local port (SO_REUSEADDR+SO_REUSEPORT), so the server
// observed the mapping the dials use.
type tcpRun struct {
	*peer
	ln          net.Listener
	local       netip.AddrPort // bind address with the listener's port
	controlling bool           // lower name: picks the connection

	events chan tcpEvent
	done   chan struct{}
	wg     sync.WaitGroup

	runCtx    context.Context // ends with the run
	stopRun   context.CancelFunc
	punchCtx  context.Context // ends when punching stops
	stopPunch context.CancelFunc
	dialing   map[netip.AddrPort]bool
	epoch     int

	exchanging bool
	lingerEnd  time.Time

	mu     sync.Mutex
	srv    net.Conn
	conns  map[net.Conn]struct{}
	closed bool
}

func (p *peer) runTCP(ctx context.Context) error {
	bind := p.bind()
	ln, err := p.net.ListenTCP(ctx, bind.String())
	if err != nil {
		return fmt.Errorf("traverse: listen tcp %v: %w", bind, err)
	}
	t := &tcpRun{
		peer:        p,
		ln:          ln,
		local:       netip.AddrPortFrom(bind.Addr(), addrPortOf(ln.Addr()).Port()),
		controlling: p.cfg.Name < p.cfg.Connect,
		events:      make(chan tcpEvent, 64),
		done:        make(chan struct{}),
		dialing:     make(map[netip.AddrPort]bool),
		conns:       make(map[net.Conn]struct{}),
	}
	t.runCtx, t.stopRun = context.WithCancel(ctx)
	t.punchCtx, t.stopPunch = context.WithCancel(t.runCtx)
	p.addHostCandidate(addrPortOf(ln.Addr()))
	p.send = t.sendServer
	defer t.cleanup()

	t.wg.Add(2)
	go t.serverLoop()
	go t.acceptLoop()

	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		now := time.Now()
		t.step(now)
		if p.phase == phaseDone {
			break
		}
		select {
		case <-ctx.Done():
			t.bye()
			return ctx.Err()
		case ev := <-t.events:
			t.handle(ev, time.Now())
		case <-tick.C:
		}
	}
	t.bye()
	return nil
}

// cleanup stops every goroutine and closes every socket.
func (t *tcpRun) cleanup() {
	close(t.done)
	t.stopRun()
	_ = t.ln.Close()
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// track registers c for cleanup; false (and c closed) once cleanup began.
func (t *tcpRun) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *tcpRun) drop(c net.Conn) {
	_ = c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// deliver hands ev to the loop unless the run is over.
func (t *tcpRun) deliver(ev tcpEvent) bool {
	select {
	case t.events <- ev:
		return true
	case <-t.done:
		return false
	}
}

func (t *tcpRun) sendServer(m message) {
	t.mu.Lock()
	c := t.srv
	t.mu.Unlock()
	if c == nil {
		return
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(append(encode(m), '\n')); err != nil {
		t.logf("peer %s: send %s to %v: %v", t.cfg.Name, m.T, t.server, err)
	}
}

func (t *tcpRun) bye() {
	if t.everRegistered {
		t.sendServer(message{T: tBye, Name: t.cfg.Name, Sid: t.sid})
	}
}

// serverLoop keeps a connection to the rendezvous server from the punching
// port and delivers its lines.
func (t *tcpRun) serverLoop() {
	defer t.wg.Done()
	logged := false
	for {
		select {
		case <-t.done:
			return
		default:
		}
		dctx, cancel := context.WithTimeout(t.runCtx, dialAttempt)
		c, err := t.net.DialTCP(dctx, t.local, t.server)
		cancel()
		if err != nil {
			if !logged {
				t.logf("peer %s: connect to rendezvous %v from %v: %v", t.cfg.Name, t.server, t.local, err)
				logged = true
			}
			select {
			case <-t.done:
				return
			case <-time.After(serverRedial):
			}
			continue
		}
		if !t.track(c) {
			return
		}
		t.mu.Lock()
		t.srv = c
		t.mu.Unlock()
		br := bufio.NewReaderSize(c, maxMessage+2)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				break
			}
			m, err := decode(bytes.TrimRight(line, "\r\n"))
			if err != nil {
				continue
			}
			if !t.deliver(tcpEvent{server: &m}) {
				return
			}
		}
		t.mu.Lock()
		t.srv = nil
		t.mu.Unlock()
		t.drop(c)
		if !t.deliver(tcpEvent{serverDown: true}) {
			return
		}
	}
}

func (t *tcpRun) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if !t.track(c) {
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.handshake(c)
		}()
	}
}

// dialLoop dials one remote candidate from the punching port until a
// connection completes the handshake or punching stops.
func (t *tcpRun) dialLoop(cand Candidate) {
	defer t.wg.Done()
	reported := false
	for t.punchCtx.Err() == nil {
		dctx, cancel := context.WithTimeout(t.punchCtx, dialAttempt)
		c, err := t.net.DialTCP(dctx, t.local, cand.Addr)
		cancel()
		if err == nil {
			if !t.track(c) {
				return
			}
			if t.handshake(c) {
				return
			}
		} else if !reported && t.punchCtx.Err() == nil {
			reported = true
			if !t.deliver(tcpEvent{dialErr: err, dialTo: cand}) {
				return
			}
		}
		select {
		case <-t.punchCtx.Done():
			return
		case <-time.After(dialPause):
		}
	}
}

// handshake exchanges names on a fresh connection: each side writes
// {"t":"hs","from":..,"to":..,"addr":<the other's address as seen>} and
// reads the other's. On the controlled side it then waits for the
// controlling side's hello. It reports whether the handshake completed.
func (t *tcpRun) handshake(c net.Conn) bool {
	from := addrPortOf(c.RemoteAddr())
	limit := time.Now().Add(handshakeLimit)
	if limit.After(t.deadline) {
		limit = t.deadline
	}
	_ = c.SetDeadline(limit)
	hs := message{T: tHandshake, From: t.cfg.Name, To: t.cfg.Connect, Sid: t.sid, Addr: from}
	if _, err := c.Write(append(encode(hs), '\n')); err != nil {
		t.drop(c)
		return false
	}
	br := bufio.NewReaderSize(c, maxMessage+2)
	m, err := readLine(br)
	if err != nil || m.T != tHandshake || m.From != t.cfg.Connect || m.To != t.cfg.Name {
		t.drop(c)
		return false
	}
	tc := &tcpConn{c: c, br: br, from: from, at: unmap(m.Addr)}
	_ = c.SetDeadline(time.Time{})
	if !t.deliver(tcpEvent{hs: tc}) {
		return true
	}
	if t.controlling {
		return true // the loop owns the connection now
	}
	_ = c.SetReadDeadline(t.deadline)
	m, err = readLine(br)
	if err != nil || m.T != tHello || m.From != t.cfg.Connect || m.To != t.cfg.Name {
		t.drop(c)
		return true
	}
	t.deliver(tcpEvent{hello: tc, helloMsg: m})
	return true
}

func readLine(br *bufio.Reader) (message, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return message{}, err
	}
	return decode(bytes.TrimRight(line, "\r\n"))
}

func (t *tcpRun) writeLine(c net.Conn, m message) error {
	_, err := c.Write(append(encode(m), '\n'))
	return err
}

// step runs timers, starts dialers and sends to the server.
func (t *tcpRun) step(now time.Time) {
	t.timers(now)
	switch t.phase {
	case phasePunch:
		if t.epoch != t.candsEpoch {
			t.epoch = t.candsEpoch
			for _, c := range t.remoteCands {
				if !t.dialing[c.Addr] {
					t.dialing[c.Addr] = true
					t.wg.Add(1)
					go t.dialLoop(c)
				}
			}
		}
	case phaseResult:
		t.stopPunch()
	case phaseLinger:
		// The exchange is over; wait a moment for the partner's
		// candidates if its connection came before we knew them.
		if t.found || !now.Before(t.lingerEnd) {
			t.phase = phaseDone
		}
	}
	t.rendezvousTick(now)
}

func (t *tcpRun) handle(ev tcpEvent, now time.Time) {
	switch {
	case ev.server != nil:
		t.handleServer(*ev.server)
	case ev.serverDown:
		t.registered = false
		t.lastRegister = time.Time{}
	case ev.dialErr != nil:
		t.logf("peer %s: dial %v from %v: %v (retrying)", t.cfg.Name, ev.dialTo, t.local, ev.dialErr)
	case ev.hs != nil:
		if t.rep.Connected || t.phase == phaseDone {
			if t.controlling {
				t.drop(ev.hs.c) // the controlled side may still wait on it: closing ends that
			}
			return
		}
		t.connected(now, ev.hs.from, ev.hs.at)
		if t.controlling {
			t.startExchange(ev.hs, nil)
		}
	case ev.hello != nil:
		if t.phase != phaseExchange || t.exchanging {
			t.drop(ev.hello.c)
			return
		}
		// The controlling side chose this connection: report it.
		t.rep.Remote = matchCandidate(t.remoteCands, ev.hello.from)
		t.rep.Local = matchCandidate(t.localCands, ev.hello.at)
		t.startExchange(ev.hello, &ev.helloMsg)
	case ev.exchanged != nil:
		x := ev.exchanged
		if x.text != "" {
			t.rep.Message = x.text
			t.logf("peer %s: %s says %q", t.cfg.Name, t.cfg.Connect, x.text)
		}
		t.rep.MessageExchanged = x.ok
		if x.err != nil {
			t.rep.Detail = fmt.Sprintf("connected, but the message exchange with %s failed: %v", t.cfg.Connect, x.err)
			t.logf("peer %s: %s", t.cfg.Name, t.rep.Detail)
		}
		t.phase = phaseLinger
		t.lingerEnd = now.Add(maxLinger)
	}
}

// exchangeResult is what an exchange goroutine reports.
type exchangeResult struct {
	text string // the peer's hello
	ok   bool   // the message went both ways
	err  error
}

// startExchange stops punching and runs the message exchange on the chosen
// connection in a goroutine, which reports an exchangeResult.
func (t *tcpRun) startExchange(tc *tcpConn, peerHello *message) {
	t.exchanging = true
	t.stopPunch()
	_ = t.ln.Close()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		x := t.exchange(tc, peerHello)
		t.deliver(tcpEvent{exchanged: &x})
	}()
}

// exchange runs the message exchange. Controlling (peerHello nil): send
// hello, read the peer's hello, send hello-ack. Controlled: send hello, read
// hello-ack.
func (t *tcpRun) exchange(tc *tcpConn, peerHello *message) exchangeResult {
	_ = tc.c.SetDeadline(t.deadline)
	hello := message{T: tHello, From: t.cfg.Name, To: t.cfg.Connect, Sid: t.sid, Text: "hello from " + t.cfg.Name}
	ack := message{T: tHelloAck, From: t.cfg.Name, To: t.cfg.Connect, Sid: t.sid}
	var x exchangeResult
	if err := t.writeLine(tc.c, hello); err != nil {
		x.err = fmt.Errorf("send hello: %w", err)
		return x
	}
	if peerHello == nil {
		m, err := t.readPeer(tc.br, tHello)
		if err != nil {
			x.err = fmt.Errorf("read hello: %w", err)
			return x
		}
		x.text, x.ok = m.Text, true // the peer answered our hello with its own
		if err := t.writeLine(tc.c, ack); err != nil {
			x.err = fmt.Errorf("send hello-ack: %w", err)
			return x
		}
		// Wait for the peer to close, so our close cannot cut the ack off.
		_ = tc.c.SetReadDeadline(time.Now().Add(maxLinger))
		_, _ = tc.br.ReadByte()
		return x
	}
	x.text = peerHello.Text
	if _, err := t.readPeer(tc.br, tHelloAck); err != nil {
		x.err = fmt.Errorf("read hello-ack: %w", err)
		return x
	}
	x.ok = true
	return x
}

// readPeer reads the next line and checks it is a message of type typ from
// the peer to us.
func (t *tcpRun) readPeer(br *bufio.Reader, typ string) (message, error) {
	m, err := readLine(br)
	if err == nil && (m.T != typ || m.From != t.cfg.Connect || m.To != t.cfg.Name) {
		err = fmt.Errorf("unexpected %q message", m.T)
	}
	return m, err
}
