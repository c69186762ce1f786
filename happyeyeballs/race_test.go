package happyeyeballs

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/labdns"
)

var (
	lo6 = netip.MustParseAddr("::1")
	lo4 = netip.MustParseAddr("127.0.0.1")
)

// dnsResolver serves records from a labdns server on loopback and returns
// a Go resolver that asks it: the race's lookups go over real DNS.
func dnsResolver(t *testing.T, records map[string][]netip.Addr) *net.Resolver {
	t.Helper()
	h, err := labdns.NewHandler(labdns.Config{Zone: "he.test", Records: records})
	if err != nil {
		t.Fatal(err)
	}
	s, err := labdns.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	server := s.UDPAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// slowResolver delays one family's answer.
type slowResolver struct {
	r     Resolver
	delay map[string]time.Duration // by network: "ip6", "ip4"
}

func (s slowResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	select {
	case <-time.After(s.delay[network]):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.r.LookupNetIP(ctx, network, host)
}

// listen4 is an accepting IPv4 listener on loopback; its port is free on
// ::1 as well, for the IPv6 side of the test.
func listen4(t *testing.T) uint16 {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		probe, err := net.Listen("tcp6", netip.AddrPortFrom(lo6, port).String())
		if err != nil {
			ln.Close()
			continue
		}
		probe.Close()
		t.Cleanup(func() { ln.Close() })
		go acceptAll(ln)
		return port
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return 0
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func listen6(t *testing.T, port uint16) {
	t.Helper()
	ln, err := net.Listen("tcp6", netip.AddrPortFrom(lo6, port).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptAll(ln)
}

// blackhole makes addr:port a listener whose SYNs go unanswered: its
// backlog is 0 and one connection nobody accepts fills it, so the kernel
// drops every later SYN (the client retransmits, as to a blackhole).
func blackhole(t *testing.T, addr netip.Addr, port uint16) {
	t.Helper()
	family, sa := syscall.AF_INET6, syscall.Sockaddr(&syscall.SockaddrInet6{Port: int(port), Addr: addr.As16()})
	if addr.Is4() {
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: int(port), Addr: addr.As4()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), 200*time.Millisecond)
		if err != nil {
			return // the queue is full: SYNs vanish now
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the listener's queue never filled")
}

// freePort is a port free on both 127.0.0.1 and ::1.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	return port
}

func runRace(t *testing.T, res Resolver, port uint16) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := Dial(ctx, Config{Resolver: res}, "dual.he.test.", port)
	if r.Conn != nil {
		r.Conn.Close()
	}
	for _, e := range r.Events {
		t.Logf("%8.1fms %-9s #%d %s %v %v", float64(e.At.Microseconds())/1000, e.Kind, e.Attempt, e.Addr, e.Addrs, e.Err)
	}
	return r, err
}

// started returns the start time of attempt n.
func started(t *testing.T, r Result, n int) (time.Duration, netip.AddrPort) {
	t.Helper()
	for _, e := range r.Events {
		if e.Kind == Attempt && e.Attempt == n {
			return e.At, e.Addr
		}
	}
	t.Fatalf("no attempt %d", n)
	return 0, netip.AddrPort{}
}

var dual = map[string][]netip.Addr{"dual": {lo4, lo6}}

func TestIPv6Wins(t *testing.T) {
	port := listen4(t)
	listen6(t, port)
	r, err := runRace(t, dnsResolver(t, dual), port)
	if err != nil {
		t.Fatal(err)
	}
	if r.Winner.Addr() != lo6 || r.Attempt != 1 {
		t.Fatalf("winner %s (attempt %d), want [::1] first", r.Winner, r.Attempt)
	}
	if r.Elapsed >= DefaultAttemptDelay {
		t.Errorf("took %s, want less than the attempt delay", r.Elapsed)
	}
}

// With IPv6 blackholed, IPv4 starts after the attempt delay and wins; the
// IPv6 attempt is still pending then and is cancelled.
func TestBlackholedIPv6(t *testing.T) {
	port := listen4(t)
	blackhole(t, lo6, port)
	r, err := runRace(t, dnsResolver(t, dual), port)
	if err != nil {
		t.Fatal(err)
	}
	at1, a1 := started(t, r, 1)
	at2, a2 := started(t, r, 2)
	if a1.Addr() != lo6 || a2.Addr() != lo4 || r.Winner != a2 {
		t.Fatalf("attempts %s, %s, winner %s: want IPv6, then IPv4 winning", a1, a2, r.Winner)
	}
	if gap := at2 - at1; gap < DefaultAttemptDelay || gap > DefaultAttemptDelay+150*time.Millisecond {
		t.Errorf("IPv4 started %s after IPv6, want the attempt delay %s", gap, DefaultAttemptDelay)
	}
	last := r.Events[len(r.Events)-1]
	if last.Kind != Cancelled || last.Attempt != 1 {
		t.Errorf("last event %v #%d, want attempt 1 cancelled", last.Kind, last.Attempt)
	}
}

// With IPv6 rejected (RST), IPv4 starts at once, not after the delay.
func TestRejectedIPv6(t *testing.T) {
	port := listen4(t) // nothing listens on [::1]:port
	r, err := runRace(t, dnsResolver(t, dual), port)
	if err != nil {
		t.Fatal(err)
	}
	at2, a2 := started(t, r, 2)
	if r.Winner != a2 || a2.Addr() != lo4 {
		t.Fatalf("winner %s, want IPv4 (attempt 2)", r.Winner)
	}
	if at2 >= DefaultAttemptDelay {
		t.Errorf("IPv4 started at %s, want at once after the RST", at2)
	}
	failed := false
	for _, e := range r.Events {
		failed = failed || e.Kind == Failed && e.Attempt == 1
	}
	if !failed {
		t.Error("attempt 1 did not fail")
	}
}

// An IPv6 attempt refused before the A answer comes: the IPv4 attempt
// starts with the answer, as nothing is pending to wait for.
func TestRejectedBeforeA(t *testing.T) {
	port := listen4(t)
	r, err := runRace(t, slowResolver{dnsResolver(t, dual), map[string]time.Duration{"ip4": 30 * time.Millisecond}}, port)
	if err != nil {
		t.Fatal(err)
	}
	at2, a2 := started(t, r, 2)
	if r.Winner != a2 || a2.Addr() != lo4 {
		t.Fatalf("winner %s, want IPv4 (attempt 2)", r.Winner)
	}
	if at2 >= DefaultAttemptDelay {
		t.Errorf("IPv4 started at %s, want with the A answer", at2)
	}
}

// The resolution delay: an A answer waits up to 50 ms for AAAA; an AAAA
// within it still goes first, one after it lets IPv4 go first.
func TestResolutionDelay(t *testing.T) {
	port := listen4(t)
	blackhole(t, lo6, port) // an IPv4 winner shows which attempt went first
	real := dnsResolver(t, dual)
	t.Run("AAAA within the delay goes first", func(t *testing.T) {
		r, _ := runRace(t, slowResolver{real, map[string]time.Duration{"ip6": 20 * time.Millisecond}}, port)
		if _, a1 := started(t, r, 1); a1.Addr() != lo6 {
			t.Fatalf("first attempt %s, want IPv6", a1)
		}
	})
	t.Run("AAAA after the delay lets IPv4 go first", func(t *testing.T) {
		r, err := runRace(t, slowResolver{real, map[string]time.Duration{"ip6": 150 * time.Millisecond}}, port)
		if err != nil {
			t.Fatal(err)
		}
		at1, a1 := started(t, r, 1)
		if a1.Addr() != lo4 || at1 < DefaultResolutionDelay || at1 > DefaultResolutionDelay+100*time.Millisecond {
			t.Fatalf("first attempt %s at %s, want IPv4 after the resolution delay", a1, at1)
		}
		if r.Winner.Addr() != lo4 || r.Attempt != 1 {
			t.Errorf("winner %s, want the IPv4 attempt", r.Winner)
		}
	})
}

func TestNoAddress(t *testing.T) {
	_, err := Dial(context.Background(), Config{Resolver: dnsResolver(t, dual)}, "nobody.he.test.", 80)
	if !errors.Is(err, ErrNoAddress) {
		t.Fatalf("err %v, want ErrNoAddress", err)
	}
}

func TestLiteral(t *testing.T) {
	port := listen4(t)
	r, err := Dial(context.Background(), Config{}, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	r.Conn.Close()
	if len(r.Events) != 2 || r.Winner.Addr() != lo4 {
		t.Fatalf("events %v", r.Events)
	}
}

// TestInterleave: addresses alternate by family, IPv6 first (§4).
func TestInterleave(t *testing.T) {
	r := &race{inflight: map[int]attempt{}, ctx: context.Background(), outcomes: make(chan outcome), done: make(chan struct{}),
		cfg: Config{Dialer: &net.Dialer{}}}
	close(r.done)
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	r.queue[IPv6] = []netip.Addr{a("2001:db8::1"), a("2001:db8::2"), a("2001:db8::3")}
	r.queue[IPv4] = []netip.Addr{a("192.0.2.1")}
	ctxCancelled, cancel := context.WithCancel(context.Background())
	cancel()
	r.ctx = ctxCancelled // attempts end at once
	for r.startNext() {
	}
	var got []string
	for _, e := range r.res.Events {
		got = append(got, e.Addr.Addr().String())
	}
	want := []string{"2001:db8::1", "192.0.2.1", "2001:db8::2", "2001:db8::3"}
	if len(got) != len(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

// An AAAA answer that comes after IPv4 attempts began joins the race: its
// address is tried when the attempt delay ends (§3), and wins here as
// IPv4 is blackholed.
func TestLateAAAAJoins(t *testing.T) {
	port := freePort(t)
	listen6(t, port)
	blackhole(t, lo4, port)
	r, err := runRace(t, slowResolver{dnsResolver(t, dual), map[string]time.Duration{"ip6": 150 * time.Millisecond}}, port)
	if err != nil {
		t.Fatal(err)
	}
	at1, a1 := started(t, r, 1)
	at2, a2 := started(t, r, 2)
	if a1.Addr() != lo4 || a2.Addr() != lo6 || r.Winner != a2 {
		t.Fatalf("attempts %s, %s, winner %s: want IPv4, then the late IPv6 winning", a1, a2, r.Winner)
	}
	if gap := at2 - at1; gap < DefaultAttemptDelay || gap > DefaultAttemptDelay+150*time.Millisecond {
		t.Errorf("IPv6 started %s after IPv4, want the attempt delay", gap)
	}
}
