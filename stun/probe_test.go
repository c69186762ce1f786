package stun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/table"
	pstun "github.com/pion/stun/v3"
)

// Small timers for loopback: a silent test costs (1+2+16)*20ms = 380ms,
// long enough that a loaded CI machine does not turn an answer into silence.
const (
	testRTO     = 20 * time.Millisecond
	testRetries = 3
)

func TestProbeLoopbackIsOpenInternet(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	res, err := Probe(context.Background(), ProbeConfig{Server: addrs[0], RTO: testRTO, Retries: testRetries})
	if err != nil {
		t.Fatal(err)
	}
	checkOpen(t, res, addrs)
}

func checkOpen(t *testing.T, res Result, addrs [4]netip.AddrPort) {
	t.Helper()
	if res.Classic != ClassicOpen || !res.Mapping.Is(table.EndpointIndependent) || !res.Filtering.Is(table.EndpointIndependent) {
		t.Errorf("got %+v, want open internet, EIM, EIF", res)
	}
	if res.Hairpin == nil || !*res.Hairpin {
		t.Errorf("hairpin %v, want true on loopback", res.Hairpin)
	}
	if res.Local.Addr() != loA1 {
		t.Errorf("Local %v, want the IP filled in from M1", res.Local)
	}
	for i, m := range res.Mapped {
		if m != res.Local {
			t.Errorf("M%d = %v, want the local endpoint %v", i+1, m, res.Local)
		}
	}
	if res.OtherAddress != addrs[3] {
		t.Errorf("OtherAddress %v, want %v", res.OtherAddress, addrs[3])
	}
	if !res.PortAssignment.Is(table.Preserve) {
		t.Errorf("PortAssignment %q, want preserve on an untranslated path", res.PortAssignment)
	}
	if res.Lifetime != 0 || res.LifetimeBounded {
		t.Errorf("lifetime %v (bounded %v) measured without being asked for", res.Lifetime, res.LifetimeBounded)
	}
}

// A lost first request on every socket costs a retransmission, not the
// verdict.
func TestProbeSurvivesLoss(t *testing.T) {
	s := startServer(t)
	addrs := s.Addrs()
	var (
		mu    sync.Mutex
		conns []*lossyConn
	)
	listen := func(network, address string) (net.PacketConn, error) {
		c, err := net.ListenPacket(network, address)
		if err != nil {
			return nil, err
		}
		lc := &lossyConn{PacketConn: c, drop: 1}
		mu.Lock()
		conns = append(conns, lc)
		mu.Unlock()
		return lc, nil
	}
	res, err := Probe(context.Background(), ProbeConfig{Server: addrs[0], ListenPacket: listen, RTO: testRTO, Retries: testRetries})
	if err != nil {
		t.Fatal(err)
	}
	checkOpen(t, res, addrs)
	mu.Lock()
	defer mu.Unlock()
	dropped := 0
	for _, c := range conns {
		dropped += c.dropped
	}
	if dropped < 3 {
		t.Errorf("only %d requests were dropped; the test did not test loss", dropped)
	}
}

func TestProbeBlocked(t *testing.T) {
	silent := listenUDP(t)
	res, err := Probe(context.Background(), ProbeConfig{Server: localAP(silent), RTO: testRTO, Retries: testRetries})
	if err != nil {
		t.Fatal(err)
	}
	if res.Classic != ClassicBlocked || res.Mapping.Known || res.Filtering.Known || res.Hairpin != nil {
		t.Errorf("got %+v, want blocked and nothing else", res)
	}
}

func TestProbeFixedLocal(t *testing.T) {
	s := startServer(t)
	// Find a free port, free it, and ask for it.
	c := listenUDP(t)
	local := localAP(c)
	_ = c.Close()
	res, err := Probe(context.Background(), ProbeConfig{Server: s.Addrs()[0], Local: local, RTO: testRTO, Retries: testRetries})
	if err != nil {
		t.Fatal(err)
	}
	if res.Local != local || res.Mapped[0] != local || res.Classic != ClassicOpen {
		t.Errorf("got %+v, want open internet from %v", res, local)
	}
}

