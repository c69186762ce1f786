package stun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gonat/gonat/table"
)

// Classic NAT names (RFC 3489 §5 and the decision flow of §10.1).
const (
	ClassicOpen               = "open internet"
	ClassicFullCone           = "full cone"
	ClassicRestrictedCone     = "restricted cone"
	ClassicPortRestrictedCone = "port restricted cone"
	ClassicSymmetric          = "symmetric"
	ClassicBlocked            = "blocked"
	ClassicUDPFirewall        = "udp firewall"
)

// ProbeConfig says where the RFC 5780 server is and how to reach it.
type ProbeConfig struct {
	// Server is the primary address and port of an RFC 5780 server.
	Server netip.AddrPort
	// ListenPacket opens each fresh socket the probe needs, as
	// ListenPacket("udp4", ":0") (or "udp6"), or with Local's address;
	// nil means net.ListenPacket.
	ListenPacket func(network, address string) (net.PacketConn, error)
	// RTO is the initial retransmission timeout, doubled after each
	// retransmission (RFC 8489 §6.2.1); zero means DefaultRTO.
	RTO time.Duration
	// Retries is Rc, the number of requests per transaction; zero means
	// DefaultRetries. See Binding for the time a silent test costs.
	Retries int
	// Local, when valid, is the local endpoint of the mapping socket.
	Local netip.AddrPort
	// PortSamples is how many fresh sockets, on random local ports, the
	// port assignment test uses; zero means DefaultPortSamples, negative
	// skips the test.
	PortSamples int
	// Lifetime turns on the mapping lifetime test (RFC 5780 §4.6), which
	// takes two to three times the lifetime it measures.
	Lifetime bool
	// MaxLifetime is the longest lifetime the lifetime test measures; a
	// mapping that outlives it is reported as LifetimeBounded. Zero means
	// DefaultMaxLifetime.
	MaxLifetime time.Duration
	// LifetimeTolerance is how narrow the bracket around the lifetime must
	// get before the test stops. Zero means 5% of the bracket's lower end
	// or 200 ms, whichever is larger.
	LifetimeTolerance time.Duration
	// AdaptRTO lowers the RTO, once the first request is answered without
	// retransmission, to three times its round trip (RFC 6298's first
	// estimate, which RFC 8489 §6.2.1 asks RTO to follow), at least
	// MinAdaptedRTO and at most RTO. A test that expects silence (a
	// filtering NAT dropping the server's answer) waits out the whole
	// schedule, so this is what makes a probe of a filtering NAT quick.
	AdaptRTO bool
	// Progress, when set, gets a line for people as each test starts and
	// ends.
	Progress func(format string, args ...any)
}

// MinAdaptedRTO is the least RTO that ProbeConfig.AdaptRTO sets: with
// Rc requests, a test is silent only after all of them went unanswered
// for (2^(Rc-1)-1+16)*RTO, 2.3 s at 100 ms and four requests.
const MinAdaptedRTO = 100 * time.Millisecond

// Result is the probe's verdict.
type Result struct {
	Mapping   ObservedBehavior // RFC 4787 §4.1, RFC 5780 §4.3
	Filtering ObservedBehavior // RFC 4787 §5, RFC 5780 §4.4
	// Hairpin says whether a packet from a second local socket to the
	// first socket's mapped address arrived (RFC 5780 §3.4, RFC 4787
	// REQ-9); nil when it could not be tested.
	Hairpin *bool
	// HairpinSource is the source address the hairpinned packet arrived
	// with: the second socket's mapped address on a NAT that behaves (RFC
	// 4787 REQ-9a), its private address on one that does not.
	HairpinSource netip.AddrPort
	// Classic is one of the Classic* names, or "" when the tests that
	// decide it did not all complete.
	Classic string
	// Local is the local endpoint of the mapping socket. When that socket
	// is bound to the unspecified address, its IP is filled in from M1 if
	// the path turns out not to be translated.
	Local netip.AddrPort
	// Mapped holds M1, M2, M3: the mapped addresses seen by A1:P1, A2:P1
	// and A2:P2 for requests from the mapping socket (RFC 5780 §4.3).
	Mapped [3]netip.AddrPort
	// OtherAddress is the server's OTHER-ADDRESS (A2:P2).
	OtherAddress netip.AddrPort
	// PortAssignment is how the NAT picks the port of a new mapping (RFC
	// 4787 §4.2.1): preserve, sequential or random, unknown when not
	// tested or undecided. An untranslated path reports preserve.
	PortAssignment ObservedPorts
	// Lifetime is how long a UDP mapping survives without outbound
	// packets (RFC 5780 §4.6), within the tolerance: the middle of the
	// final bracket. Zero when not measured (ProbeConfig.Lifetime off, or
	// the method does not work on this path).
	Lifetime time.Duration
	// LifetimeBounded says the mapping was still alive after
	// ProbeConfig.MaxLifetime; Lifetime is then that bound, a lower bound
	// of the real lifetime.
	LifetimeBounded bool
}

