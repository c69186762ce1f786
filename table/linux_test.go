package table

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// UDPUnrepliedTimeout (the linux preset: 30 s, then 120 s): a session that
// has had nothing back lapses after the short timer; the first packet back
// switches it to the long one, counted from its last refresh; the mapping
// lives while any session does.
func TestUDPUnrepliedTimeout(t *testing.T) {
	tab := newTable(t, func(c *Config) {
		c.UDPTimeout = 120 * time.Second
		c.UDPUnrepliedTimeout = 30 * time.Second
		c.InboundRefresh = false
	})
	a := ep(hostA, 5000)
	m := out(t, tab, UDP, a, ep(srvA1, portP1), 0, t0)
	if got := m.Expires().Sub(t0); got != 30*time.Second {
		t.Fatalf("unreplied mapping expires after %v, want 30s", got)
	}
	// Nothing back: gone at 30 s.
	in(t, tab, UDP, m.External(), ep(srvA1, portP1), 0, t0.Add(29*time.Second), Accept)
	// That packet came back at 29 s: the session is replied, its timer is
	// now 120 s from its last refresh (t0).
	if got := m.Expires().Sub(t0); got != 120*time.Second {
		t.Fatalf("after a packet back, mapping expires after %v, want 120s (from the last outbound refresh)", got)
	}
	in(t, tab, UDP, m.External(), ep(srvA1, portP1), 0, t0.Add(119*time.Second), Accept)
	in(t, tab, UDP, m.External(), ep(srvA1, portP1), 0, t0.Add(120*time.Second), DropNoMapping)

	// A second mapping: its session to srvA2 stays unreplied and lapses
	// at 30 s, even though inbound refresh is off and another remote
	// never answered either.
	b := ep(hostB, 6000)
	mb := out(t, tab, UDP, b, ep(srvA2, portP1), 0, t0)
	in(t, tab, UDP, mb.External(), ep(srvA2, portP1), 0, t0.Add(30*time.Second), DropNoMapping)

	// Replied sessions refresh with the long timer on outbound packets;
	// an unreplied one beside it keeps the short one.
	c := ep(hostC, 7000)
	mc := out(t, tab, UDP, c, ep(srvA1, portP1), 0, t0)
	in(t, tab, UDP, mc.External(), ep(srvA1, portP1), 0, t0.Add(time.Second), Accept)
	out(t, tab, UDP, c, ep(srvA1, portP1), 0, t0.Add(10*time.Second))
	out(t, tab, UDP, c, ep(other, 9), 0, t0.Add(10*time.Second))
	in(t, tab, UDP, mc.External(), ep(other, 9), 0, t0.Add(40*time.Second), DropFiltered)
	in(t, tab, UDP, mc.External(), ep(srvA1, portP1), 0, t0.Add(129*time.Second), Accept)
	checkInvariants(t, tab)
}

// With the timer off (0, every preset but linux) a UDP session gets
// UDPTimeout from its first packet.
func TestUDPUnrepliedTimeoutOff(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.UDPTimeout = 120 * time.Second })
	m := out(t, tab, UDP, ep(hostA, 5000), ep(srvA1, portP1), 0, t0)
	if got := m.Expires().Sub(t0); got != 120*time.Second {
		t.Fatalf("expires after %v, want 120s", got)
	}
}

// LinuxLowPorts: below 1024 the ports split as Linux splits them, 1-511
// and 600-1023; the preserved port is kept where it is free.
func TestLinuxLowPorts(t *testing.T) {
	for _, pa := range []PortAssignment{Preserve, Sequential, Random} {
		t.Run(pa.String(), func(t *testing.T) {
			tab := newTable(t, func(c *Config) { c.LinuxLowPorts = true; c.PortAssignment = pa })
			// Two hosts on the same low port: the second cannot keep it.
			for _, port := range []uint16{80, 700, 512} {
				lo, hi := uint16(1), uint16(511)
				if port >= 512 {
					lo, hi = 600, 1023
				}
				for _, h := range []netip.Addr{hostA, hostB, hostC} {
					m := out(t, tab, UDP, ep(h, port), ep(srvA1, portP1), 0, t0)
					if p := m.External().Port(); p < lo || p > hi {
						t.Errorf("%s:%d mapped to port %d, want %d-%d", h, port, p, lo, hi)
					}
				}
			}
			used, size := tab.PoolUsage(UDP)
			if want := 511 + 424 + 64512; size != want || used != 9 {
				t.Errorf("PoolUsage = %d of %d, want 9 of %d", used, size, want)
			}
			checkInvariants(t, tab)
		})
	}
}