// A server that is not RFC 5780 (no OTHER-ADDRESS) is reported as such.
func TestProbeNotRFC5780(t *testing.T) {
	c := listenUDP(t)
	go func() {
		// A minimal RFC 8489 server: XOR-MAPPED-ADDRESS only.
		h := handler{}
		sc := newScratch()
		buf := make([]byte, 2048)
		for {
			n, src, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r, ok := h.handle(sc, buf[:n], 0, src)
			if !ok {
				continue
			}
			m := &sc.resp
			m.Reset()
			m.Type = pstun.BindingSuccess
			m.TransactionID = sc.req.TransactionID
			m.WriteHeader()
			key := xorKey(m.Raw)
			m.Add(attrXORMappedAddress, appendAddr(nil, src, &key))
			_, _ = c.WriteToUDPAddrPort(m.Raw, r.dst)
		}
	}()
	res, err := Probe(context.Background(), ProbeConfig{Server: localAP(c), RTO: testRTO, Retries: testRetries})
	if err == nil {
		t.Fatalf("no error; result %+v", res)
	}
	if res.Mapped[0].Port() == 0 {
		t.Errorf("partial result lost M1: %+v", res)
	}
}

// The classification logic, against a userspace NAT of each of the nine
// mapping x filtering kinds (RFC 4787 §4.1, §5).
func TestProbeAgainstFakeNAT(t *testing.T) {
	s := startServer(t)
	kinds := []table.Behavior{table.EndpointIndependent, table.AddressDependent, table.AddressAndPortDependent}
	for _, mapping := range kinds {
		for _, filtering := range kinds {
			t.Run(fmt.Sprintf("mapping %s, filtering %s", mapping, filtering), func(t *testing.T) {
				nat := newFakeNAT(t, mapping, filtering)
				res, err := Probe(context.Background(), ProbeConfig{Server: s.Addrs()[0], ListenPacket: nat.listen, RTO: testRTO, Retries: testRetries})
				if err != nil {
					t.Fatal(err)
				}
				want := ClassicSymmetric
				if mapping == table.EndpointIndependent {
					want = map[table.Behavior]string{
						table.EndpointIndependent:     ClassicFullCone,
						table.AddressDependent:        ClassicRestrictedCone,
						table.AddressAndPortDependent: ClassicPortRestrictedCone,
					}[filtering]
				}
				if !res.Mapping.Is(mapping) || !res.Filtering.Is(filtering) || res.Classic != want {
					t.Errorf("got mapping %q filtering %q classic %q, want %q %q %q\n%+v",
						res.Mapping, res.Filtering, res.Classic, mapping, filtering, want, res)
				}
				if res.Local.Addr() != fakeInside {
					t.Errorf("Local %v, want the inside address", res.Local)
				}
				if res.Hairpin == nil {
					t.Fatalf("hairpin not tested")
				}
				// With one mapping per socket, the punch opens the filter
				// and the hairpinned request gets in, with the second
				// socket's mapped address as its source.
				if mapping == table.EndpointIndependent && (!*res.Hairpin || res.HairpinSource.Addr() != loA1) {
					t.Errorf("hairpin %v from %v, want true from a mapped address", *res.Hairpin, res.HairpinSource)
				}
				if !res.PortAssignment.Is(table.Random) {
					t.Errorf("PortAssignment %q, want random (kernel ephemeral ports)", res.PortAssignment)
				}
			})
		}
	}
}

// fakeInside is the private address the fake NAT's inside sockets claim.
var fakeInside = netip.MustParseAddr("10.0.0.2")

// fakeNAT is a userspace NAT for tests: each inside socket (a natConn) gets
// real outside sockets on 127.0.0.1, one per mapping key, and each outside
// socket lets in only what its filter allows.
//
// Inside sockets live in a port space of their own (listen honours ":PORT"
// and refuses a port in use with EADDRINUSE). The outside port of a new
// mapping follows portAssign: random (the default) takes the kernel's random
// ephemeral port; sequential the next free port of a cursor above the
// ephemeral range; preserve the inside port, reserved on 127.0.0.1 when
// the inside socket is opened (so an explicit port that is busy there is
// refused like a busy local port), else a random one. With timeout > 0 a
// mapping lapses timeout after its last outbound packet, as gonat's do:
// inbound packets are then dropped and the next outbound one makes a new
// mapping.
type fakeNAT struct {
	t                  *testing.T
	mapping, filtering table.Behavior
	portAssign         table.PortAssignment
	timeout            time.Duration
	refuse             int // explicit-port listens still to refuse with EADDRINUSE

	mu       sync.Mutex
	nextPort uint16
	inUse    map[uint16]bool
	seq      uint16 // the sequential cursor
	refused  int
}

func newFakeNAT(t *testing.T, mapping, filtering table.Behavior) *fakeNAT {
	return &fakeNAT{t: t, mapping: mapping, filtering: filtering, portAssign: table.Random, nextPort: 5000,
		inUse: map[uint16]bool{}, seq: uint16(61000 + rand.IntN(3000))}
}

