package traverse

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

type udpPacket struct {
	m    message
	from netip.AddrPort
}

// udpRun is the UDP half of a peer: one socket for STUN, the rendezvous
// server and punching, so that every server saw the mapping the punches use.
type udpRun struct {
	*peer
	conn net.PacketConn

	remote     netip.AddrPort   // the peer's address on the connected pair
	prflx      []netip.AddrPort // sources of checks that were no candidate, checked back (not permissive)
	lastPunch  time.Time
	lastHello  time.Time
	gotHello   bool
	helloAcked bool
	lingerEnd  time.Time
}

func (p *peer) runUDP(ctx context.Context) error {
	network := "udp4"
	if !p.server.Addr().Is4() {
		network = "udp6"
	}
	bind := p.bind()
	conn, err := p.net.ListenPacket(network, bind.String())
	if err != nil {
		return fmt.Errorf("traverse: listen %s %v: %w", network, bind, err)
	}
	u := &udpRun{peer: p, conn: conn}
	p.addHostCandidate(addrPortOf(conn.LocalAddr()))
	if p.cfg.STUN.IsValid() {
		p.stunCandidate(ctx, conn) // before the reader: Binding must be the only reader
	}

	events := make(chan udpPacket, 256)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		u.read(events)
	}()
	defer func() {
		_ = conn.Close()
		<-readerDone
	}()
	p.send = func(m message) { u.write(m, p.server) }

	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		now := time.Now()
		u.step(now)
		if p.phase == phaseDone {
			break
		}
		select {
		case <-ctx.Done():
			u.bye()
			return ctx.Err()
		case ev := <-events:
			u.handle(ev, time.Now())
		case <-tick.C:
		}
	}
	u.bye()
	return nil
}

