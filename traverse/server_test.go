package traverse

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"
)

func cand(kind, addr string) Candidate {
	return Candidate{Kind: kind, Addr: netip.MustParseAddrPort(addr)}
}

func TestServerRegisterLookupUDP(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	a, b := newUDPClient(t, s.Addr()), newUDPClient(t, s.Addr())

	r := a.call(message{T: tRegister, Name: "A", Sid: "s1", Cands: []Candidate{cand(KindHost, "10.0.0.2:4000")}})
	if r.T != tRegistered || r.Name != "A" || r.Addr != a.addr() {
		t.Fatalf("register A: got %+v, want registered at %v", r, a.addr())
	}
	// B not yet there.
	r = a.call(message{T: tLookup, Name: "A", Peer: "B"})
	if r.T != tPeer || r.Found || len(r.Cands) != 0 {
		t.Fatalf("lookup of absent B: %+v", r)
	}
	r = b.call(message{T: tRegister, Name: "B", Sid: "s2", Cands: []Candidate{cand(KindHost, "10.0.0.3:5000")}})
	if r.T != tRegistered || r.Addr != b.addr() {
		t.Fatalf("register B: %+v", r)
	}
	r = a.call(message{T: tLookup, Name: "A", Peer: "B"})
	want := []Candidate{cand(KindHost, "10.0.0.3:5000"), {Kind: KindSrflx, Addr: b.addr()}}
	if r.T != tPeer || !r.Found || r.Sid != "s2" || !slices.Equal(r.Cands, want) {
		t.Fatalf("lookup B: got %+v, want candidates %v", r, want)
	}
	// A reports its result about B; B's lookup of A carries it.
	a.call(message{T: tLookup, Name: "A", Peer: "B", Result: resultNothing})
	r = b.call(message{T: tLookup, Name: "B", Peer: "A"})
	if !r.Found || r.Result != resultNothing {
		t.Fatalf("B's lookup of A: %+v, want found with result %q", r, resultNothing)
	}
	// A says bye: no longer found, result kept.
	a.sendRaw(encode(message{T: tBye, Name: "A", Sid: "s1"}))
	if m, ok := a.recv(200 * time.Millisecond); ok {
		t.Fatalf("bye answered: %+v", m)
	}
	r = b.call(message{T: tLookup, Name: "B", Peer: "A"})
	if r.Found || r.Result != resultNothing {
		t.Fatalf("lookup after bye: %+v, want not found, result kept", r)
	}
	// A lookup from a source that did not register the name is refused.
	r = b.call(message{T: tLookup, Name: "A", Peer: "B"})
	if r.T != tError || r.Err != errNotRegistered {
		t.Fatalf("lookup from a stranger: %+v", r)
	}
	st := s.Stats()
	if st.Malformed != 0 || st.Registrations != 2 || st.Messages < 8 {
		t.Errorf("stats %+v", st)
	}
}

func TestServerRegisterLookupTCP(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	a, b := newTCPClient(t, s.Addr()), newTCPClient(t, s.Addr())
	aAddr, bAddr := addrPortOf(a.c.LocalAddr()), addrPortOf(b.c.LocalAddr())
	if r := a.call(message{T: tRegister, Name: "A"}); r.T != tRegistered || r.Addr != aAddr {
		t.Fatalf("register A over TCP: %+v", r)
	}
	if r := b.call(message{T: tRegister, Name: "B"}); r.T != tRegistered || r.Addr != bAddr {
		t.Fatalf("register B over TCP: %+v", r)
	}
	r := a.call(message{T: tLookup, Name: "A", Peer: "B"})
	if !r.Found || !slices.Equal(r.Cands, []Candidate{{Kind: KindSrflx, Addr: bAddr}}) {
		t.Fatalf("lookup B over TCP: %+v", r)
	}
	// The UDP table is separate.
	u := newUDPClient(t, s.Addr())
	u.call(message{T: tRegister, Name: "C"})
	if r := u.call(message{T: tLookup, Name: "C", Peer: "A"}); r.Found {
		t.Fatalf("UDP lookup found a TCP registration: %+v", r)
	}
}

