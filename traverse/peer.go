package traverse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/gonat/gonat/stun"
)

// Peer defaults and pacing.
const (
	DefaultTimeout  = 10 * time.Second
	MaxPredictPorts = 1024

	tickEvery     = 20 * time.Millisecond
	registerEvery = 250 * time.Millisecond
	lookupEvery   = 200 * time.Millisecond // while waiting for the partner, and for its result
	refreshEvery  = time.Second            // while punching: the partner may have re-registered
	punchEvery    = 80 * time.Millisecond
	helloEvery    = 100 * time.Millisecond
	reportEvery   = 250 * time.Millisecond // resending "received" to the server
	maxLinger     = 500 * time.Millisecond
)

// Reasons a Report gives when not connected. Rendezvous failures start
// with "rendezvous: ".
const (
	// ReasonTimeout: no packet (UDP) or connection (TCP) from the peer
	// arrived, and the peer did not report receiving nothing from us.
	ReasonTimeout = "timeout"
	// ReasonFiltered: nothing arrived from the peer, and the peer reports
	// (through the rendezvous server) that nothing from us arrived either.
	ReasonFiltered = "filtered"
	// ReasonAsymmetric (UDP, not permissive): responses to our checks
	// arrived, but from other addresses than the checks were sent to,
	// which an RFC 8445 agent discards (§7.2.5.2.1).
	ReasonAsymmetric = "asymmetric"
)

// maxPrflx bounds the peer-reflexive candidates a peer checks back: behind
// an address-and-port-dependent NAT each check answered comes back from
// yet another mapping.
const maxPrflx = 16

// PeerConfig configures one hole-punching run.
type PeerConfig struct {
	// Rendezvous is the rendezvous server's address and port.
	Rendezvous netip.AddrPort
	// Name is what this peer registers as; Connect the name of the peer to
	// punch to. Both must satisfy ValidName and differ.
	Name, Connect string
	// TCP selects TCP simultaneous open instead of UDP punching.
	TCP bool
	// STUN, when valid, is a STUN server (RFC 5389/8489, e.g. gonat's RFC
	// 5780 server) asked from the punching socket for a server-reflexive
	// candidate, in UDP mode. The rendezvous server's observation is a
	// srflx candidate either way. Ignored in TCP mode.
	STUN netip.AddrPort
	// PredictPorts, when positive, adds to each of the peer's srflx
	// candidates the ports +1..+PredictPorts as "predicted" candidates,
	// for a peer behind a symmetric NAT that assigns ports sequentially.
	PredictPorts int
	// Timeout bounds the whole run; zero means DefaultTimeout.
	Timeout time.Duration
	// Permissive (UDP) takes any packet from the partner, from any source,
	// as the connection. By default a peer does what an RFC 8445 agent
	// does: it is connected when a response to one of its own checks
	// (punches) comes back from the address the check was sent to
	// (§7.2.5.2.1), and it checks back the source of a check it did not
	// know as a peer-reflexive candidate (§7.3.1.3, §7.3.1.4).
	Permissive bool
	// Local is the address and port to bind; the zero value means the
	// wildcard address of the rendezvous server's family and any port.
	Local netip.AddrPort
	// Net opens the sockets; nil means DefaultNet.
	Net Net
	// Logf, when set, gets one line per step.
	Logf func(format string, args ...any)
}

// Report is the outcome of RunPeer.
type Report struct {
	Name  string `json:"name"`
	Peer  string `json:"peer"`
	Proto string `json:"proto"` // "udp" or "tcp"
	// Connected (UDP): a response to one of our checks came back from the
	// address we sent it to; with PeerConfig.Permissive, any packet from
	// the peer arrived. TCP: a handshaken connection.
	Connected bool `json:"connected"`
	// Local is the local candidate the peer reached us at (as the peer
	// addressed it), Remote the peer's address we heard it from; either
	// is KindPrflx when it is no announced candidate.
	Local  Candidate `json:"local,omitzero"`
	Remote Candidate `json:"remote,omitzero"`
	// Elapsed is the time from the first punch (UDP) or dial (TCP) to the
	// connection, zero when the partner's arrived before we sent any; when
	// not connected, how long punching lasted.
	Elapsed time.Duration `json:"elapsed_ns"`
	// MessageExchanged: after connecting, a message went both ways
	// ("hello from NAME" each way, each acknowledged).
	MessageExchanged bool `json:"message_exchanged"`
	// Message is the message received from the peer.
	Message string `json:"message,omitempty"`
	// Reason, when not connected: ReasonTimeout, ReasonFiltered,
	// ReasonAsymmetric, or
	// "rendezvous: ..." when the peers never learned each other's
	// candidates.
	Reason string `json:"reason,omitempty"`
	// Detail is a sentence for people about the outcome.
	Detail           string      `json:"detail,omitempty"`
	LocalCandidates  []Candidate `json:"local_candidates"`
	RemoteCandidates []Candidate `json:"remote_candidates"`
}