func addrInUse(network string) error {
	return &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
}

func (n *fakeNAT) listen(network, address string) (net.PacketConn, error) {
	_, ps, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, err
	}
	port := uint16(p)
	n.mu.Lock()
	defer n.mu.Unlock()
	if port != 0 {
		if n.refuse > 0 || n.inUse[port] {
			if n.refuse > 0 {
				n.refuse--
				n.refused++
			}
			return nil, addrInUse(network)
		}
	} else {
		for n.nextPort++; n.inUse[n.nextPort]; n.nextPort++ {
		}
		port = n.nextPort
	}
	c := &natConn{
		nat:       n,
		local:     netip.AddrPortFrom(fakeInside, port),
		in:        make(chan datagram, 64),
		closed:    make(chan struct{}),
		dlChanged: make(chan struct{}),
		ext:       map[netip.AddrPort]*outside{},
	}
	if n.portAssign == table.Preserve {
		u, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loA1, port)))
		if err != nil && p != 0 {
			return nil, addrInUse(network)
		}
		c.reserved = u // nil when the port was busy: the mapping takes another
	}
	n.inUse[port] = true
	n.t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// allocate opens the outside socket of a new mapping (see fakeNAT).
func (n *fakeNAT) allocate() (*net.UDPConn, error) {
	if n.portAssign != table.Sequential {
		return net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loA1, 0)))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	for range 100 {
		n.seq++
		var u *net.UDPConn
		if u, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loA1, n.seq))); err == nil {
			return u, nil
		}
	}
	return nil, err
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// outside is one mapping: a real socket and the endpoints it has sent to.
type outside struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	sentTo  map[netip.AddrPort]bool
	lastOut time.Time
}

// lapsed says whether the mapping has expired: timeout after its last
// outbound packet.
func (o *outside) lapsed(timeout time.Duration) bool {
	if timeout <= 0 {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Since(o.lastOut) >= timeout
}

func (o *outside) permits(src netip.AddrPort, filtering table.Behavior) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch filtering {
	case table.EndpointIndependent:
		return true
	case table.AddressDependent:
		for d := range o.sentTo {
			if d.Addr() == src.Addr() {
				return true
			}
		}
		return false
	}
	return o.sentTo[src]
}

type natConn struct {
	nat       *fakeNAT
	local     netip.AddrPort
	in        chan datagram
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu        sync.Mutex
	ext       map[netip.AddrPort]*outside // by mapping key
	reserved  *net.UDPConn                // preserve: the first mapping's socket
	deadline  time.Time
	dlChanged chan struct{}
}

// key zeroes what the mapping behaviour ignores of the destination.
func (c *natConn) key(dst netip.AddrPort) netip.AddrPort {
	switch c.nat.mapping {
	case table.EndpointIndependent:
		return netip.AddrPort{}
	case table.AddressDependent:
		return netip.AddrPortFrom(dst.Addr(), 0)
	}
	return dst
}

func (c *natConn) WriteTo(b []byte, a net.Addr) (int, error) {
	dst := addrPortOf(a)
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		return 0, net.ErrClosed
	default:
	}
	o := c.ext[c.key(dst)]
	if o != nil && o.lapsed(c.nat.timeout) {
		_ = o.conn.Close() // its pump ends
		o = nil
	}
	if o == nil {
		u := c.reserved
		c.reserved = nil
		if u == nil {
			var err error
			if u, err = c.nat.allocate(); err != nil {
				c.mu.Unlock()
				return 0, err
			}
		}
		o = &outside{conn: u, sentTo: map[netip.AddrPort]bool{}}
		c.ext[c.key(dst)] = o
		c.wg.Add(1)
		go c.pump(o)
	}
	c.mu.Unlock()
	o.mu.Lock()
	o.sentTo[dst] = true
	o.lastOut = time.Now()
	o.mu.Unlock()
	return o.conn.WriteToUDPAddrPort(b, dst)
}

// pump moves what the filter lets in from an outside socket to the inside.
func (c *natConn) pump(o *outside) {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, src, err := o.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if o.lapsed(c.nat.timeout) || !o.permits(src, c.nat.filtering) {
			continue
		}
		select {
		case c.in <- datagram{b: append([]byte(nil), buf[:n]...), from: src}:
		default: // queue full: dropped, as a NAT would
		}
	}
}

