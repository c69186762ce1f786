package traverse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonat/gonat/stun"
)

func pairConfig(server netip.AddrPort, tcp bool, timeout time.Duration, logf func(string, ...any)) (a, b PeerConfig) {
	a = PeerConfig{Rendezvous: server, Name: "A", Connect: "B", TCP: tcp, Timeout: timeout, Logf: logf}
	b = a
	b.Name, b.Connect = "B", "A"
	return a, b
}

func checkConnected(t *testing.T, r Report, peer string) {
	t.Helper()
	if !r.Connected || !r.MessageExchanged || r.Reason != "" {
		t.Fatalf("%s: connected %v, exchanged %v, reason %q (%s)", r.Name, r.Connected, r.MessageExchanged, r.Reason, r.Detail)
	}
	if r.Message != "hello from "+peer {
		t.Errorf("%s: message %q", r.Name, r.Message)
	}
	// No NAT: host candidates. The remote may also be peer-reflexive: over
	// TCP the other side can connect before the rendezvous has told this
	// one its candidates, and an address learned from the connection
	// itself is prflx (seen in CI).
	if r.Local.Kind != KindHost || r.Remote.Kind != KindHost && r.Remote.Kind != KindPrflx {
		t.Errorf("%s: pair %v <-> %v, want host candidates (no NAT), or a prflx remote", r.Name, r.Local, r.Remote)
	}
	if r.Remote.Addr.Addr() != loopback || r.Local.Addr.Addr() != loopback {
		t.Errorf("%s: pair %v <-> %v, want loopback", r.Name, r.Local, r.Remote)
	}
	if len(r.LocalCandidates) == 0 || len(r.RemoteCandidates) == 0 && r.Remote.Kind != KindPrflx {
		t.Errorf("%s: candidates %v / %v", r.Name, r.LocalCandidates, r.RemoteCandidates)
	}
}

func TestPeersUDPLoopback(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	a, b := pairConfig(s.Addr(), false, 5*time.Second, t.Logf)
	start := time.Now()
	ra, rb := runPair(t, a, b)
	checkConnected(t, ra, "B")
	checkConnected(t, rb, "A")
	if ra.Proto != "udp" || ra.Remote != rb.Local && ra.Remote.Addr != rb.LocalCandidates[0].Addr {
		t.Errorf("A's remote %v is not B's local %v", ra.Remote, rb.Local)
	}
	// A hang guard, not a speed claim (speed is for benchmarks).
	if d := time.Since(start); d > 3*a.Timeout {
		t.Errorf("took %v", d)
	}
}

func TestPeersTCPLoopback(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	a, b := pairConfig(s.Addr(), true, 5*time.Second, t.Logf)
	start := time.Now()
	ra, rb := runPair(t, a, b)
	checkConnected(t, ra, "B")
	checkConnected(t, rb, "A")
	if ra.Proto != "tcp" || ra.Remote.Addr != rb.Local.Addr || rb.Remote.Addr != ra.Local.Addr {
		t.Errorf("pairs disagree: A %v<->%v, B %v<->%v", ra.Local, ra.Remote, rb.Local, rb.Remote)
	}
	// A hang guard, not a speed claim (speed is for benchmarks).
	if d := time.Since(start); d > 3*a.Timeout {
		t.Errorf("took %v", d)
	}
}