// RunPeer registers cfg.Name with the rendezvous server, waits for
// cfg.Connect to register, punches to it and exchanges a message, all
// within cfg.Timeout. The error is for bad configuration, sockets that
// cannot be opened, and ctx ending early; a punch that fails is a Report
// with Connected false and a Reason.
func RunPeer(ctx context.Context, cfg PeerConfig) (Report, error) {
	rep := Report{Name: cfg.Name, Peer: cfg.Connect, Proto: "udp"}
	if cfg.TCP {
		rep.Proto = "tcp"
	}
	if err := checkPeerConfig(&cfg); err != nil {
		return rep, err
	}
	p := &peer{cfg: cfg, rep: rep, net: cfg.Net, server: unmap(cfg.Rendezvous)}
	if p.net == nil {
		p.net = DefaultNet()
	}
	var sid [8]byte
	_, _ = rand.Read(sid[:])
	p.sid = hex.EncodeToString(sid[:])
	p.start = time.Now()
	p.deadline = p.start.Add(cfg.Timeout)
	// Keep the last part of the run for comparing notes through the server.
	window := min(max(cfg.Timeout/5, 300*time.Millisecond), 2*time.Second)
	p.punchDeadline = p.deadline.Add(-window)
	var err error
	if cfg.TCP {
		err = p.runTCP(ctx)
	} else {
		err = p.runUDP(ctx)
	}
	p.rep.LocalCandidates = nonNil(p.localCands)
	p.rep.RemoteCandidates = nonNil(p.remoteCands)
	return p.rep, err
}

func nonNil(c []Candidate) []Candidate {
	if c == nil {
		return []Candidate{}
	}
	return slices.Clone(c)
}