func TestServerGarbage(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{})
	u := newUDPClient(t, s.Addr())
	garbage := [][]byte{
		[]byte("hello"),
		{0, 1, 2, 3, 0xff},
		[]byte(`{"v":1`),
		[]byte(`{"v":2,"t":"register","name":"A"}`),
		[]byte(`{"t":"register","name":"A"}`),
		[]byte(`{"v":1,"t":"teleport","name":"A"}`),
		[]byte(`{"v":1,"t":"register","name":"bad name"}`),
		[]byte(`{"v":1,"t":"register","name":""}`),
		[]byte(`{"v":1,"t":"register","name":"A","cands":[{"kind":"host","addr":"nonsense"}]}`),
		[]byte(`{"v":1,"t":"register","name":"A","cands":[{"kind":"relay","addr":"1.2.3.4:5"}]}`),
		[]byte(`{"v":1,"t":"register","name":"A","cands":[{"kind":"host","addr":"0.0.0.0:5"}]}`),
		[]byte(`{"v":1,"t":"lookup","name":"A","peer":"B","result":"maybe"}`),
		[]byte(`{"v":1,"t":"lookup","name":"A"}`),
		[]byte(`["v",1]`),
		append([]byte(`{"v":1,"t":"register","name":"A","x":"`), append(bytes.Repeat([]byte("x"), 5000), '"', '}')...),
	}
	for _, g := range garbage {
		u.sendRaw(g)
	}
	if m, ok := u.recv(300 * time.Millisecond); ok {
		t.Fatalf("garbage answered: %+v", m)
	}
	if st := s.Stats(); st.Malformed != uint64(len(garbage)) || st.Replies != 0 || st.Registrations != 0 {
		t.Fatalf("stats %+v, want Malformed %d and nothing else", st, len(garbage))
	}
	// The server still works.
	if r := u.call(message{T: tRegister, Name: "A"}); r.T != tRegistered {
		t.Fatalf("register after garbage: %+v", r)
	}

	// TCP: garbage lines are not answered; an over-long line closes the
	// connection.
	c := newTCPClient(t, s.Addr())
	_, _ = c.c.Write([]byte("not json\n{\"v\":1,\"t\":\"nope\"}\n"))
	if r := c.call(message{T: tRegister, Name: "T"}); r.T != tRegistered {
		t.Fatalf("TCP register after garbage lines: %+v", r)
	}
	_, _ = c.c.Write(bytes.Repeat([]byte("y"), 3*maxMessage))
	_ = c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := io.ReadAll(c.br) // EOF (nil) or a reset: either way closed
	if len(n) > 0 || os.IsTimeout(err) {
		t.Fatalf("over-long line: read %q, %v; want the server to close", n, err)
	}
	if st := s.Stats(); st.Malformed != uint64(len(garbage))+3 {
		t.Fatalf("stats %+v, want Malformed %d", st, len(garbage)+3)
	}
}