// PortOverloading, the scenario of docs/nat-requirements.md §3 (Linux's
// get_unique_tuple): A:5000 talks to S1 on external port 5000; B:5000
// then talks to S2 and gets 5000 too, since the reply tuples differ.
// Replies reach the holder that talks to their sender; anyone else is
// filtered. When B then talks to S1, whose tuple with 5000 is A's, B gets
// another port for S1 alone and keeps 5000 for everyone else.
func TestPortOverloading(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.PortOverloading, c.Hairpin = true, false; c.UDPTimeout = time.Minute })
	s1, s2, s3 := ep(srvA1, portP1), ep(srvA2, portP1), ep(other, 9)
	a, b := ep(hostA, 5000), ep(hostB, 5000)
	ma := out(t, tab, UDP, a, s1, 0, t0)
	mb := out(t, tab, UDP, b, s2, 0, t0)
	if ma.External() != ep(ext1, 5000) || mb.External() != ep(ext1, 5000) {
		t.Fatalf("A -> S1 as %s, B -> S2 as %s; want both on %s:5000", ma.External(), mb.External(), ext1)
	}
	checkInvariants(t, tab)
	if m := in(t, tab, UDP, ma.External(), s1, 0, t0, Accept); m != ma {
		t.Errorf("S1's reply went to %v, want A's mapping", m)
	}
	if m := in(t, tab, UDP, mb.External(), s2, 0, t0, Accept); m != mb {
		t.Errorf("S2's reply went to %v, want B's mapping", m)
	}
	in(t, tab, UDP, ma.External(), s3, 0, t0, DropFiltered)

	// B -> S1 clashes with A's tuple: a mapping of B's own, for S1 only.
	mb1 := out(t, tab, UDP, b, s1, 0, t0)
	if mb1 == mb || mb1.External().Port() == 5000 || mb1.Internal() != b {
		t.Fatalf("B -> S1 as %s (B -> S2 as %s); want B's own mapping on another port", mb1.External(), mb.External())
	}
	if m := out(t, tab, UDP, b, s1, 0, t0.Add(time.Second)); m != mb1 {
		t.Errorf("B's next packet to S1 used %s, want %s", m.External(), mb1.External())
	}
	if m := out(t, tab, UDP, b, s3, 0, t0.Add(time.Second)); m != mb {
		t.Errorf("B -> S3 used %s, want the shared %s", m.External(), mb.External())
	}
	if m := in(t, tab, UDP, mb1.External(), s1, 0, t0.Add(time.Second), Accept); m != mb1 {
		t.Errorf("S1's reply to B's own port went to %v", m)
	}
	if m := in(t, tab, UDP, ma.External(), s1, 0, t0.Add(time.Second), Accept); m != ma {
		t.Errorf("S1's reply to 5000 went to %v, want A's mapping still", m)
	}
	checkInvariants(t, tab)

	// The shared port stays held until its last holder goes; the table
	// reports each mapping once.
	if n := tab.Expire(t0.Add(59*time.Second), nil); n != 0 {
		t.Fatalf("%d expired early", n)
	}
	out(t, tab, UDP, a, s1, 0, t0.Add(30*time.Second)) // A lives on
	if n := tab.Expire(t0.Add(61*time.Second), nil); n != 2 {
		t.Fatalf("expired %d at 61 s, want B's two", n)
	}
	checkInvariants(t, tab)
	if used, _ := tab.PoolUsage(UDP); used != 1 {
		t.Errorf("%d ports held with only A's mapping left", used)
	}
	if m := in(t, tab, UDP, ep(ext1, 5000), s1, 0, t0.Add(61*time.Second), Accept); m != ma {
		t.Errorf("S1's reply after B left went to %v", m)
	}
	tab.Expire(t0.Add(2*time.Minute), nil)
	checkInvariants(t, tab)
	if used, _ := tab.PoolUsage(UDP); used != 0 || tab.Len() != 0 {
		t.Errorf("all expired: %d ports held, %d mappings", used, tab.Len())
	}
}

