package table

import (
	"net/netip"
	"testing"
	"time"
)

// Addresses from docs/nat-requirements.md §0: inside 10.0.0.0/8, the NAT's
// external pool in 198.51.100.0/24, the STUN server's two addresses in
// 203.0.113.0/24 and other remotes in 192.0.2.0/24.
var (
	hostA = netip.MustParseAddr("10.0.0.2")
	hostB = netip.MustParseAddr("10.0.0.3")
	hostC = netip.MustParseAddr("10.0.0.4")

	ext1 = netip.MustParseAddr("198.51.100.1")
	ext2 = netip.MustParseAddr("198.51.100.2")

	srvA1 = netip.MustParseAddr("203.0.113.1")
	srvA2 = netip.MustParseAddr("203.0.113.2")

	other = netip.MustParseAddr("192.0.2.7")
)

const (
	portP1 = 3478
	portP2 = 3479
)

// t0 is the virtual clock's start; tests add to it and never sleep.
var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func ep(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// newTable builds a table with one external address (ext1) over the default
// config, after mod.
func newTable(tb testing.TB, mod func(c *Config)) *Table {
	tb.Helper()
	c := DefaultConfig()
	c.External = []netip.Addr{ext1}
	if mod != nil {
		mod(&c)
	}
	tab, err := New(c)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return tab
}

// out sends one packet outbound and fails the test on error.
func out(tb testing.TB, tab *Table, proto Protocol, in, rem netip.AddrPort, flags uint8, now time.Time) *Mapping {
	tb.Helper()
	m, _, err := tab.Outbound(proto, in, rem, flags, now)
	if err != nil {
		tb.Fatalf("Outbound(%s %s -> %s): %v", proto, in, rem, err)
	}
	return m
}

// in sends one packet inbound and checks the verdict.
func in(tb testing.TB, tab *Table, proto Protocol, ext, rem netip.AddrPort, flags uint8, now time.Time, want Verdict) *Mapping {
	tb.Helper()
	m, v := tab.Inbound(proto, ext, rem, flags, now)
	if v != want {
		tb.Fatalf("Inbound(%s %s -> %s flags %#x) at +%v = %s, want %s", proto, rem, ext, flags, now.Sub(t0), v, want)
	}
	return m
}

func sessionStates(m *Mapping) map[netip.AddrPort]string {
	st := map[netip.AddrPort]string{}
	m.Sessions(func(s SessionInfo) bool {
		st[s.Remote] = s.State
		return true
	})
	return st
}

// stopped checks that a goroutine stopped at a lock held: it waits (up to
// 5 s) for s to count a wait beyond the before waits, then 20 ms more
// for done, which must not come. release runs before a failure, to free
// the goroutine.
func stopped[T any](t *testing.T, s *Shared, before uint64, done <-chan T, release func(), what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Waits() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			release()
			t.Fatalf("%s: no wait counted within 5s", what)
		}
	}
	select {
	case <-done:
		release()
		t.Fatalf("%s went through a lock held", what)
	case <-time.After(20 * time.Millisecond):
	}
}

// flagSeg is the Segment of a packet known by its TCP flags only.
func flagSeg(flags uint8) *Segment {
	s := FlagsOnly(flags)
	return &s
}