func TestServerCapAndExpiry(t *testing.T) {
	t.Parallel()
	s := startServer(t, ServerConfig{MaxRegistrations: 3, TTL: 400 * time.Millisecond})
	var cs []*udpClient
	for i, name := range []string{"n1", "n2", "n3"} {
		c := newUDPClient(t, s.Addr())
		cs = append(cs, c)
		if r := c.call(message{T: tRegister, Name: name}); r.T != tRegistered {
			t.Fatalf("register %d: %+v", i, r)
		}
	}
	extra := newUDPClient(t, s.Addr())
	if r := extra.call(message{T: tRegister, Name: "n4"}); r.T != tError || r.Err != errFull {
		t.Fatalf("4th registration: %+v, want error full", r)
	}
	// Refreshing an existing name still works when full.
	if r := cs[0].call(message{T: tRegister, Name: "n1"}); r.T != tRegistered {
		t.Fatalf("re-register when full: %+v", r)
	}
	if st := s.Stats(); st.Rejected != 1 || st.Registrations != 3 {
		t.Fatalf("stats %+v", st)
	}
	// After the TTL everything is gone and there is room again.
	deadline := time.Now().Add(3 * time.Second)
	for s.Stats().Registrations != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("registrations did not expire: %+v", s.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := extra.call(message{T: tRegister, Name: "n4"}); r.T != tRegistered {
		t.Fatalf("register after expiry: %+v", r)
	}
	if st := s.Stats(); st.Expired != 3 {
		t.Fatalf("stats %+v, want 3 expired", st)
	}
}

// TestRegistryVirtualTime drives the handler without sockets.
func TestRegistryVirtualTime(t *testing.T) {
	t.Parallel()
	r := newRegistry(2, time.Minute, nil)
	now := time.Unix(1000, 0)
	srcA := netip.MustParseAddrPort("198.51.100.1:40000")
	srcB := netip.MustParseAddrPort("198.51.100.2:40000")
	call := func(src netip.AddrPort, m message, at time.Time) message {
		t.Helper()
		b, ok := r.handle(encode(m), "udp", src, at)
		if !ok || b == nil {
			t.Fatalf("%+v: no reply (valid %v)", m, ok)
		}
		out, err := decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	call(srcA, message{T: tRegister, Name: "A", Sid: "1"}, now)
	call(srcB, message{T: tRegister, Name: "B", Sid: "2"}, now)
	// A lookup refreshes the requester, not the partner.
	call(srcA, message{T: tLookup, Name: "A", Peer: "B"}, now.Add(50*time.Second))
	if m := call(srcA, message{T: tLookup, Name: "A", Peer: "B"}, now.Add(61*time.Second)); m.Found {
		t.Fatalf("B found after its TTL: %+v", m)
	}
	if m := call(srcB, message{T: tLookup, Name: "B", Peer: "A"}, now.Add(61*time.Second)); m.T != tError {
		t.Fatalf("expired B may look up: %+v", m)
	}
	// A re-registers from a new source (a new session): the old one is replaced.
	srcA2 := netip.MustParseAddrPort("198.51.100.1:40001")
	call(srcA2, message{T: tRegister, Name: "A", Sid: "3"}, now.Add(62*time.Second))
	if m := call(srcA, message{T: tLookup, Name: "A", Peer: "B"}, now.Add(62*time.Second)); m.T != tError {
		t.Fatalf("old source may still look up: %+v", m)
	}
	// Bye from the wrong session is ignored.
	if b, ok := r.handle(encode(message{T: tBye, Name: "A", Sid: "1"}), "udp", srcA2, now.Add(63*time.Second)); !ok || b != nil {
		t.Fatalf("bye: %q %v", b, ok)
	}
	call(srcB, message{T: tRegister, Name: "B", Sid: "4"}, now.Add(63*time.Second))
	if m := call(srcB, message{T: tLookup, Name: "B", Peer: "A"}, now.Add(63*time.Second)); !m.Found {
		t.Fatalf("bye with a stale sid removed A: %+v", m)
	}
}

// A result is about the partner's session it was reported in: after the
// partner's next register (a new run), the old result is not returned,
// even while the reporter's own registration is kept after its bye.
func TestRegistryResultIsPerSession(t *testing.T) {
	t.Parallel()
	r := newRegistry(8, time.Minute, nil)
	now := time.Unix(1000, 0)
	srcA := netip.MustParseAddrPort("198.51.100.1:40000")
	srcB := netip.MustParseAddrPort("198.51.100.2:40000")
	call := func(src netip.AddrPort, m message) message {
		t.Helper()
		b, ok := r.handle(encode(m), "udp", src, now)
		if !ok || b == nil {
			t.Fatalf("%+v: no reply (valid %v)", m, ok)
		}
		out, err := decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	call(srcA, message{T: tRegister, Name: "A", Sid: "a1"})
	call(srcB, message{T: tRegister, Name: "B", Sid: "b1"})
	call(srcA, message{T: tLookup, Name: "A", Peer: "B", Sid: "a1", Result: resultReceived})
	if m := call(srcB, message{T: tLookup, Name: "B", Peer: "A"}); m.Result != resultReceived {
		t.Fatalf("B's lookup in the session A reported on: %+v, want result %q", m, resultReceived)
	}
	r.handle(encode(message{T: tBye, Name: "A", Sid: "a1"}), "udp", srcA, now)
	call(srcB, message{T: tRegister, Name: "B", Sid: "b2"})
	if m := call(srcB, message{T: tLookup, Name: "B", Peer: "A"}); m.Result != "" {
		t.Fatalf("B's next session got A's result about the last one: %+v", m)
	}
}
