package table

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// sumSessions counts the sessions of every mapping held, for checking
// the table's running count.
func sumSessions(tab *Table) int {
	n := 0
	tab.All(func(m *Mapping) bool {
		n += int(m.nsess)
		return true
	})
	return n
}

func TestLimitMappingsPerHost(t *testing.T) {
	const limit = 5
	tab := newTable(t, func(c *Config) { c.LimitMappingsPerHost = limit })
	rem := ep(srvA1, 80)
	var held []*Mapping
	for i := range limit {
		held = append(held, out(t, tab, UDP, ep(hostA, uint16(5000+i)), rem, 0, t0))
	}
	// The limit is hit exactly at N, in every protocol.
	for _, proto := range []Protocol{UDP, TCP, ICMP} {
		if _, _, err := tab.Outbound(proto, ep(hostA, 6000), rem, FlagSYN, t0); !errors.Is(err, ErrLimitMappingsPerHost) {
			t.Errorf("%s mapping %d of host A: err %v, want %v", proto, limit+1, err, ErrLimitMappingsPerHost)
		}
	}
	if tab.Len() != limit {
		t.Fatalf("Len %d after refusals, want %d", tab.Len(), limit)
	}
	// Fairness: another host still gets mappings, up to its own limit.
	for i := range limit {
		out(t, tab, UDP, ep(hostB, uint16(5000+i)), rem, 0, t0)
	}
	// No eviction: A's mappings still carry traffic, new remotes included
	// (a new session is not a new mapping).
	for i, m := range held {
		if got := out(t, tab, UDP, ep(hostA, uint16(5000+i)), ep(other, 9), 0, t0.Add(time.Second)); got != m {
			t.Fatalf("host A's mapping %d replaced: %v, want %v", i, got, m)
		}
	}
	// Once A's mappings lapse, A gets new ones (before any Expire).
	later := t0.Add(DefaultUDPTimeout + 2*time.Second)
	out(t, tab, UDP, ep(hostA, 6000), rem, 0, later)
	if got, want := tab.pairs[hostA.As4()].n, int32(1); got != want {
		t.Errorf("host A holds %d mappings after the lapsed ones went, want %d", got, want)
	}
}

func TestLimitSessionsPerMapping(t *testing.T) {
	const limit = 4
	tab := newTable(t, func(c *Config) {
		c.Filtering = EndpointIndependent // full cone: any remote's SYN is admitted
		c.LimitSessionsPerMapping = limit
	})
	in1 := ep(hostA, 5000)
	m := out(t, tab, TCP, in1, ep(srvA1, 80), FlagSYN, t0)
	for i := 1; i < limit; i++ {
		out(t, tab, TCP, in1, ep(srvA1, uint16(80+i)), FlagSYN, t0)
	}
	if _, _, err := tab.Outbound(TCP, in1, ep(srvA1, 99), FlagSYN, t0); !errors.Is(err, ErrLimitSessionsPerMapping) {
		t.Fatalf("outbound session %d: err %v, want %v", limit+1, err, ErrLimitSessionsPerMapping)
	}
	// A spoofed SYN flood from outside: admitted by the filter, refused by
	// the limit, the mapping left as it was.
	for i := range 1000 {
		rem := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), uint16(1024+i))
		if got := in(t, tab, TCP, m.External(), rem, FlagSYN, t0, DropLimitSessionsPerMapping); got != m {
			t.Fatalf("verdict came with mapping %v, want %v", got, m)
		}
	}
	if m.nsess != limit || tab.Sessions() != limit {
		t.Fatalf("sessions %d (table %d), want %d", m.nsess, tab.Sessions(), limit)
	}
	// The sessions held still work; non-SYN packets from others still
	// pass (they make no session).
	for i := range limit {
		in(t, tab, TCP, m.External(), ep(srvA1, uint16(80+i)), FlagACK, t0, Accept)
	}
	in(t, tab, TCP, m.External(), ep(other, 7), FlagACK, t0, Accept)
	// Lapsed sessions make room.
	later := t0.Add(DefaultTCPTransitoryTimeout + time.Second)
	in(t, tab, TCP, m.External(), ep(other, 7), FlagSYN, later, DropUnsolicitedSYN) // the mapping lapsed with its sessions
	m = out(t, tab, TCP, in1, ep(srvA1, 80), FlagSYN, later)
	for i := 1; i < limit; i++ {
		in(t, tab, TCP, m.External(), ep(other, uint16(i)), FlagSYN, later, Accept)
	}
	in(t, tab, TCP, m.External(), ep(other, 99), FlagSYN, later, DropLimitSessionsPerMapping)
	if tab.Sessions() != sumSessions(tab) {
		t.Errorf("Sessions() = %d, held %d", tab.Sessions(), sumSessions(tab))
	}
}