func checkPeerConfig(cfg *PeerConfig) error {
	switch {
	case !cfg.Rendezvous.IsValid() || cfg.Rendezvous.Port() == 0:
		return errors.New("traverse: peer needs a rendezvous server address and port")
	case !ValidName(cfg.Name):
		return fmt.Errorf("traverse: invalid name %q (1-64 of A-Z a-z 0-9 . _ -)", cfg.Name)
	case !ValidName(cfg.Connect):
		return fmt.Errorf("traverse: invalid peer name %q (1-64 of A-Z a-z 0-9 . _ -)", cfg.Connect)
	case cfg.Name == cfg.Connect:
		return fmt.Errorf("traverse: name and peer are both %q", cfg.Name)
	case cfg.PredictPorts < 0 || cfg.PredictPorts > MaxPredictPorts:
		return fmt.Errorf("traverse: PredictPorts %d out of 0..%d", cfg.PredictPorts, MaxPredictPorts)
	case cfg.Timeout < 0:
		return fmt.Errorf("traverse: negative Timeout %v", cfg.Timeout)
	case cfg.Local.IsValid() && cfg.Local.Addr().Unmap().Is4() != cfg.Rendezvous.Addr().Unmap().Is4():
		return fmt.Errorf("traverse: Local %v and rendezvous %v are of different families", cfg.Local, cfg.Rendezvous)
	case cfg.STUN.IsValid() && cfg.STUN.Addr().Unmap().Is4() != cfg.Rendezvous.Addr().Unmap().Is4():
		return fmt.Errorf("traverse: STUN %v and rendezvous %v are of different families", cfg.STUN, cfg.Rendezvous)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return nil
}

type phase int

const (
	phaseRendezvous phase = iota // registering and waiting for the partner
	phasePunch                   // sending punches (UDP) or dialing (TCP)
	phaseExchange                // connected: exchanging the message
	phaseLinger                  // message exchanged: still answering the peer for a moment
	phaseResult                  // punching failed: learning the partner's result
	phaseDone
)

// peer is the state of one RunPeer: the rendezvous client, shared by UDP and
// TCP, and the outcome.
type peer struct {
	cfg    PeerConfig
	net    Net
	server netip.AddrPort
	sid    string
	rep    Report

	start, deadline, punchDeadline time.Time
	punchStart                     time.Time

	phase phase
	send  func(message) // to the rendezvous server

	registered, everRegistered, full bool
	lastRegister, lastLookup         time.Time
	found                            bool
	peerResult                       string // the partner's result about us
	myResult                         string
	resultSends                      int
	resultAcked                      bool

	localCands  []Candidate
	remoteCands []Candidate
	candsEpoch  int // bumped when remoteCands changes

	// heard: a check from the peer arrived (UDP); strayAcks: responses
	// to our checks that came from elsewhere than the check went.
	heard     bool
	strayAcks int
}

func (p *peer) logf(format string, args ...any) {
	if p.cfg.Logf != nil {
		p.cfg.Logf(format, args...)
	}
}

// bind returns the address to bind the punching socket to.
func (p *peer) bind() netip.AddrPort {
	if p.cfg.Local.IsValid() {
		return unmap(p.cfg.Local)
	}
	if p.server.Addr().Is4() {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
}

// addHostCandidate adds the host candidate for a socket bound to local: its
// own address, or the address routing picks towards the rendezvous server
// when bound to the wildcard.
func (p *peer) addHostCandidate(local netip.AddrPort) {
	ip := local.Addr()
	if ip.IsUnspecified() || !ip.IsValid() {
		ip = routeSource(p.net, p.server.Addr()).Unmap()
	}
	c := Candidate{Kind: KindHost, Addr: netip.AddrPortFrom(ip, local.Port())}
	if validCandidate(c) {
		p.localCands = appendCandidate(p.localCands, c)
	}
}

// stunCandidate asks the STUN server, from conn, for a srflx candidate.
func (p *peer) stunCandidate(ctx context.Context, conn net.PacketConn) {
	budget := min(2*time.Second, p.cfg.Timeout/4)
	sctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	r, err := stun.Binding(sctx, conn, unmap(p.cfg.STUN), 0, 100*time.Millisecond, 4)
	if err != nil {
		p.logf("peer %s: STUN %v: %v", p.cfg.Name, p.cfg.STUN, err)
		return
	}
	c := Candidate{Kind: KindSrflx, Addr: unmap(r.Mapped)}
	if validCandidate(c) {
		p.logf("peer %s: STUN %v says we are %v", p.cfg.Name, p.cfg.STUN, c.Addr)
		p.localCands = appendCandidate(p.localCands, c)
	}
}

// rendezvousTick sends what the rendezvous client owes the server now.
func (p *peer) rendezvousTick(now time.Time) {
	if p.full {
		return
	}
	if !p.registered {
		if p.phase == phaseRendezvous || p.phase == phasePunch || p.phase == phaseResult {
			if now.Sub(p.lastRegister) >= registerEvery {
				p.lastRegister = now
				p.send(message{T: tRegister, Name: p.cfg.Name, Sid: p.sid, Cands: p.declared()})
			}
		}
		return
	}
	every := lookupEvery
	switch p.phase {
	case phasePunch:
		every = refreshEvery
	case phaseExchange, phaseLinger:
		// Tell the partner's side we heard it, and learn its candidates
		// if its punch arrived before we knew them.
		if p.found && (p.myResult == "" || p.resultAcked || p.resultSends >= 4) {
			return
		}
		every = reportEvery
	case phaseDone:
		return
	}
	if now.Sub(p.lastLookup) >= every {
		p.sendLookup(now)
	}
}

func (p *peer) sendLookup(now time.Time) {
	p.lastLookup = now
	if p.myResult != "" {
		p.resultSends++
	}
	p.send(message{T: tLookup, Name: p.cfg.Name, Peer: p.cfg.Connect, Sid: p.sid, Result: p.myResult})
}

// declared returns the candidates to register: all local ones (the server
// adds what it observes).
func (p *peer) declared() []Candidate {
	c := p.localCands
	if len(c) > maxCandidates-1 {
		c = c[:maxCandidates-1]
	}
	return c
}

// handleServer takes a message from the rendezvous server.
func (p *peer) handleServer(m message) {
	switch m.T {
	case tRegistered:
		if m.Name != p.cfg.Name {
			return
		}
		if !p.registered {
			p.logf("peer %s: registered with %v, which sees us at %v", p.cfg.Name, p.server, m.Addr)
		}
		p.registered, p.everRegistered = true, true
		c := Candidate{Kind: KindSrflx, Addr: unmap(m.Addr)}
		if validCandidate(c) {
			p.localCands = appendCandidate(p.localCands, c)
		}
	case tError:
		if m.Name != p.cfg.Name {
			return
		}
		switch m.Err {
		case errFull:
			p.full = true
		case errNotRegistered:
			p.registered = false
			p.lastRegister = time.Time{}
		}
	case tPeer:
		if m.Name != p.cfg.Name || m.Peer != p.cfg.Connect {
			return
		}
		if p.myResult != "" && p.resultSends > 0 {
			p.resultAcked = true
		}
		if m.Result == resultReceived || m.Result == resultNothing {
			p.peerResult = m.Result
		}
		if m.Found {
			if !p.found {
				p.logf("peer %s: %s is registered with candidates %v", p.cfg.Name, p.cfg.Connect, m.Cands)
			}
			p.found = true
			p.setRemote(m.Cands)
		}
	}
}

// setRemote installs the partner's candidates, minus our own addresses,
// plus predicted ports.
func (p *peer) setRemote(cands []Candidate) {
	var list []Candidate
	for _, c := range cands {
		if !validCandidate(c) || c.Kind == KindPredicted && p.cfg.PredictPorts == 0 {
			continue
		}
		if slices.ContainsFunc(p.localCands, func(l Candidate) bool { return l.Addr == c.Addr }) {
			continue // ourselves: same namespace-private address and port
		}
		list = appendCandidate(list, c)
	}
	if p.cfg.PredictPorts > 0 {
		for _, c := range slices.Clone(list) {
			if c.Kind != KindSrflx {
				continue
			}
			for k := 1; k <= p.cfg.PredictPorts && int(c.Addr.Port())+k <= 65535; k++ {
				list = appendCandidate(list, Candidate{Kind: KindPredicted, Addr: netip.AddrPortFrom(c.Addr.Addr(), c.Addr.Port()+uint16(k))})
			}
		}
	}
	if !slices.Equal(list, p.remoteCands) {
		p.remoteCands = list
		p.candsEpoch++
	}
	if p.rep.Connected && p.rep.Remote.Kind == KindPrflx {
		// Connected by the partner's punch before we knew its candidates.
		p.rep.Remote = matchCandidate(list, p.rep.Remote.Addr)
	}
}

// connected records the connection: from is the address the peer's packet
// came from, at the address the peer says it sent it to.
func (p *peer) connected(now time.Time, from, at netip.AddrPort) {
	p.rep.Connected = true
	p.rep.Remote = matchCandidate(p.remoteCands, from)
	p.rep.Local = matchCandidate(p.localCands, at)
	if !p.punchStart.IsZero() {
		p.rep.Elapsed = now.Sub(p.punchStart)
	}
	p.rep.Reason, p.rep.Detail = "", ""
	p.myResult = resultReceived
	p.resultSends, p.resultAcked = 0, false
	p.phase = phaseExchange
	p.logf("peer %s: connected to %s: local %v, remote %v, after %v", p.cfg.Name, p.cfg.Connect, p.rep.Local, p.rep.Remote, p.rep.Elapsed.Round(time.Millisecond))
	if p.registered {
		p.sendLookup(now) // tell the partner's side, through the server, that we heard it
	}
}

// rendezvousFailed ends a run that never reached punching.
func (p *peer) rendezvousFailed() {
	switch {
	case p.full:
		p.rep.Reason = "rendezvous: server full"
		p.rep.Detail = fmt.Sprintf("the rendezvous server at %v refused the registration: its table is full", p.server)
	case !p.everRegistered:
		p.rep.Reason = "rendezvous: no reply from server"
		p.rep.Detail = fmt.Sprintf("the rendezvous server at %v never answered the registration", p.server)
	default:
		p.rep.Reason = "rendezvous: peer not registered"
		p.rep.Detail = fmt.Sprintf("%s never registered with the rendezvous server at %v", p.cfg.Connect, p.server)
	}
	p.phase = phaseDone
}

// punchFailed ends a run in which nothing arrived from the peer.
func (p *peer) punchFailed() {
	what := "packet"
	if p.cfg.TCP {
		what = "connection"
	}
	switch {
	case p.strayAcks > 0:
		p.rep.Reason = ReasonAsymmetric
		p.rep.Detail = fmt.Sprintf("%d responses to our checks came back from other addresses than the checks went to (new mappings of an address-and-port-dependent NAT); an RFC 8445 agent discards them (--permissive accepts them)", p.strayAcks)
	case p.heard:
		p.rep.Reason = ReasonTimeout
		p.rep.Detail = fmt.Sprintf("checks from %s arrived, but no response to ours came back", p.cfg.Connect)
		if p.peerResult == resultNothing {
			p.rep.Detail += fmt.Sprintf(", and %s reports none of ours arrived", p.cfg.Connect)
		}
	case p.peerResult == resultNothing:
		p.rep.Reason = ReasonFiltered
		p.rep.Detail = fmt.Sprintf("no %s from %s arrived, and %s reports none from us either: both sides' punches were dropped on the way", what, p.cfg.Connect, p.cfg.Connect)
	case p.peerResult == resultReceived:
		p.rep.Reason = ReasonTimeout
		p.rep.Detail = fmt.Sprintf("no %s from %s arrived, though %s received ours: its replies were dropped on the way to us", what, p.cfg.Connect, p.cfg.Connect)
	default:
		p.rep.Reason = ReasonTimeout
		p.rep.Detail = fmt.Sprintf("no %s from %s arrived (it reported no result)", what, p.cfg.Connect)
	}
	p.logf("peer %s: not connected to %s: %s: %s", p.cfg.Name, p.cfg.Connect, p.rep.Reason, p.rep.Detail)
	p.phase = phaseDone
}

// timers runs the transitions due at now that UDP and TCP share.
func (p *peer) timers(now time.Time) {
	switch p.phase {
	case phaseRendezvous:
		if p.full || !now.Before(p.punchDeadline) {
			p.rendezvousFailed()
			return
		}
		if p.found {
			p.phase = phasePunch
			p.punchStart = now
			p.logf("peer %s: punching to %s at %v", p.cfg.Name, p.cfg.Connect, p.remoteCands)
		}
	case phasePunch:
		if !now.Before(p.punchDeadline) {
			p.rep.Elapsed = now.Sub(p.punchStart)
			p.phase = phaseResult
			p.myResult = resultNothing
			if p.heard {
				p.myResult = resultReceived
			}
			p.lastLookup = time.Time{}
		}
	case phaseResult:
		if p.peerResult != "" || !now.Before(p.deadline) {
			p.punchFailed()
		}
	case phaseExchange:
		if !now.Before(p.deadline) {
			p.rep.Detail = fmt.Sprintf("connected, but the message exchange with %s did not complete", p.cfg.Connect)
			p.phase = phaseDone
		}
	}
}

// String is the report in one line, for people.
func (r Report) String() string {
	if !r.Connected {
		s := fmt.Sprintf("%s -> %s %s: not connected: %s", r.Name, r.Peer, r.Proto, r.Reason)
		if r.Detail != "" {
			s += " (" + r.Detail + ")"
		}
		return s
	}
	s := fmt.Sprintf("%s -> %s %s: connected %v <-> %v after %v", r.Name, r.Peer, r.Proto, r.Local, r.Remote, r.Elapsed.Round(time.Millisecond))
	if r.MessageExchanged {
		return s + fmt.Sprintf(", message exchanged (%q)", r.Message)
	}
	return s + ", message not exchanged"
}