func (c *natConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, changed := c.deadline, c.dlChanged
		c.mu.Unlock()
		var timeout <-chan time.Time
		var timer *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		select {
		case p := <-c.in:
			stopTimer(timer)
			return copy(b, p.b), net.UDPAddrFromAddrPort(p.from), nil
		case <-timeout:
			return 0, nil, os.ErrDeadlineExceeded
		case <-changed:
			stopTimer(timer)
		case <-c.closed:
			stopTimer(timer)
			return 0, nil, net.ErrClosed
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (c *natConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.dlChanged)
	c.dlChanged = make(chan struct{})
	return nil
}

func (c *natConn) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *natConn) SetWriteDeadline(time.Time) error { return nil }
func (c *natConn) LocalAddr() net.Addr              { return net.UDPAddrFromAddrPort(c.local) }
func (c *natConn) String() string                   { return "natConn " + c.local.String() }
func (c *natConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		close(c.closed)
		for _, o := range c.ext {
			_ = o.conn.Close()
		}
		if c.reserved != nil {
			_ = c.reserved.Close()
		}
		c.mu.Unlock()
		c.wg.Wait()
		c.nat.mu.Lock()
		delete(c.nat.inUse, c.local.Port())
		c.nat.mu.Unlock()
	})
	return nil
}

var _ net.PacketConn = (*natConn)(nil)

// A silent test waits out the whole RFC 8489 schedule: (2^(Rc-1)-1+Rm)
// RTOs, 11.5 s at gonat probe's 500 ms and four requests.
func TestSilence(t *testing.T) {
	if got := silence(500*time.Millisecond, 4); got != 11500*time.Millisecond {
		t.Errorf("silence(500ms, 4) = %v, want 11.5s", got)
	}
	if got := silence(MinAdaptedRTO, 4); got != 2300*time.Millisecond {
		t.Errorf("silence(%v, 4) = %v, want 2.3s", MinAdaptedRTO, got)
	}
}

// With AdaptRTO, a probe of a filtering NAT over a fast path waits for
// its silent tests by the RTO the first round trip allows, not by the
// configured one: with a 3 s RTO each silent test would take 51 s. Each
// test is announced through Progress.
func TestProbeAdaptRTO(t *testing.T) {
	s := startServer(t)
	nat := newFakeNAT(t, table.EndpointIndependent, table.AddressAndPortDependent)
	var mu sync.Mutex
	var lines []string
	start := time.Now()
	res, err := Probe(context.Background(), ProbeConfig{Server: s.Addrs()[0], ListenPacket: nat.listen, RTO: 3 * time.Second, Retries: 2,
		AdaptRTO: true, Progress: func(f string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf(f, a...))
		}})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Classic != ClassicPortRestrictedCone {
		t.Errorf("classic %q, want %q", res.Classic, ClassicPortRestrictedCone)
	}
	if took > 15*time.Second {
		t.Errorf("probe took %v; with the RTO adapted to a loopback round trip its silent tests take %v each", took, silence(MinAdaptedRTO, 2))
	}
	mu.Lock()
	defer mu.Unlock()
	text := strings.Join(lines, "\n")
	for _, want := range []string{"binding", "RTO 100ms", "port assignment", "mapping", "filtering"} {
		if !strings.Contains(text, want) {
			t.Errorf("progress lacks %q:\n%s", want, text)
		}
	}
}

// A "no" is unseen only where the probe's hairpinned request meets a new
// mapping and a filter; a "yes", an untested hairpin or an unknown
// behaviour is never called unseen.
func TestHairpinUnseen(t *testing.T) {
	no, yes := false, true
	for _, c := range []struct {
		mapping, filtering ObservedBehavior
		hairpin            *bool
		want               bool
	}{
		{Seen(table.AddressAndPortDependent), Seen(table.AddressAndPortDependent), &no, true},
		{Seen(table.AddressDependent), Seen(table.AddressDependent), &no, true},
		{Seen(table.AddressAndPortDependent), Seen(table.EndpointIndependent), &no, false},
		{Seen(table.EndpointIndependent), Seen(table.AddressAndPortDependent), &no, false},
		{Seen(table.AddressAndPortDependent), Seen(table.AddressAndPortDependent), &yes, false},
		{Seen(table.AddressAndPortDependent), Seen(table.AddressAndPortDependent), nil, false},
		{ObservedBehavior{}, Seen(table.AddressAndPortDependent), &no, false},
		{Seen(table.AddressAndPortDependent), ObservedBehavior{}, &no, false},
	} {
		r := Result{Mapping: c.mapping, Filtering: c.filtering, Hairpin: c.hairpin}
		if got := r.HairpinUnseen(); got != c.want {
			t.Errorf("mapping %q filtering %q hairpin %v: unseen %v, want %v", c.mapping, c.filtering, c.hairpin, got, c.want)
		}
	}
}