func TestLimitMappings(t *testing.T) {
	const limit = 6
	tab := newTable(t, func(c *Config) { c.LimitMappings = limit })
	rem := ep(srvA1, 80)
	hosts := []netip.Addr{hostA, hostB, hostC}
	for i := range limit {
		out(t, tab, UDP, ep(hosts[i%3], uint16(5000+i)), rem, 0, t0)
	}
	for _, h := range hosts {
		if _, _, err := tab.Outbound(UDP, ep(h, 7000), rem, 0, t0); !errors.Is(err, ErrLimitMappings) {
			t.Errorf("mapping %d (host %s): err %v, want %v", limit+1, h, err, ErrLimitMappings)
		}
	}
	if tab.Len() != limit {
		t.Fatalf("Len %d, want %d", tab.Len(), limit)
	}
	// An existing mapping talks to a new remote: a session, not a mapping.
	out(t, tab, UDP, ep(hostA, 5000), ep(other, 1), 0, t0)
	// Lapsed mappings make room.
	out(t, tab, UDP, ep(hostA, 7000), rem, 0, t0.Add(DefaultUDPTimeout+time.Second))
}

func TestLimitSessions(t *testing.T) {
	const limit = 10
	tab := newTable(t, func(c *Config) {
		c.Filtering = EndpointIndependent
		c.LimitSessions = limit
	})
	mA := out(t, tab, TCP, ep(hostA, 5000), ep(srvA1, 80), FlagSYN, t0)
	mB := out(t, tab, TCP, ep(hostB, 5000), ep(srvA1, 80), FlagSYN, t0)
	for i := 2; i < limit; i++ {
		in(t, tab, TCP, mA.External(), ep(other, uint16(i)), FlagSYN, t0, Accept)
	}
	in(t, tab, TCP, mB.External(), ep(other, 1), FlagSYN, t0, DropLimitSessions)
	if _, _, err := tab.Outbound(TCP, ep(hostB, 5000), ep(srvA1, 81), FlagSYN, t0); !errors.Is(err, ErrLimitSessions) {
		t.Errorf("new session at the limit: err %v, want %v", err, ErrLimitSessions)
	}
	if _, _, err := tab.Outbound(TCP, ep(hostC, 5000), ep(srvA1, 80), FlagSYN, t0); !errors.Is(err, ErrLimitSessions) {
		t.Errorf("new mapping at the session limit: err %v, want %v", err, ErrLimitSessions)
	}
	if tab.Sessions() != limit || tab.Len() != 2 {
		t.Fatalf("sessions %d, mappings %d; want %d, 2", tab.Sessions(), tab.Len(), limit)
	}
	// Both mappings' sessions still work.
	in(t, tab, TCP, mA.External(), ep(other, 5), FlagACK, t0, Accept)
	in(t, tab, TCP, mB.External(), ep(srvA1, 80), FlagSYN|FlagACK, t0, Accept)
}

// The running session count stays equal to the sessions held through
// random churn: new mappings and sessions, lapses, pruning, removal on
// a port clash, Expire and Flush.
func TestSessionCountChurn(t *testing.T) {
	tab := newTable(t, func(c *Config) {
		c.Filtering = EndpointIndependent
		c.PortLo, c.PortHi = 20000, 20063
		c.UDPTimeout = 10 * time.Second
		c.TCPTransitoryTimeout = 7 * time.Second
	})
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	for step := range 20000 {
		now = now.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
		host := netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + rng.IntN(4))})
		rem := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(8))}), uint16(1+rng.IntN(20)))
		proto := []Protocol{UDP, TCP}[rng.IntN(2)]
		switch r := rng.IntN(100); {
		case r < 60:
			tab.Outbound(proto, ep(host, uint16(3000+rng.IntN(40))), rem, FlagSYN, now)
		case r < 95:
			tab.Inbound(proto, ep(ext1, uint16(20000+rng.IntN(64))), rem, FlagSYN, now)
		case r < 99:
			tab.Expire(now, nil)
		default:
			if rng.IntN(20) == 0 {
				tab.Flush()
			}
		}
		if got, want := tab.Sessions(), sumSessions(tab); got != want {
			t.Fatalf("step %d: Sessions() = %d, held %d", step, got, want)
		}
	}
}

