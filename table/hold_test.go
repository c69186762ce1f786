package table

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// RFC 6888 REQ-8: a freed UDP port goes to no other internal address for
// PortHold; its own address takes it back; TCP ports are free at once;
// holds give way when nothing else is free.
func TestPortHold(t *testing.T) {
	const timeout = DefaultUDPTimeout
	srv := ep(srvA1, portP1)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	t.Run("another host waits out the hold", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, ep(hostA, 5000), srv, 0, t0)
		tab.Expire(at(timeout), nil)
		if tab.HeldPorts() != 1 {
			t.Fatalf("HeldPorts %d after expiry, want 1", tab.HeldPorts())
		}
		if used, _ := tab.PoolUsage(UDP); used != 0 {
			t.Errorf("PoolUsage counts %d ports, want 0 (a held port is no mapping's)", used)
		}
		mb := out(t, tab, UDP, ep(hostB, 5000), srv, 0, at(timeout+DefaultPortHold-time.Second))
		if mb.External() == m.External() {
			t.Fatalf("B got A's freed port %v within the hold", mb.External())
		}
		mc := out(t, tab, UDP, ep(hostC, 5000), srv, 0, at(timeout+DefaultPortHold))
		if mc.External() != m.External() {
			t.Errorf("C got %v after the hold, want the freed %v", mc.External(), m.External())
		}
		if tab.HeldPorts() != 0 {
			t.Errorf("HeldPorts %d after the hold", tab.HeldPorts())
		}
	})
	t.Run("the same host takes it back", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, ep(hostA, 5000), srv, 0, t0)
		tab.Expire(at(timeout), nil)
		m2 := out(t, tab, UDP, ep(hostA, 5000), srv, 0, at(timeout+time.Second))
		if m2.External() != m.External() {
			t.Errorf("A came back as %v, want its old %v", m2.External(), m.External())
		}
		if tab.HeldPorts() != 0 {
			t.Errorf("HeldPorts %d", tab.HeldPorts())
		}
		// Lapsed without Expire: the same.
		m3 := out(t, tab, UDP, ep(hostA, 5000), srv, 0, at(2*timeout+2*time.Second))
		if m3.External() != m.External() {
			t.Errorf("A came back as %v, want %v", m3.External(), m.External())
		}
	})
	t.Run("TCP ports are free at once", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, TCP, ep(hostA, 5000), srv, FlagSYN, t0)
		later := at(DefaultTCPTransitoryTimeout)
		mb := out(t, tab, TCP, ep(hostB, 5000), srv, FlagSYN, later)
		if mb.External() != m.External() || tab.HeldPorts() != 0 {
			t.Errorf("B got %v (held %d), want A's freed %v", mb.External(), tab.HeldPorts(), m.External())
		}
	})
	t.Run("holds give way when nothing else is free", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortLo, c.PortHi = 20000, 20003 })
		for i := range 4 {
			out(t, tab, UDP, ep(hostA, uint16(30000+i)), srv, 0, t0)
		}
		tab.Expire(at(timeout), nil)
		if tab.HeldPorts() != 4 {
			t.Fatalf("HeldPorts %d, want 4", tab.HeldPorts())
		}
		// B finds the range held: the holds give way, not B.
		for i := range 4 {
			out(t, tab, UDP, ep(hostB, uint16(40000+i)), srv, 0, at(timeout+time.Second))
		}
		if _, _, err := tab.Outbound(UDP, ep(hostB, 40010), srv, 0, at(timeout+time.Second)); err != ErrPortsExhausted {
			t.Errorf("fifth mapping on four ports: %v, want %v", err, ErrPortsExhausted)
		}
	})
	t.Run("sequential assignment passes held ports by", func(t *testing.T) {
		tab := newTable(t, func(c *Config) {
			c.PortAssignment = Sequential
			c.PortLo, c.PortHi = 20000, 20009
		})
		m := out(t, tab, UDP, ep(hostA, 30000), srv, 0, t0) // 20000
		tab.Expire(at(timeout), nil)
		for i := range 9 {
			mb := out(t, tab, UDP, ep(hostB, uint16(40000+i)), srv, 0, at(timeout+time.Second))
			if mb.External() == m.External() {
				t.Fatalf("B's mapping %d got the held %v", i, m.External())
			}
		}
	})
	t.Run("off with 0", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortHold = 0 })
		out(t, tab, UDP, ep(hostA, 5000), srv, 0, t0)
		tab.Expire(at(timeout), nil)
		if tab.HeldPorts() != 0 {
			t.Errorf("HeldPorts %d with port-hold 0", tab.HeldPorts())
		}
	})
	t.Run("Flush drops holds", func(t *testing.T) {
		tab := newTable(t, nil)
		out(t, tab, UDP, ep(hostA, 5000), srv, 0, t0)
		tab.Expire(at(timeout), nil)
		tab.Flush()
		if tab.HeldPorts() != 0 {
			t.Errorf("HeldPorts %d after Flush", tab.HeldPorts())
		}
		mb := out(t, tab, UDP, ep(hostB, 5000), srv, 0, at(timeout+time.Second))
		if mb.External().Port() != 5000 {
			t.Errorf("B got %v after Flush, want port 5000", mb.External())
		}
	})
}

// Through random churn (mappings lapsing, hosts taking their ports back,
// pools running full) a held port is always in its pool and held by no
// mapping, and the list of holds stays bounded by the holds on.
func TestPortHoldChurn(t *testing.T) {
	tab := newTable(t, func(c *Config) {
		c.PortLo, c.PortHi = 20000, 20511
		c.UDPTimeout = time.Second
		c.PortHold = 3 * time.Second
	})
	rng := rand.New(rand.NewPCG(3, 4))
	now := t0
	maxHeld := 0
	for step := range 20000 {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Millisecond)
		host := netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + rng.IntN(3))})
		port := uint16(20000 + rng.IntN(400))
		tab.Outbound(UDP, ep(host, port), ep(srvA1, 1), 0, now)
		if rng.IntN(50) == 0 {
			tab.Expire(now, nil)
		}
		maxHeld = max(maxHeld, len(tab.held))
		if n := len(tab.holds) - tab.holdHead; n > 2*len(tab.held)+65 {
			t.Fatalf("step %d: %d entries for %d holds", step, n, len(tab.held))
		}
		for k := range tab.held {
			if !tab.pool(k.proto.index(), tab.extIndex(k.addr)).isUsed(k.port) {
				t.Fatalf("step %d: held port %d not in its pool", step, k.port)
			}
			for range tab.in.eachExt(hashExt(k.word(), tab.seed), k.word()) {
				t.Fatalf("step %d: held port %d has a mapping", step, k.port)
			}
		}
	}
	if maxHeld == 0 {
		t.Fatal("no port was ever held")
	}
	t.Logf("at most %d ports held", maxHeld)
}