// Three hosts on one port toward one server: no overloading is possible
// (the tuples clash), so it behaves as without it; and without the
// setting no port is ever shared.
func TestPortOverloadingOnlyWhenUnique(t *testing.T) {
	for _, on := range []bool{true, false} {
		tab := newTable(t, func(c *Config) { c.PortOverloading, c.Hairpin = on, false })
		seen := map[netip.AddrPort]bool{}
		for _, h := range []netip.Addr{hostA, hostB, hostC} {
			m := out(t, tab, UDP, ep(h, 5000), ep(srvA1, portP1), 0, t0)
			if seen[m.External()] {
				t.Fatalf("overloading %v: %s shared toward one server", on, m.External())
			}
			seen[m.External()] = true
		}
		mb := out(t, tab, UDP, ep(hostB, 6000), ep(srvA2, portP1), 0, t0)
		if mc := out(t, tab, UDP, ep(hostC, 6000), ep(other, 9), 0, t0); (mc.External() == mb.External()) != on {
			t.Errorf("overloading %v: B:6000 -> %s and C:6000 -> %s", on, mb.External(), mc.External())
		}
		checkInvariants(t, tab)
	}
}

func TestPortOverloadingNeedsEIMAndAPDF(t *testing.T) {
	c := DefaultConfig()
	c.External = []netip.Addr{ext1}
	c.PortOverloading = true
	c.Filtering = EndpointIndependent
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "port-overloading") {
		t.Errorf("overloading with EIF: %v, want an error naming port-overloading", err)
	}
}

// PeekOutbound (ICMP errors from inside) finds what Outbound would use:
// the mapping made for a remote alone on a clash, if there is one.
func TestPeekOutboundSecondary(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.PortOverloading, c.Hairpin = true, false })
	s1, s2 := ep(srvA1, portP1), ep(srvA2, portP1)
	out(t, tab, UDP, ep(hostA, 5000), s1, 0, t0)
	mb := out(t, tab, UDP, ep(hostB, 5000), s2, 0, t0)
	mb1 := out(t, tab, UDP, ep(hostB, 5000), s1, 0, t0)
	if mb1 == mb {
		t.Fatal("no clash mapping")
	}
	if m := tab.PeekOutbound(UDP, ep(hostB, 5000), s1, t0); m != mb1 {
		t.Errorf("PeekOutbound toward S1 = %v, want %v", m, mb1)
	}
	if m := tab.PeekOutbound(UDP, ep(hostB, 5000), s2, t0); m != mb {
		t.Errorf("PeekOutbound toward S2 = %v, want %v", m, mb)
	}
}

// A mapping whose session with a remote has lapsed must not revive it
// on a shared port another holder uses toward that remote now; it gets a
// mapping of its own for it, as on any clash.
func TestPortOverloadingLapsedSessionClash(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.PortOverloading, c.Hairpin = true, false; c.UDPTimeout = 60 * time.Second })
	s1, s2 := ep(srvA1, portP1), ep(srvA2, portP1)
	b := ep(hostB, 5000)
	mb := out(t, tab, UDP, b, s1, 0, t0)
	out(t, tab, UDP, b, s2, 0, t0.Add(50*time.Second)) // B's mapping lives on; its S1 session lapses at 60 s
	ma := out(t, tab, UDP, ep(hostA, 5000), s1, 0, t0.Add(61*time.Second))
	if ma.External() != mb.External() {
		t.Fatalf("A -> S1 as %s; want it to share B's %s (B's S1 session has lapsed)", ma.External(), mb.External())
	}
	mb1 := out(t, tab, UDP, b, s1, 0, t0.Add(62*time.Second))
	if mb1 == mb || mb1.External() == ma.External() {
		t.Fatalf("B -> S1 again used %s; want a port of its own", mb1.External())
	}
	if m := in(t, tab, UDP, ma.External(), s1, 0, t0.Add(62*time.Second), Accept); m != ma {
		t.Errorf("S1's reply to the shared port went to %v, want A", m)
	}
	checkInvariants(t, tab)
}

func TestPortOverloadingNoHairpin(t *testing.T) {
	c := DefaultConfig() // hairpin on
	c.External = []netip.Addr{ext1}
	c.PortOverloading = true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "hairpin") {
		t.Errorf("overloading with hairpin: %v, want an error naming hairpin", err)
	}
}

// An unreplied timer above UDPTimeout is capped at it.
func TestUDPUnrepliedCapped(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.UDPTimeout = 10 * time.Second; c.UDPUnrepliedTimeout = 30 * time.Second })
	m := out(t, tab, UDP, ep(hostA, 5000), ep(srvA1, portP1), 0, t0)
	if got := m.Expires().Sub(t0); got != 10*time.Second {
		t.Fatalf("expires after %v, want 10s", got)
	}
	in(t, tab, UDP, m.External(), ep(srvA1, portP1), 0, t0.Add(5*time.Second), Accept)
	if got := m.Expires().Sub(t0); got != 10*time.Second {
		t.Fatalf("after a reply, expires after %v, want 10s", got)
	}
}