func TestLimitSettings(t *testing.T) {
	for _, name := range []string{SettingLimitMappingsPerHost, SettingLimitSessionsPerMapping, SettingLimitMappings, SettingLimitSessions} {
		c := DefaultConfig()
		if err := ApplySetting(&c, name, "-1"); err == nil {
			t.Errorf("%s -1: no error", name)
		}
		if err := ApplySetting(&c, name, "0"); err != nil {
			t.Errorf("%s 0: %v", name, err)
		}
		c.External = []netip.Addr{ext1}
		if err := c.Validate(); err != nil {
			t.Errorf("%s 0: Validate: %v", name, err)
		}
	}
	c := DefaultConfig()
	c.External = []netip.Addr{ext1}
	c.LimitSessions = -3
	if err := c.Validate(); err == nil {
		t.Error("negative limit-sessions: Validate passed it")
	}
}

// At the sessions-per-mapping limit, lapsed sessions are pruned at most
// once per prunePeriod: a refused SYN flood costs no scan per packet, and
// a session that lapses in between makes room at the next prune.
func TestLimitPrunePaced(t *testing.T) {
	const limit = 4
	tab := newTable(t, func(c *Config) {
		c.Filtering = EndpointIndependent
		c.LimitSessionsPerMapping = limit
		c.TCPTransitoryTimeout = 10 * time.Second
	})
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	from := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 4000)
	}
	in1 := ep(hostA, 5000)
	m := out(t, tab, TCP, in1, ep(srvA1, 80), FlagSYN, at(0))
	for i := 1; i < limit; i++ { // sessions lapsing at 10 s
		in(t, tab, TCP, m.External(), from(i), FlagSYN, at(0), Accept)
	}
	out(t, tab, TCP, in1, ep(srvA1, 80), FlagSYN, at(1)) // the first lapses at 11 s
	in(t, tab, TCP, m.External(), from(10), FlagSYN, at(5), DropLimitSessionsPerMapping)
	// Three lapsed at 10 s; the last prune was at 5 s.
	in(t, tab, TCP, m.External(), from(11), FlagSYN, at(10.2), Accept)
	in(t, tab, TCP, m.External(), from(12), FlagSYN, at(10.2), Accept)
	in(t, tab, TCP, m.External(), from(13), FlagSYN, at(10.2), Accept)
	// Refused, with a prune that finds nothing lapsed: the next is at
	// 11.5 s at the earliest.
	in(t, tab, TCP, m.External(), from(14), FlagSYN, at(10.5), DropLimitSessionsPerMapping)
	// The first session lapsed at 11 s, but no prune runs before 11.5 s.
	in(t, tab, TCP, m.External(), from(15), FlagSYN, at(11.1), DropLimitSessionsPerMapping)
	in(t, tab, TCP, m.External(), from(16), FlagSYN, at(11.6), Accept)
	if m.nsess != limit || tab.Sessions() != sumSessions(tab) {
		t.Fatalf("sessions %d (table %d, held %d), want %d", m.nsess, tab.Sessions(), sumSessions(tab), limit)
	}
}

// What an outside SYN refused at the default sessions-per-mapping limit
// costs: before pacing, a scan and a rebuild of the 4096 sessions' index
// per packet.
func BenchmarkSYNRefusedAtLimit(b *testing.B) {
	tab := newTable(b, func(c *Config) { c.Filtering = EndpointIndependent })
	m, _, err := tab.Outbound(TCP, ep(hostA, 5000), ep(srvA1, 80), FlagSYN, t0)
	if err != nil {
		b.Fatal(err)
	}
	rem := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), uint16(1024+i>>8))
	}
	for i := 1; i < DefaultLimitSessionsPerMapping; i++ {
		if _, v := tab.Inbound(TCP, m.External(), rem(i), FlagSYN, t0); v != Accept {
			b.Fatalf("session %d: %v", i, v)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, v := tab.Inbound(TCP, m.External(), rem(DefaultLimitSessionsPerMapping+i%1000), FlagSYN, t0.Add(time.Millisecond)); v != DropLimitSessionsPerMapping {
			b.Fatalf("verdict %v", v)
		}
	}
}
