package traverse

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// startServer runs a rendezvous server on 127.0.0.1 with a free port until
// the test ends.
func startServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	if !cfg.Listen.IsValid() {
		cfg.Listen = netip.AddrPortFrom(loopback, 0)
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = s.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return s
}

// udpClient is a raw protocol client on its own loopback socket.
type udpClient struct {
	t      *testing.T
	c      *net.UDPConn
	server netip.AddrPort
}

func newUDPClient(t *testing.T, server netip.AddrPort) *udpClient {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &udpClient{t: t, c: c, server: server}
}

func (u *udpClient) addr() netip.AddrPort { return addrPortOf(u.c.LocalAddr()) }

func (u *udpClient) sendRaw(b []byte) {
	u.t.Helper()
	if _, err := u.c.WriteToUDPAddrPort(b, u.server); err != nil {
		u.t.Fatal(err)
	}
}

// recv waits up to d for a message; ok false on timeout.
func (u *udpClient) recv(d time.Duration) (message, bool) {
	u.t.Helper()
	buf := make([]byte, 65536)
	_ = u.c.SetReadDeadline(time.Now().Add(d))
	n, _, err := u.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return message{}, false
	}
	m, err := decode(buf[:n])
	if err != nil {
		u.t.Fatalf("server sent malformed %q: %v", buf[:n], err)
	}
	return m, true
}

// call sends m and returns the reply, retrying a few times (loopback does
// not lose packets, but be safe).
func (u *udpClient) call(m message) message {
	u.t.Helper()
	for range 5 {
		u.sendRaw(encode(m))
		if r, ok := u.recv(500 * time.Millisecond); ok {
			return r
		}
	}
	u.t.Fatalf("no reply to %+v", m)
	return message{}
}

// tcpClient is a raw line client.
type tcpClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func newTCPClient(t *testing.T, server netip.AddrPort) *tcpClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", server.String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &tcpClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *tcpClient) call(m message) message {
	c.t.Helper()
	if _, err := c.c.Write(append(encode(m), '\n')); err != nil {
		c.t.Fatal(err)
	}
	_ = c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	r, err := readLine(c.br)
	if err != nil {
		c.t.Fatalf("reply to %+v: %v", m, err)
	}
	return r
}

// filterNet wraps DefaultNet; its UDP sockets silently drop received
// datagrams for which drop says so, like a filtering NAT in front of them.
type filterNet struct {
	Net
	drop func(from netip.AddrPort) bool
}

func (f filterNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := f.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return &filterConn{PacketConn: c, drop: f.drop}, nil
}

type filterConn struct {
	net.PacketConn
	drop func(from netip.AddrPort) bool
}

func (c *filterConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.drop(addrPortOf(a)) {
			return n, a, err
		}
	}
}

// lossy returns a drop function that loses a fraction of datagrams.
func lossy(fraction float64, seed uint64) func(netip.AddrPort) bool {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(netip.AddrPort) bool {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64() < fraction
	}
}

// runPair runs two peers A and B against server at once.
func runPair(t *testing.T, a, b PeerConfig) (ra, rb Report) {
	t.Helper()
	var wg sync.WaitGroup
	var ea, eb error
	wg.Add(2)
	go func() { defer wg.Done(); ra, ea = RunPeer(context.Background(), a) }()
	go func() { defer wg.Done(); rb, eb = RunPeer(context.Background(), b) }()
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatalf("RunPeer errors: %v, %v", ea, eb)
	}
	logReport(t, ra)
	logReport(t, rb)
	return ra, rb
}

func logReport(t *testing.T, r Report) {
	t.Helper()
	b, _ := json.Marshal(r)
	t.Logf("report: %s", b)
}

// apdmNet wraps DefaultNet like an address-and-port-dependent mapping
// that filters nothing: a UDP socket sends to the rendezvous server from
// itself, and to every other destination from a socket of its own (a new
// port per destination), and receives on all of them.
type apdmNet struct {
	Net
	server netip.AddrPort
}

func (n apdmNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	a := &apdmConn{PacketConn: c, net: n.Net, network: network, server: n.server,
		by: map[netip.AddrPort]net.PacketConn{}, in: make(chan apdmPacket, 256), done: make(chan struct{})}
	go a.pump(c)
	return a, nil
}

type apdmPacket struct {
	b    []byte
	from net.Addr
}

type apdmConn struct {
	net.PacketConn
	net     Net
	network string
	server  netip.AddrPort
	in      chan apdmPacket
	done    chan struct{}

	mu     sync.Mutex
	by     map[netip.AddrPort]net.PacketConn
	closed bool
}

func (c *apdmConn) pump(pc net.PacketConn) {
	buf := make([]byte, 65536)
	for {
		n, a, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case c.in <- apdmPacket{b: append([]byte(nil), buf[:n]...), from: a}:
		case <-c.done:
			return
		}
	}
}

func (c *apdmConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p.from, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *apdmConn) WriteTo(b []byte, to net.Addr) (int, error) {
	dst := addrPortOf(to)
	if dst == c.server {
		return c.PacketConn.WriteTo(b, to)
	}
	c.mu.Lock()
	pc, ok := c.by[dst]
	if !ok && !c.closed {
		var err error
		pc, err = c.net.ListenPacket(c.network, netip.AddrPortFrom(addrPortOf(c.LocalAddr()).Addr(), 0).String())
		if err != nil {
			c.mu.Unlock()
			return 0, err
		}
		c.by[dst] = pc
		go c.pump(pc)
	}
	c.mu.Unlock()
	if pc == nil {
		return 0, net.ErrClosed
	}
	return pc.WriteTo(b, to)
}

func (c *apdmConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
		for _, pc := range c.by {
			_ = pc.Close()
		}
	}
	return c.PacketConn.Close()
}