// HairpinUnseen reports whether a "no" in Hairpin says nothing: a NAT
// whose mapping is not endpoint-independent and that filters drops the
// hairpinned request whether or not it hairpins, since the request leaves
// by a new mapping that M1's filter has never sent to.
func (r Result) HairpinUnseen() bool {
	return r.Hairpin != nil && !*r.Hairpin && r.Mapping.Known && r.Mapping.Value != table.EndpointIndependent &&
		r.Filtering.Known && r.Filtering.Value != table.EndpointIndependent
}

// Probe runs the RFC 5780 §4 behaviour discovery tests against cfg.Server:
//
//   - Mapping (§4.3): from one socket, Binding requests to A1:P1, A2:P1 and
//     A2:P2 give M1, M2, M3. Endpoint-independent iff M1 == M2, else
//     address-dependent iff M2 == M3, else address-and-port-dependent.
//   - Filtering (§4.4), on a fresh socket, since filtering depends on the
//     state earlier tests leave: requests to A1:P1 asking for change IP and
//     port (F2) and change port only (F3). F2 answered: endpoint-independent;
//     else F3 answered: address-dependent; else address-and-port-dependent.
//     Both go out at once; the NAT sees the same traffic as when they run
//     one after the other, and a silent test is waited for only once.
//   - Hairpinning (§3.4): a second fresh socket learns its own mapping,
//     the mapping socket sends it a packet (so that a filtering NAT lets the
//     reverse direction in, as a peer behind the same NAT would), then the
//     second socket sends a Binding request to M1; Hairpin is whether the
//     mapping socket receives it. Runs alongside the filtering test.
//   - Port assignment (RFC 4787 §4.2.1): PortSamples fresh sockets on
//     random local ports send one Binding request each to A1:P1, in
//     ascending order of local port (see probePortAssignment). It runs
//     right after the first request, alone: a sequential NAT numbers
//     mappings in the order they are made, so no other test may make
//     mappings meanwhile. It costs PortSamples round trips, and nothing on
//     an untranslated path, which reports preserve.
//   - Mapping lifetime (§4.6), when cfg.Lifetime: a fresh socket X sends
//     A1:P1 a Binding request and learns its mapped address MX; after T
//     without traffic on X, another fresh socket sends A1:P1 a request with
//     RESPONSE-PORT = MX's port; the mapping outlived T iff X receives the
//     answer (within 2*RTO). Each T needs its own X. The waits 0, 1 s, 2 s,
//     4 s, ... MaxLifetime run side by side, the first lapse calling off
//     the longer ones; then waits one tolerance apart inside the bracket
//     found, side by side again. It starts after the port assignment test,
//     runs alongside the others on sockets of its own, and takes two to
//     three times the lifetime (about 7-9 s for 3 s, 10 min for 5 min), or
//     MaxLifetime when the mapping outlives it. When even T = 0 fails (a
//     server that ignores RESPONSE-PORT, a NAT that gives the second socket
//     another external address), Lifetime stays zero.
//
// Every test that gets no answer costs one whole Binding schedule (see
// Binding); the filtering and hairpin tests overlap, so a filtering,
// non-hairpinning NAT costs about one such wait (39.5 s at the defaults,
// 190 ms with RTO 10ms and Retries 3).
//
// No answer to the first request gives Classic "blocked" and a nil error.
// A server without OTHER-ADDRESS (no RFC 5780 support) or one that ignores
// CHANGE-REQUEST gives an error with the partial Result.
func Probe(ctx context.Context, cfg ProbeConfig) (Result, error) {
	var res Result
	if !cfg.Server.IsValid() {
		return res, errors.New("stun: probe needs a server address")
	}
	server := netip.AddrPortFrom(cfg.Server.Addr().Unmap(), cfg.Server.Port())
	listen := cfg.ListenPacket
	if listen == nil {
		listen = net.ListenPacket
	}
	network := "udp4"
	if !server.Addr().Is4() {
		network = "udp6"
	}
	fresh := func(addr string) (net.PacketConn, error) {
		c, err := listen(network, addr)
		if err != nil {
			return nil, fmt.Errorf("stun: probe socket %s: %w", addr, err)
		}
		return c, nil
	}
	rto, retries := cfg.RTO, cfg.Retries

	local := ":0"
	if cfg.Local.IsValid() {
		local = cfg.Local.String()
	}
	c1, err := fresh(local)
	if err != nil {
		return res, err
	}
	defer c1.Close()
	res.Local = addrPortOf(c1.LocalAddr())

	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			cfg.Progress(format, args...)
		}
	}
	if rto <= 0 {
		rto = DefaultRTO
	}
	if retries <= 0 {
		retries = DefaultRetries
	}

	// Test I: is there a server at all, and what is M1?
	say("binding (RFC 5780 4.2) to %v: up to %s", server, silence(rto, retries))
	sent := time.Now()
	r1, err := Binding(ctx, c1, server, 0, rto, retries)
	rtt := time.Since(sent)
	if errors.Is(err, ErrTimeout) {
		res.Classic = ClassicBlocked
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Mapped[0] = r1.Mapped
	res.OtherAddress = r1.OtherAddress
	other := r1.OtherAddress
	say("  M1 %v after %s; the server's other address %v", r1.Mapped, rtt.Round(time.Microsecond), other)
	if cfg.AdaptRTO && rtt < rto {
		if a := max(3*rtt, MinAdaptedRTO); a < rto {
			rto = a
			say("  RTO %s from that round trip: a test with no answer ends after %s", rto, silence(rto, retries))
		}
	}
	if !other.IsValid() || other.Addr() == server.Addr() || other.Port() == server.Port() {
		return res, fmt.Errorf("stun: %v sent OTHER-ADDRESS %v: not an RFC 5780 server with two addresses and ports", server, other)
	}
	translated := isTranslated(&res, listen, network)

	// Port assignment, before anything else makes mappings.
	switch samples := cfg.PortSamples; {
	case samples < 0:
	case !translated:
		res.PortAssignment = Seen(table.Preserve)
	default:
		if samples == 0 {
			samples = DefaultPortSamples
		}
		say("port assignment (RFC 4787 4.2.1): %d fresh sockets", samples)
		pa, err := probePortAssignment(ctx, fresh, server, samples, rto, retries)
		if err != nil {
			return res, err
		}
		res.PortAssignment = pa
		say("  ports %s", orUndecided(pa.String()))
	}

	// Mapping lifetime, on its own sockets, alongside the remaining tests.
	var (
		lifeWG      sync.WaitGroup
		life        time.Duration
		lifeBounded bool
		lifeErr     error
	)
	lifeCtx, stopLife := context.WithCancel(ctx)
	defer func() {
		stopLife()
		lifeWG.Wait()
	}()
	if cfg.Lifetime {
		lt := &lifetimeTest{fresh: fresh, server: server, rto: rto, retries: retries,
			max: cfg.MaxLifetime, tol: cfg.LifetimeTolerance}
		if lt.max <= 0 {
			lt.max = DefaultMaxLifetime
		}
		say("lifetime (RFC 5780 4.6), alongside the other tests: idle waits up to %s", lt.max)
		lifeWG.Go(func() { life, lifeBounded, lifeErr = lt.run(lifeCtx) })
	}

	// Mapping: M2 from A2:P1, M3 from A2:P2, same socket.
	say("mapping (RFC 5780 4.3): from the same socket to %v and %v", netip.AddrPortFrom(other.Addr(), server.Port()), other)
	r2, err2 := Binding(ctx, c1, netip.AddrPortFrom(other.Addr(), server.Port()), 0, rto, retries)
	if err2 != nil && !errors.Is(err2, ErrTimeout) {
		return res, err2
	}
	res.Mapped[1] = r2.Mapped
	r3, err3 := Binding(ctx, c1, other, 0, rto, retries)
	if err3 != nil && !errors.Is(err3, ErrTimeout) {
		return res, err3
	}
	res.Mapped[2] = r3.Mapped
	switch m1, m2, m3 := res.Mapped[0], res.Mapped[1], res.Mapped[2]; {
	case !m2.IsValid():
		// unknown
	case m1 == m2:
		res.Mapping = Seen(table.EndpointIndependent)
	case !m3.IsValid():
		// unknown
	case m2 == m3:
		res.Mapping = Seen(table.AddressDependent)
	default:
		res.Mapping = Seen(table.AddressAndPortDependent)
	}

	say("  M2 %v, M3 %v: mapping %s", r2.Mapped, r3.Mapped, orUndecided(res.Mapping.String()))

	// Filtering and hairpinning, side by side on their own sockets.
	say("filtering (RFC 5780 4.4) and hairpinning (3.4): answers a filtering NAT drops are waited for up to %s", silence(rto, retries))
	var (
		wg                 sync.WaitGroup
		filterErr, hpinErr error
		hairpin            *bool
		hairpinSrc         netip.AddrPort
		filtering          ObservedBehavior
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		filtering, filterErr = probeFiltering(ctx, fresh, server, other, rto, retries)
	}()
	go func() {
		defer wg.Done()
		hairpin, hairpinSrc, hpinErr = probeHairpin(ctx, fresh, c1, server, res.Mapped[0], rto, retries)
	}()
	wg.Wait()
	res.Filtering, res.Hairpin, res.HairpinSource = filtering, hairpin, hairpinSrc
	if err := errors.Join(filterErr, hpinErr); err != nil {
		return res, err
	}
	say("  filtering %s", orUndecided(res.Filtering.String()))
	if cfg.Lifetime {
		say("lifetime: still measuring")
	}
	lifeWG.Wait()
	if lifeErr != nil {
		return res, fmt.Errorf("stun: lifetime test: %w", lifeErr)
	}
	res.Lifetime, res.LifetimeBounded = life, lifeBounded

	switch {
	case !translated && res.Filtering.Is(table.EndpointIndependent):
		res.Classic = ClassicOpen
	case !translated && res.Filtering.Known:
		res.Classic = ClassicUDPFirewall
	case !translated:
	case res.Mapping.Is(table.AddressDependent) || res.Mapping.Is(table.AddressAndPortDependent):
		res.Classic = ClassicSymmetric
	case !res.Mapping.Is(table.EndpointIndependent):
	case res.Filtering.Is(table.EndpointIndependent):
		res.Classic = ClassicFullCone
	case res.Filtering.Is(table.AddressDependent):
		res.Classic = ClassicRestrictedCone
	case res.Filtering.Is(table.AddressAndPortDependent):
		res.Classic = ClassicPortRestrictedCone
	}
	return res, nil
}