// read delivers every well-formed message until the socket closes; a full
// channel drops (the protocol retransmits).
func (u *udpRun) read(events chan<- udpPacket) {
	buf := make([]byte, 65536)
	for {
		n, a, err := u.conn.ReadFrom(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		from := addrPortOf(a)
		m, err := decode(buf[:n])
		if err != nil || !from.IsValid() {
			continue
		}
		select {
		case events <- udpPacket{m: m, from: from}:
		default:
		}
	}
}

func (u *udpRun) write(m message, to netip.AddrPort) {
	if _, err := u.conn.WriteTo(encode(m), net.UDPAddrFromAddrPort(to)); err != nil {
		u.logf("peer %s: send %s to %v: %v", u.cfg.Name, m.T, to, err)
	}
}

// toPeer sends a peer-to-peer message of type t to addr.
func (u *udpRun) toPeer(t string, addr netip.AddrPort, text string) {
	u.write(message{T: t, From: u.cfg.Name, To: u.cfg.Connect, Sid: u.sid, Addr: addr, Text: text}, addr)
}

// ack answers a punch from addr that was sent to check.
func (u *udpRun) ack(addr, check netip.AddrPort) {
	u.write(message{T: tAck, From: u.cfg.Name, To: u.cfg.Connect, Sid: u.sid, Addr: addr, Check: check}, addr)
}

// punchAll sends a check to every remote candidate and checked-back
// peer-reflexive address, once to each: a check's source learnt before
// the partner's candidates is often one of them.
func (u *udpRun) punchAll() {
	for _, c := range u.remoteCands {
		u.toPeer(tPunch, c.Addr, "")
	}
	for _, a := range u.prflx {
		if !u.isRemoteCand(a) {
			u.toPeer(tPunch, a, "")
		}
	}
}

// isRemoteCand reports whether a is one of the partner's candidates.
func (u *udpRun) isRemoteCand(a netip.AddrPort) bool {
	return slices.ContainsFunc(u.remoteCands, func(c Candidate) bool { return c.Addr == a })
}

// checked reports whether we send checks to a.
func (u *udpRun) checked(a netip.AddrPort) bool {
	return slices.Contains(u.prflx, a) || u.isRemoteCand(a)
}

func (u *udpRun) bye() {
	if !u.everRegistered {
		return
	}
	m := message{T: tBye, Name: u.cfg.Name, Sid: u.sid}
	u.write(m, u.server)
	u.write(m, u.server)
}

// step runs timers and periodic sends.
func (u *udpRun) step(now time.Time) {
	u.timers(now)
	switch u.phase {
	case phasePunch:
		if now.Sub(u.lastPunch) >= punchEvery {
			u.lastPunch = now
			u.punchAll()
		}
	case phaseExchange:
		// An RFC 8445 agent goes on checking: the partner may still
		// need checks from us to open our NAT for its own.
		if !u.cfg.Permissive && now.Sub(u.lastPunch) >= punchEvery {
			u.lastPunch = now
			u.punchAll()
		}
		if !u.helloAcked && now.Sub(u.lastHello) >= helloEvery {
			u.lastHello = now
			u.toPeer(tHello, u.remote, "hello from "+u.cfg.Name)
		}
	case phaseLinger:
		if !now.Before(u.lingerEnd) {
			u.phase = phaseDone
		}
	}
	u.rendezvousTick(now)
}

// handle takes one message.
func (u *udpRun) handle(ev udpPacket, now time.Time) {
	if ev.from == u.server {
		u.handleServer(ev.m)
		return
	}
	m := ev.m
	if m.From != u.cfg.Connect || m.To != u.cfg.Name {
		return
	}
	switch m.T {
	case tPunch, tAck, tHello, tHelloAck:
	default:
		return
	}
	if u.cfg.Permissive {
		if !u.rep.Connected && u.phase != phaseDone {
			u.remote = ev.from
			u.connected(now, ev.from, m.Addr)
			u.lastHello = time.Time{}
		}
	} else if !u.check(ev, now) {
		return
	}
	u.exchange(ev, now)
}

// check handles checks and their responses as an RFC 8445 agent does, and
// reports whether m belongs to the message exchange (we are connected).
func (u *udpRun) check(ev udpPacket, now time.Time) bool {
	m := ev.m
	switch m.T {
	case tPunch:
		u.ack(ev.from, m.Addr)
		if !u.heard {
			u.heard = true
			if !u.rep.Connected {
				u.myResult = resultReceived
				if u.registered {
					u.sendLookup(now) // tell the partner's side we heard it
				}
			}
		}
		// §7.3.1.3: the source is a peer-reflexive candidate; §7.3.1.4:
		// a triggered check goes back to it at once.
		if !u.checked(ev.from) && len(u.prflx) < maxPrflx && u.phase != phaseDone {
			u.prflx = append(u.prflx, ev.from)
			u.logf("peer %s: check from %v, a peer-reflexive candidate: checking it", u.cfg.Name, ev.from)
			u.toPeer(tPunch, ev.from, "")
		}
		return false
	case tAck:
		if u.rep.Connected || u.phase == phaseDone {
			return false
		}
		// §7.2.5.2.1: the response must come from where the check went.
		if m.Check != ev.from || !u.checked(ev.from) {
			if u.strayAcks == 0 {
				u.logf("peer %s: response to our check to %v came from %v: discarded", u.cfg.Name, m.Check, ev.from)
			}
			u.strayAcks++
			return false
		}
		u.remote = ev.from
		u.connected(now, ev.from, m.Addr)
		u.lastHello = time.Time{}
		return false
	}
	return u.rep.Connected
}

// exchange takes a punch's ack duty (permissive) and the message exchange.
func (u *udpRun) exchange(ev udpPacket, now time.Time) {
	m := ev.m
	switch m.T {
	case tPunch:
		u.ack(ev.from, m.Addr)
	case tHello:
		if !u.gotHello {
			u.gotHello = true
			u.rep.Message = m.Text
			u.logf("peer %s: %s says %q", u.cfg.Name, u.cfg.Connect, m.Text)
		}
		u.toPeer(tHelloAck, ev.from, "")
		if u.phase == phaseLinger {
			// The partner asks again: our ack was lost. Stay while it
			// asks, longer than the first time (the link is lossy), so
			// its exchange can complete too.
			u.lingerEnd = now.Add(2 * maxLinger)
			if u.lingerEnd.After(u.deadline) {
				u.lingerEnd = u.deadline
			}
		}
	case tHelloAck:
		u.helloAcked = true
	}
	if u.phase == phaseExchange && u.gotHello && u.helloAcked {
		u.rep.MessageExchanged = true
		u.phase = phaseLinger
		u.lingerEnd = now.Add(maxLinger)
		if u.lingerEnd.After(u.deadline) {
			u.lingerEnd = u.deadline
		}
	}
}
