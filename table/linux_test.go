package table

import (
	"net/netip"
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