// TestPeersStaggered starts B a second after A, in both modes.
func TestPeersStaggered(t *testing.T) {
	t.Parallel()
	for _, tcp := range []bool{false, true} {
		s := startServer(t, ServerConfig{})
		a, b := pairConfig(s.Addr(), tcp, 5*time.Second, t.Logf)
		type res struct {
			r   Report
			err error
		}
		ch := make(chan res, 1)
		go func() {
			r, err := RunPeer(context.Background(), a)
			ch <- res{r, err}
		}()
		time.Sleep(time.Second)
		rb, err := RunPeer(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		ra := <-ch
		if ra.err != nil {
			t.Fatal(ra.err)
		}
		checkConnected(t, ra.r, "B")
		checkConnected(t, rb, "A")
	}
}

func TestPeerPartnerMissing(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	for _, tcp := range []bool{false, true} {
		cfg := PeerConfig{Rendezvous: s.Addr(), Name: "lonely", Connect: "nobody", TCP: tcp, Timeout: 1500 * time.Millisecond, Logf: t.Logf}
		start := time.Now()
		r, err := RunPeer(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		logReport(t, r)
		if d := time.Since(start); d > 3*cfg.Timeout {
			t.Errorf("tcp %v: took %v, Timeout %v", tcp, d, cfg.Timeout)
		}
		if r.Connected || r.Reason != "rendezvous: peer not registered" || len(r.LocalCandidates) == 0 {
			t.Errorf("tcp %v: %+v", tcp, r)
		}
	}
	// Its registration is gone (bye) once it returns.
	u := newUDPClient(t, s.Addr())
	u.call(message{T: tRegister, Name: "nobody"})
	if r := u.call(message{T: tLookup, Name: "nobody", Peer: "lonely"}); r.Found {
		t.Errorf("lonely still registered: %+v", r)
	}
}

func TestPeerNoServer(t *testing.T) {
	t.Parallel()
	// A port with nothing on it: bind one, close it.
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := addrPortOf(c.LocalAddr())
	_ = c.Close()
	for _, tcp := range []bool{false, true} {
		r, err := RunPeer(context.Background(), PeerConfig{Rendezvous: dead, Name: "A", Connect: "B", TCP: tcp, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if r.Connected || r.Reason != "rendezvous: no reply from server" {
			t.Errorf("tcp %v: %+v", tcp, r)
		}
	}
}

// TestPeerInboundFiltered: A's socket drops everything not from the
// rendezvous server, as a NAT that filters B's packets would. A hears
// nothing. B hears A's checks: as an RFC 8445 agent it is not connected,
// since no response to its own checks comes back; permissive, it connects
// on A's checks, but its hello is never acknowledged.
func TestPeerInboundFiltered(t *testing.T) {
	t.Parallel()
	for _, permissive := range []bool{false, true} {
		t.Run(fmt.Sprintf("permissive=%v", permissive), func(t *testing.T) {
			t.Parallel()
			s := startServer(t, ServerConfig{})
			// 6 s: the last fifth of it is the window for learning the
			// partner's result, which a loaded CI machine needs.
			a, b := pairConfig(s.Addr(), false, 6*time.Second, t.Logf)
			a.Permissive, b.Permissive = permissive, permissive
			a.Net = filterNet{Net: DefaultNet(), drop: func(from netip.AddrPort) bool { return from != s.Addr() }}
			start := time.Now()
			ra, rb := runPair(t, a, b)
			// A hang guard, not a speed claim: Timeout bounds the whole run.
			if d := time.Since(start); d > 3*a.Timeout {
				t.Errorf("took %v, Timeout %v", d, a.Timeout)
			}
			if ra.Connected || ra.Reason != ReasonTimeout || !strings.Contains(ra.Detail, "received ours") {
				t.Errorf("A: connected %v, reason %q (%s)", ra.Connected, ra.Reason, ra.Detail)
			}
			if permissive {
				if !rb.Connected || rb.MessageExchanged {
					t.Errorf("B: connected %v, exchanged %v", rb.Connected, rb.MessageExchanged)
				}
			} else if rb.Connected || rb.Reason != ReasonTimeout || !strings.Contains(rb.Detail, "checks from A arrived") {
				t.Errorf("B: connected %v, reason %q (%s)", rb.Connected, rb.Reason, rb.Detail)
			}
		})
	}
}

// TestPeerBothFiltered: both sockets drop everything from the other, so
// each learns from the other's result that it is "filtered".
func TestPeerBothFiltered(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	a, b := pairConfig(s.Addr(), false, 6*time.Second, t.Logf)
	onlyServer := filterNet{Net: DefaultNet(), drop: func(from netip.AddrPort) bool { return from != s.Addr() }}
	a.Net, b.Net = onlyServer, onlyServer
	ra, rb := runPair(t, a, b)
	for _, r := range []Report{ra, rb} {
		if r.Connected || r.Reason != ReasonFiltered || r.Elapsed <= 0 {
			t.Errorf("%s: connected %v, reason %q, elapsed %v", r.Name, r.Connected, r.Reason, r.Elapsed)
		}
	}
}

// TestPeersLossy loses 30% of every datagram each peer receives, server
// replies included.
func TestPeersLossy(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	a, b := pairConfig(s.Addr(), false, 8*time.Second, t.Logf)
	a.Net = filterNet{Net: DefaultNet(), drop: lossy(0.3, 1)}
	b.Net = filterNet{Net: DefaultNet(), drop: lossy(0.3, 2)}
	ra, rb := runPair(t, a, b)
	for _, r := range []Report{ra, rb} {
		if !r.Connected || !r.MessageExchanged {
			t.Errorf("%s: connected %v, exchanged %v, reason %q", r.Name, r.Connected, r.MessageExchanged, r.Reason)
		}
	}
}

// TestPeersSTUN takes the srflx candidate from gonat's STUN server.
func TestPeersSTUN(t *testing.T) {
	t.Parallel()
	var (
		ss  *stun.Server
		err error
	)
	for range 50 { // a random port pair, retried on collisions
		port := uint16(20000 + rand.IntN(40000))
		ss, err = stun.NewServer(stun.ServerConfig{Primary: loopback, Alternate: netip.MustParseAddr("127.0.0.2"), Port: port, AltPort: port + 1})
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("STUN server: %v", err)
	}
	go func() { _ = ss.Serve(context.Background()) }()
	t.Cleanup(func() { _ = ss.Close() })
	s := startServer(t, ServerConfig{})
	a, b := pairConfig(s.Addr(), false, 5*time.Second, t.Logf)
	a.STUN, b.STUN = ss.Addrs()[0], ss.Addrs()[0]
	ra, rb := runPair(t, a, b)
	checkConnected(t, ra, "B")
	checkConnected(t, rb, "A")
	if st := ss.Stats(); st.Responses < 2 {
		t.Errorf("STUN server answered %d", st.Responses)
	}
}

func TestSetRemotePredicts(t *testing.T) {
	t.Parallel()
	p := &peer{cfg: PeerConfig{PredictPorts: 3}}
	p.localCands = []Candidate{cand(KindHost, "10.0.0.2:4000")}
	p.setRemote([]Candidate{
		cand(KindHost, "10.0.0.2:4000"), // ourselves: skipped
		cand(KindHost, "10.0.0.3:4000"),
		cand(KindSrflx, "198.51.100.2:65534"),
		cand(KindSrflx, "198.51.100.2:1024"),
	})
	want := []Candidate{
		cand(KindHost, "10.0.0.3:4000"),
		cand(KindSrflx, "198.51.100.2:65534"),
		cand(KindSrflx, "198.51.100.2:1024"),
		cand(KindPredicted, "198.51.100.2:65535"),
		cand(KindPredicted, "198.51.100.2:1025"),
		cand(KindPredicted, "198.51.100.2:1026"),
		cand(KindPredicted, "198.51.100.2:1027"),
	}
	if len(p.remoteCands) != len(want) {
		t.Fatalf("got %v, want %v", p.remoteCands, want)
	}
	for i := range want {
		if p.remoteCands[i] != want[i] {
			t.Fatalf("got %v, want %v", p.remoteCands, want)
		}
	}
	if p.candsEpoch != 1 {
		t.Errorf("epoch %d", p.candsEpoch)
	}
	p.setRemote([]Candidate{cand(KindHost, "10.0.0.3:4000"), cand(KindSrflx, "198.51.100.2:65534"), cand(KindSrflx, "198.51.100.2:1024")})
	if p.candsEpoch != 1 {
		t.Errorf("same candidates bumped the epoch")
	}
}

func TestPeerConfigErrors(t *testing.T) {
	t.Parallel()
	srv := netip.MustParseAddrPort("127.0.0.1:9")
	for _, cfg := range []PeerConfig{
		{Name: "A", Connect: "B"},
		{Rendezvous: srv, Name: "", Connect: "B"},
		{Rendezvous: srv, Name: "A", Connect: "B C"},
		{Rendezvous: srv, Name: "A", Connect: "A"},
		{Rendezvous: srv, Name: "A", Connect: "B", PredictPorts: -1},
		{Rendezvous: srv, Name: "A", Connect: "B", PredictPorts: MaxPredictPorts + 1},
		{Rendezvous: srv, Name: "A", Connect: "B", Local: netip.MustParseAddrPort("[::1]:0")},
		{Rendezvous: srv, Name: "A", Connect: "B", Timeout: -time.Second},
	} {
		if _, err := RunPeer(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestPeerCancelled(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for _, tcp := range []bool{false, true} {
		start := time.Now()
		_, err := RunPeer(ctx, PeerConfig{Rendezvous: s.Addr(), Name: "A", Connect: "B", TCP: tcp, Timeout: 10 * time.Second})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("tcp %v: %v after %v", tcp, err, time.Since(start))
		}
	}
}

// TestNetIn checks that NetIn opens every socket inside run.
func TestNetIn(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	n := NetIn(func(fn func() error) error { calls.Add(1); return fn() }, nil)
	s := startServer(t, ServerConfig{Net: n})
	a, b := pairConfig(s.Addr(), true, 5*time.Second, t.Logf)
	a.Net, b.Net = n, n
	ra, rb := runPair(t, a, b)
	checkConnected(t, ra, "B")
	checkConnected(t, rb, "A")
	if calls.Load() < 6 {
		t.Errorf("run called %d times", calls.Load())
	}
}

// blockTCPNet lets TCP reach only the rendezvous server: dials elsewhere
// hang until their context ends (a dropped SYN) and accepted connections
// are closed at once.
type blockTCPNet struct {
	Net
	server netip.AddrPort
}

func (n blockTCPNet) DialTCP(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	if remote != n.server {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return n.Net.DialTCP(ctx, local, remote)
}

func (n blockTCPNet) ListenTCP(ctx context.Context, address string) (net.Listener, error) {
	l, err := n.Net.ListenTCP(ctx, address)
	if err != nil {
		return nil, err
	}
	return closingListener{l}, nil
}

type closingListener struct{ net.Listener }

func (l closingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		_ = c.Close()
	}
}

func TestPeersTCPFiltered(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	a, b := pairConfig(s.Addr(), true, 6*time.Second, t.Logf)
	a.Net = blockTCPNet{Net: DefaultNet(), server: s.Addr()}
	b.Net = a.Net
	start := time.Now()
	ra, rb := runPair(t, a, b)
	if d := time.Since(start); d > 3*a.Timeout {
		t.Errorf("took %v, Timeout %v", d, a.Timeout)
	}
	for _, r := range []Report{ra, rb} {
		if r.Connected || r.Reason != ReasonFiltered {
			t.Errorf("%s: connected %v, reason %q (%s)", r.Name, r.Connected, r.Reason, r.Detail)
		}
	}
	t.Log(ra.String())
}

func TestReportString(t *testing.T) {
	t.Parallel()
	r := Report{Name: "A", Peer: "B", Proto: "udp", Connected: true, Local: cand(KindSrflx, "198.51.100.1:4000"),
		Remote: cand(KindPrflx, "198.51.100.2:4001"), Elapsed: 12 * time.Millisecond, MessageExchanged: true, Message: "hello from B"}
	want := `A -> B udp: connected srflx 198.51.100.1:4000 <-> prflx 198.51.100.2:4001 after 12ms, message exchanged ("hello from B")`
	if got := r.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	r = Report{Name: "A", Peer: "B", Proto: "tcp", Reason: ReasonTimeout}
	if got := r.String(); got != "A -> B tcp: not connected: timeout" {
		t.Errorf("got %s", got)
	}
}

// TestPeersBothAPDM: both peers behind address-and-port-dependent mapping
// with no filtering. Each check arrives, but every response leaves from a
// new mapping: an RFC 8445 agent discards them all (and the triggered
// checks to each new peer-reflexive address fare no better), a permissive
// peer connects on them.
func TestPeersBothAPDM(t *testing.T) {
	t.Parallel()
	for _, permissive := range []bool{false, true} {
		t.Run(fmt.Sprintf("permissive=%v", permissive), func(t *testing.T) {
			t.Parallel()
			s := startServer(t, ServerConfig{})
			a, b := pairConfig(s.Addr(), false, 4*time.Second, t.Logf)
			a.Permissive, b.Permissive = permissive, permissive
			a.Local = netip.AddrPortFrom(loopback, 0)
			b.Local = a.Local
			a.Net = apdmNet{Net: DefaultNet(), server: s.Addr()}
			b.Net = a.Net
			ra, rb := runPair(t, a, b)
			for _, r := range []Report{ra, rb} {
				if permissive {
					if !r.Connected || !r.MessageExchanged {
						t.Errorf("%s: connected %v, exchanged %v, reason %q", r.Name, r.Connected, r.MessageExchanged, r.Reason)
					}
				} else if r.Connected || r.Reason != ReasonAsymmetric {
					t.Errorf("%s: connected %v, reason %q (%s), want %q", r.Name, r.Connected, r.Reason, r.Detail, ReasonAsymmetric)
				}
			}
		})
	}
}

// countConn counts the datagrams written to each destination.
type countConn struct {
	net.PacketConn
	sent map[netip.AddrPort]int
}

func (c *countConn) WriteTo(b []byte, to net.Addr) (int, error) {
	c.sent[addrPortOf(to)]++
	return len(b), nil
}

// A round of checks goes once to each address, also when a check's
// source was learnt as peer-reflexive before it came as a candidate.
func TestPunchAllOncePerAddress(t *testing.T) {
	srflx := netip.MustParseAddrPort("198.51.100.2:40000")
	prflx := netip.MustParseAddrPort("198.51.100.2:40007")
	conn := &countConn{sent: map[netip.AddrPort]int{}}
	u := &udpRun{peer: &peer{cfg: PeerConfig{Name: "A", Connect: "B"}}, conn: conn}
	u.remoteCands = []Candidate{{Kind: KindSrflx, Addr: srflx}}
	u.prflx = []netip.AddrPort{srflx, prflx}
	u.punchAll()
	if conn.sent[srflx] != 1 || conn.sent[prflx] != 1 || len(conn.sent) != 2 {
		t.Errorf("checks sent %v, want one to %v and one to %v", conn.sent, srflx, prflx)
	}
}