// silence is how long a transaction of retries requests from rto on waits
// before it counts as unanswered.
func silence(rto time.Duration, retries int) time.Duration {
	return time.Duration(1<<(retries-1)-1+finalWaitRTOs) * rto
}

func orUndecided(s string) string {
	if s == "" {
		return "undecided"
	}
	return s
}

// isTranslated reports whether M1 differs from the mapping socket's local
// endpoint (RFC 3489 §10.1). A socket bound to the unspecified address does
// not know its IP; then the path counts as untranslated when the ports agree
// and M1's IP can be bound here (the test the RFC 3489 client stund uses),
// and res.Local gets that IP.
func isTranslated(res *Result, listen func(string, string) (net.PacketConn, error), network string) bool {
	m1, local := res.Mapped[0], res.Local
	if !local.Addr().IsUnspecified() {
		return m1 != local
	}
	if m1.Port() != local.Port() {
		return true
	}
	c, err := listen(network, netip.AddrPortFrom(m1.Addr(), 0).String())
	if err != nil {
		return true
	}
	_ = c.Close()
	res.Local = m1
	return false
}

// probeFiltering runs F2 and F3 (RFC 5780 §4.4) from a fresh socket.
func probeFiltering(ctx context.Context, fresh func(string) (net.PacketConn, error), server, other netip.AddrPort, rto time.Duration, retries int) (ObservedBehavior, error) {
	var unknown ObservedBehavior
	c, err := fresh(":0")
	if err != nil {
		return unknown, err
	}
	defer c.Close()
	f2, f3 := newTxn(ChangeIP|ChangePort), newTxn(ChangePort)
	if err := transact(ctx, c, []*txn{f2, f3}, server, rto, retries); err != nil {
		return unknown, err
	}
	for _, t := range []*txn{f2, f3} {
		if t.err != nil {
			return unknown, fmt.Errorf("stun: filtering test (change %v): %w", t.change, t.err)
		}
	}
	// A server that ignored CHANGE-REQUEST would make every NAT look
	// endpoint-independent; check where the answers came from.
	if f2.done && f2.resp.From != other {
		return unknown, fmt.Errorf("stun: change ip+port answer came from %v, want %v: server ignores CHANGE-REQUEST", f2.resp.From, other)
	}
	if want := netip.AddrPortFrom(server.Addr(), other.Port()); f3.done && f3.resp.From != want {
		return unknown, fmt.Errorf("stun: change port answer came from %v, want %v: server ignores CHANGE-REQUEST", f3.resp.From, want)
	}
	switch {
	case f2.done:
		return Seen(table.EndpointIndependent), nil
	case f3.done:
		return Seen(table.AddressDependent), nil
	}
	return Seen(table.AddressAndPortDependent), nil
}

// probeHairpin tests hairpinning towards mapping socket c1, whose mapped
// address is m1 (RFC 5780 §3.4). It returns nil when the second socket could
// not learn its own mapping.
func probeHairpin(ctx context.Context, fresh func(string) (net.PacketConn, error), c1 net.PacketConn, server, m1 netip.AddrPort, rto time.Duration, retries int) (*bool, netip.AddrPort, error) {
	c2, err := fresh(":0")
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	defer c2.Close()
	r, err := Binding(ctx, c2, server, 0, rto, retries)
	if errors.Is(err, ErrTimeout) {
		return nil, netip.AddrPort{}, nil
	}
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	m2 := r.Mapped
	punch, probe := newTxn(0), newTxn(0)
	if rto <= 0 {
		rto = DefaultRTO
	}
	if retries <= 0 {
		retries = DefaultRetries
	}

	// The reader: c1 waits for probe's request, until found or stopped.
	stopRead := make(chan struct{})
	found := make(chan netip.AddrPort, 1)
	readDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := readFrom(c1, buf)
			if err != nil {
				select {
				case <-stopRead:
					readDone <- nil
				default:
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					readDone <- fmt.Errorf("stun: hairpin read: %w", err)
				}
				return
			}
			if n >= headerSize && bytes.Equal(buf[4:headerSize], probe.key[:]) {
				found <- from
				readDone <- nil
				return
			}
		}
	}()

	// The sender: punch from c1 to m2, then probe from c2 to m1, on the
	// retransmission schedule.
	var (
		src      netip.AddrPort
		ok       bool
		sendErr  error
		interval = rto
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
send:
	for sent := 0; sent < retries; sent++ {
		if err := writeTo(c1, punch.req, m2); err != nil {
			sendErr = fmt.Errorf("stun: hairpin punch to %v: %w", m2, err)
			break
		}
		if err := writeTo(c2, probe.req, m1); err != nil {
			sendErr = fmt.Errorf("stun: hairpin probe to %v: %w", m1, err)
			break
		}
		wait := interval
		if sent == retries-1 {
			wait = finalWaitRTOs * rto
		}
		interval *= 2
		timer.Reset(wait)
		select {
		case src = <-found:
			ok = true
			break send
		case <-timer.C:
		case <-ctx.Done():
			sendErr = ctx.Err()
			break send
		}
	}
	if !ok && sendErr == nil {
		select { // a last arrival racing the final timer
		case src = <-found:
			ok = true
		default:
		}
	}
	if !ok {
		close(stopRead)
		_ = c1.SetReadDeadline(time.Unix(1, 0))
	}
	readErr := <-readDone
	_ = c1.SetReadDeadline(time.Time{})
	if err := errors.Join(sendErr, readErr); err != nil {
		return nil, netip.AddrPort{}, err
	}
	return &ok, src, nil
}
