package table

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestPortBitmap(t *testing.T) {
	var p portPool
	for _, port := range []uint16{1024, 1025, 1027, 1088} {
		p.set(port)
	}
	t.Run("firstFree skips used", func(t *testing.T) {
		if got, ok := p.firstFree(1024, 2000, maskAll); !ok || got != 1026 {
			t.Errorf("firstFree = %d %v, want 1026", got, ok)
		}
	})
	t.Run("firstFree with parity", func(t *testing.T) {
		if got, ok := p.firstFree(1024, 2000, maskOdd); !ok || got != 1029 {
			t.Errorf("odd firstFree = %d %v, want 1029", got, ok)
		}
		if got, ok := p.firstFree(1024, 2000, maskEven); !ok || got != 1026 {
			t.Errorf("even firstFree = %d %v, want 1026", got, ok)
		}
	})
	t.Run("firstFree range ends", func(t *testing.T) {
		if _, ok := p.firstFree(1024, 1025, maskAll); ok {
			t.Error("found a free port in a full range")
		}
		if got, ok := p.firstFree(65535, 65535, maskAll); !ok || got != 65535 {
			t.Errorf("firstFree(65535) = %d %v", got, ok)
		}
		if got, ok := p.firstFree(1088, 1089, maskAll); !ok || got != 1089 {
			t.Errorf("firstFree across word = %d %v", got, ok)
		}
	})
	t.Run("nextFree wraps", func(t *testing.T) {
		if got, ok := p.nextFree(1024, 1030, 1031, maskAll); !ok || got != 1026 {
			t.Errorf("nextFree past end = %d %v, want 1026", got, ok)
		}
		if got, ok := p.nextFree(1024, 1027, 1027, maskAll); !ok || got != 1026 {
			t.Errorf("nextFree wrap = %d %v, want 1026", got, ok)
		}
	})
	t.Run("count and nth", func(t *testing.T) {
		if got := p.countFree(1024, 1088, maskAll); got != 65-4 {
			t.Errorf("countFree = %d, want 61", got)
		}
		if got, ok := p.nthFree(1024, 1088, maskAll, 0); !ok || got != 1026 {
			t.Errorf("nthFree(0) = %d", got)
		}
		if got, ok := p.nthFree(1024, 1088, maskAll, 60); !ok || got != 1087 {
			t.Errorf("nthFree(60) = %d", got)
		}
		if _, ok := p.nthFree(1024, 1088, maskAll, 61); ok {
			t.Error("nthFree past the end found a port")
		}
	})
	t.Run("random is uniform over free ports", func(t *testing.T) {
		var q portPool
		for port := uint16(2000); port < 2100; port++ {
			if port%10 != 0 {
				q.set(port)
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		counts := map[uint16]int{}
		for range 10000 {
			port, ok := q.random(2000, 2099, maskAll, rng)
			if !ok || port%10 != 0 {
				t.Fatalf("random gave %d %v", port, ok)
			}
			counts[port]++
		}
		for port, n := range counts {
			if n < 800 || n > 1200 {
				t.Errorf("port %d drawn %d times of 10000 (10 free ports)", port, n)
			}
		}
		if len(counts) != 10 {
			t.Errorf("drew %d distinct ports, want 10", len(counts))
		}
	})
	t.Run("random with parity and a full range", func(t *testing.T) {
		var q portPool
		q.set(3000)
		rng := rand.New(rand.NewPCG(1, 2))
		if got, ok := q.random(3000, 3001, maskEven, rng); ok {
			t.Errorf("random found even port %d in a full range", got)
		}
		if got, ok := q.random(3000, 3001, maskOdd, rng); !ok || got != 3001 {
			t.Errorf("random odd = %d %v", got, ok)
		}
	})
}

func TestNoPortOverloading(t *testing.T) {
	// RFC 4787 REQ-3: two internal endpoints never share an external one.
	for _, pa := range []PortAssignment{Preserve, Sequential, Random} {
		t.Run(pa.String()+"/A:5000 and B:5000 get distinct externals", func(t *testing.T) {
			tab := newTable(t, func(c *Config) { c.PortAssignment = pa })
			ma := out(t, tab, UDP, ep(hostA, 5000), ep(srvA1, portP1), 0, t0)
			mb := out(t, tab, UDP, ep(hostB, 5000), ep(srvA1, portP1), 0, t0)
			if ma.External() == mb.External() {
				t.Fatalf("both mapped to %v", ma.External())
			}
			if m, v := tab.Inbound(UDP, ma.External(), ep(srvA1, portP1), 0, t0); v != Accept || m.Internal() != ep(hostA, 5000) {
				t.Errorf("reply to A's external reached %v (%s)", m, v)
			}
			if m, v := tab.Inbound(UDP, mb.External(), ep(srvA1, portP1), 0, t0); v != Accept || m.Internal() != ep(hostB, 5000) {
				t.Errorf("reply to B's external reached %v (%s)", m, v)
			}
		})
	}
	t.Run("with the high range 90% full each host still maps endpoint-independently", func(t *testing.T) {
		// docs/nat-requirements.md item 14 (REQ-11): deterministic behaviour under load.
		tab := newTable(t, func(c *Config) { c.PortLo, c.PortHi = 20000, 20999 })
		for i := range 900 {
			out(t, tab, UDP, ep(hostC, uint16(30000+i)), ep(other, 9), 0, t0)
		}
		for _, h := range []netip.Addr{hostA, hostB} {
			m1 := out(t, tab, UDP, ep(h, 5000), ep(srvA1, portP1), 0, t0)
			m2 := out(t, tab, UDP, ep(h, 5000), ep(srvA2, portP2), 0, t0)
			if m1 != m2 {
				t.Errorf("%v: M1 %v != M2 %v", h, m1.External(), m2.External())
			}
		}
	})
}

func TestPortRanges(t *testing.T) {
	// RFC 4787 REQ-3a.
	for _, pa := range []PortAssignment{Preserve, Sequential, Random} {
		t.Run(pa.String()+"/700 maps below 1024", func(t *testing.T) {
			tab := newTable(t, func(c *Config) { c.PortAssignment = pa })
			for _, h := range []netip.Addr{hostA, hostB, hostC} {
				m := out(t, tab, UDP, ep(h, 700), ep(srvA1, portP1), 0, t0)
				if p := m.External().Port(); p == 0 || p >= 1024 {
					t.Errorf("%v:700 mapped to port %d", h, p)
				}
			}
		})
		t.Run(pa.String()+"/40000 maps to 1024 and above", func(t *testing.T) {
			tab := newTable(t, func(c *Config) { c.PortAssignment = pa })
			for _, h := range []netip.Addr{hostA, hostB, hostC} {
				m := out(t, tab, UDP, ep(h, 40000), ep(srvA1, portP1), 0, t0)
				if p := m.External().Port(); p < 1024 {
					t.Errorf("%v:40000 mapped to port %d", h, p)
				}
			}
		})
	}
	t.Run("configured range is kept", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortLo, c.PortHi = 30000, 30099 })
		for i := range 50 {
			m := out(t, tab, TCP, ep(hostA, uint16(2000+i)), ep(srvA1, 80), FlagSYN, t0)
			if p := m.External().Port(); p < 30000 || p > 30099 {
				t.Errorf("port %d outside 30000-30099", p)
			}
		}
	})
	t.Run("port 0 never used", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, ep(hostA, 0), ep(srvA1, portP1), 0, t0)
		if p := m.External().Port(); p == 0 || p >= 1024 {
			t.Errorf("internal port 0 mapped to %d", p)
		}
	})
}

func TestPortAssignment(t *testing.T) {
	t.Run("preserve keeps the port then clashes", func(t *testing.T) {
		tab := newTable(t, nil)
		ma := out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, portP1), 0, t0)
		if ma.External() != ep(ext1, 40000) {
			t.Errorf("A:40000 mapped to %v, want %v", ma.External(), ep(ext1, 40000))
		}
		mb := out(t, tab, UDP, ep(hostB, 40000), ep(srvA1, portP1), 0, t0)
		if mb.External().Port() == 40000 || mb.External().Port() < 1024 {
			t.Errorf("B:40000 mapped to %v", mb.External())
		}
		ml := out(t, tab, UDP, ep(hostA, 700), ep(srvA1, portP1), 0, t0)
		if ml.External().Port() != 700 {
			t.Errorf("A:700 mapped to %v", ml.External())
		}
	})
	t.Run("preserve is per protocol", func(t *testing.T) {
		tab := newTable(t, nil)
		mu := out(t, tab, UDP, ep(hostA, 5000), ep(srvA1, portP1), 0, t0)
		mt := out(t, tab, TCP, ep(hostB, 5000), ep(srvA1, portP1), FlagSYN, t0)
		if mu.External() != ep(ext1, 5000) || mt.External() != ep(ext1, 5000) {
			t.Errorf("udp %v tcp %v, want both :5000", mu.External(), mt.External())
		}
	})
	t.Run("preserve out of the configured range picks one inside", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortLo, c.PortHi = 30000, 30009 })
		m := out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, portP1), 0, t0)
		if p := m.External().Port(); p < 30000 || p > 30009 {
			t.Errorf("mapped to %d", p)
		}
	})
	t.Run("preserve is reproducible from the seed", func(t *testing.T) {
		run := func(seed int64) []uint16 {
			tab := newTable(t, func(c *Config) { c.Seed = seed })
			var ports []uint16
			for _, h := range []netip.Addr{hostA, hostB, hostC} {
				ports = append(ports, out(t, tab, UDP, ep(h, 40000), ep(srvA1, portP1), 0, t0).External().Port())
			}
			return ports
		}
		a, b, c := run(1), run(1), run(2)
		if a[1] != b[1] || a[2] != b[2] {
			t.Errorf("same seed, different ports: %v %v", a, b)
		}
		if a[1] == c[1] && a[2] == c[2] {
			t.Errorf("different seeds, same clash ports: %v %v", a, c)
		}
	})
	t.Run("sequential gives 10 fresh ports consecutive externals", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortAssignment = Sequential })
		var prev uint16
		for i := range 10 {
			m := out(t, tab, UDP, ep(hostA, uint16(51234+7*i)), ep(srvA1, portP1), 0, t0)
			p := m.External().Port()
			if i > 0 && p != prev+1 {
				t.Errorf("socket %d got %d after %d", i, p, prev)
			}
			prev = p
		}
	})
	t.Run("sequential skips used ports and wraps", func(t *testing.T) {
		tab := newTable(t, func(c *Config) {
			c.PortAssignment = Sequential
			c.PortLo, c.PortHi = 30000, 30003
		})
		var got []uint16
		for i := range 4 {
			got = append(got, out(t, tab, UDP, ep(hostA, uint16(40000+i)), ep(srvA1, portP1), 0, t0).External().Port())
		}
		want := []uint16{30000, 30001, 30002, 30003}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("ports %v, want %v", got, want)
			}
		}
		// Free 30001 by expiry; the cursor wraps to it.
		tab.Outbound(UDP, ep(hostA, 40000), ep(srvA1, portP1), 0, t0.Add(200*time.Second))
		tab.Outbound(UDP, ep(hostA, 40002), ep(srvA1, portP1), 0, t0.Add(200*time.Second))
		tab.Outbound(UDP, ep(hostA, 40003), ep(srvA1, portP1), 0, t0.Add(200*time.Second))
		m := out(t, tab, UDP, ep(hostB, 40000), ep(srvA1, portP1), 0, t0.Add(400*time.Second))
		if m.External().Port() != 30001 {
			t.Errorf("after wrap got %d, want 30001", m.External().Port())
		}
	})
	t.Run("random has no monotonic run over 100 sockets", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortAssignment = Random })
		var ports []uint16
		seen := map[uint16]bool{}
		for i := range 100 {
			p := out(t, tab, UDP, ep(hostA, uint16(40000+i)), ep(srvA1, portP1), 0, t0).External().Port()
			if seen[p] {
				t.Fatalf("port %d given twice", p)
			}
			seen[p] = true
			ports = append(ports, p)
		}
		run, longest := 1, 1
		for i := 1; i < len(ports); i++ {
			if ports[i] > ports[i-1] {
				run++
			} else {
				run = 1
			}
			longest = max(longest, run)
		}
		if longest >= 10 {
			t.Errorf("increasing run of %d in %v", longest, ports)
		}
	})
	t.Run("random differs by seed and repeats with it", func(t *testing.T) {
		run := func(seed int64) uint16 {
			tab := newTable(t, func(c *Config) { c.PortAssignment = Random; c.Seed = seed })
			return out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, portP1), 0, t0).External().Port()
		}
		a, b := run(7), run(7)
		if a != b {
			t.Error("same seed, different port")
		}
		if a == run(8) && run(9) == run(10) {
			t.Error("seeds do not change the port")
		}
	})
}

func TestParity(t *testing.T) {
	// RFC 4787 REQ-4.
	for _, pa := range []PortAssignment{Preserve, Sequential, Random} {
		t.Run(pa.String()+"/external port keeps the internal parity", func(t *testing.T) {
			tab := newTable(t, func(c *Config) { c.PortAssignment = pa; c.Parity = true })
			for i := range 200 {
				for _, h := range []netip.Addr{hostA, hostB} { // B clashes with A under preserve
					inPort := uint16(40000 + i)
					m := out(t, tab, UDP, ep(h, inPort), ep(srvA1, portP1), 0, t0)
					if m.External().Port()%2 != inPort%2 {
						t.Fatalf("%v:%d mapped to %v", h, inPort, m.External())
					}
				}
			}
		})
	}
	t.Run("sequential with parity steps by two", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortAssignment = Sequential; c.Parity = true })
		a := out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, portP1), 0, t0).External().Port()
		b := out(t, tab, UDP, ep(hostA, 40002), ep(srvA1, portP1), 0, t0).External().Port()
		if b != a+2 {
			t.Errorf("got %d then %d", a, b)
		}
	})
	t.Run("off: parity not forced", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortAssignment = Sequential })
		a := out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, portP1), 0, t0).External().Port()
		b := out(t, tab, UDP, ep(hostA, 40002), ep(srvA1, portP1), 0, t0).External().Port()
		if b != a+1 {
			t.Errorf("got %d then %d", a, b)
		}
	})
}

func TestPooling(t *testing.T) {
	// RFC 4787 REQ-2, docs/nat-requirements.md item 2.
	two := func(p Pooling) func(c *Config) {
		return func(c *Config) {
			c.External = []netip.Addr{ext1, ext2}
			c.Pooling = p
			c.Mapping = AddressAndPortDependent // a new mapping per flow
			c.PortAssignment = Random
		}
	}
	flows := func(tab *Table, h netip.Addr) map[netip.Addr]int {
		used := map[netip.Addr]int{}
		for i := range 50 {
			rem := ep(srvA1, uint16(3000+i))
			if i%2 == 1 {
				rem = ep(srvA2, uint16(3000+i))
			}
			proto := UDP
			if i%5 == 0 {
				proto = TCP
			}
			m := out(t, tab, proto, ep(h, uint16(40000+i%3)), rem, FlagSYN, t0)
			used[m.External().Addr()]++
		}
		return used
	}
	t.Run("paired/50 flows from A all use one external address", func(t *testing.T) {
		tab := newTable(t, two(Paired))
		usedA := flows(tab, hostA)
		if len(usedA) != 1 {
			t.Fatalf("A used %v", usedA)
		}
		usedB := flows(tab, hostB)
		if len(usedB) != 1 {
			t.Fatalf("B used %v", usedB)
		}
		for a := range usedA {
			if usedB[a] != 0 {
				t.Errorf("A and B share %v: round robin should spread hosts", a)
			}
		}
	})
	t.Run("paired/the pairing survives while any mapping lives", func(t *testing.T) {
		tab := newTable(t, func(c *Config) {
			two(Paired)(c)
			c.UDPTimeout = 60 * time.Second
		})
		first := out(t, tab, UDP, ep(hostA, 1), ep(srvA1, portP1), 0, t0).External().Addr() // lives to +60s
		out(t, tab, ICMP, ep(hostA, 77), ep(srvA1, 0), 0, t0.Add(30*time.Second))           // lives to +90s
		if n := tab.Expire(t0.Add(70*time.Second), nil); n != 1 {
			t.Fatalf("Expire removed %d", n)
		}
		if m := out(t, tab, UDP, ep(hostB, 1), ep(srvA1, portP1), 0, t0.Add(70*time.Second)); m.External().Addr() == first {
			t.Errorf("B shares A's address %v", first)
		}
		m := out(t, tab, TCP, ep(hostA, 2), ep(srvA1, 80), FlagSYN, t0.Add(80*time.Second))
		if m.External().Addr() != first {
			t.Errorf("A's TCP mapping on %v, its first mapping on %v", m.External().Addr(), first)
		}
	})
	t.Run("paired/a full address fails rather than unpair", func(t *testing.T) {
		tab := newTable(t, func(c *Config) {
			two(Paired)(c)
			c.PortLo, c.PortHi = 40000, 40001
		})
		out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, 1), 0, t0)
		out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, 2), 0, t0)
		if _, _, err := tab.Outbound(UDP, ep(hostA, 40000), ep(srvA1, 3), 0, t0); !errors.Is(err, ErrPortsExhausted) {
			t.Errorf("third flow: %v, want ErrPortsExhausted", err)
		}
		// A new host may still use the other address.
		m := out(t, tab, UDP, ep(hostB, 40000), ep(srvA1, 3), 0, t0)
		if m.External().Addr() != ext2 {
			t.Errorf("B on %v", m.External().Addr())
		}
	})
	t.Run("arbitrary/50 flows from A use both addresses", func(t *testing.T) {
		tab := newTable(t, two(Arbitrary))
		if used := flows(tab, hostA); len(used) != 2 {
			t.Errorf("A used %v", used)
		}
	})
	t.Run("arbitrary/preserve tries the other address before giving up the port", func(t *testing.T) {
		tab := newTable(t, func(c *Config) {
			two(Arbitrary)(c)
			c.Mapping = EndpointIndependent
			c.PortAssignment = Preserve
		})
		ma := out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, portP1), 0, t0)
		mb := out(t, tab, UDP, ep(hostB, 40000), ep(srvA1, portP1), 0, t0)
		if ma.External().Port() != 40000 || mb.External().Port() != 40000 || ma.External() == mb.External() {
			t.Errorf("A %v B %v, want port 40000 on both addresses", ma.External(), mb.External())
		}
	})
	t.Run("pool usage", func(t *testing.T) {
		tab := newTable(t, two(Paired))
		flows(tab, hostA)
		used, size := tab.PoolUsage(UDP)
		if used != 40 || size != 2*(1023+64512) {
			t.Errorf("udp usage %d/%d", used, size)
		}
		used, _ = tab.PoolUsage(TCP)
		if used != 10 {
			t.Errorf("tcp usage %d", used)
		}
		if used, size := tab.PoolUsage(ICMP); used != 0 || size != 2*65535 {
			t.Errorf("icmp usage %d/%d", used, size)
		}
	})
}

func TestExhaustion(t *testing.T) {
	// RFC 5508 REQ-8, RFC 6888 REQ-4: when the ports run out, fail the new
	// flow; never evict a live mapping.
	for _, pa := range []PortAssignment{Preserve, Sequential, Random} {
		t.Run(pa.String()+"/11th mapping in a 10-port range fails", func(t *testing.T) {
			tab := newTable(t, func(c *Config) {
				c.PortAssignment = pa
				c.PortLo, c.PortHi = 40000, 40009
				c.UDPTimeout = 120 * time.Second
			})
			var live []*Mapping
			for i := range 10 {
				live = append(live, out(t, tab, UDP, ep(hostA, uint16(50000+i)), ep(srvA1, portP1), 0, t0))
			}
			before := make([]Mapping, len(live))
			for i, m := range live {
				before[i] = *m
			}
			_, _, err := tab.Outbound(UDP, ep(hostB, 50000), ep(srvA1, portP1), 0, t0.Add(time.Second))
			if !errors.Is(err, ErrPortsExhausted) || err.Error() != "no free external port" {
				t.Fatalf("11th: %v, want ErrPortsExhausted", err)
			}
			if tab.Len() != 10 {
				t.Fatalf("Len %d after exhaustion", tab.Len())
			}
			for i, m := range live {
				if m.External() != before[i].External() || m.Expires() != before[i].Expires() {
					t.Errorf("mapping %d changed: %v -> %v", i, before[i].External(), m.External())
				}
				if got := tab.PeekOutbound(UDP, m.Internal(), ep(srvA1, portP1), t0.Add(time.Second)); got != m {
					t.Errorf("mapping %d no longer found", i)
				}
				in(t, tab, UDP, m.External(), ep(srvA1, portP1), 0, t0.Add(time.Second), Accept)
			}
			if used, _ := tab.PoolUsage(UDP); used != 10 {
				t.Errorf("used %d", used)
			}
			// Other protocols have their own ports.
			out(t, tab, TCP, ep(hostB, 50000), ep(srvA1, 80), FlagSYN, t0.Add(time.Second))

			// Keep one alive; after the rest lapse a port is free again,
			// even before Expire runs.
			later := t0.Add(100 * time.Second)
			out(t, tab, UDP, live[3].Internal(), ep(srvA1, portP1), 0, later)
			m := out(t, tab, UDP, ep(hostB, 50000), ep(srvA1, portP1), 0, t0.Add(121*time.Second))
			if p := m.External().Port(); p < 40000 || p > 40009 || p == live[3].External().Port() {
				t.Errorf("after expiry got %v", m.External())
			}
			if got := tab.PeekOutbound(UDP, live[3].Internal(), ep(srvA1, portP1), t0.Add(121*time.Second)); got != live[3] {
				t.Error("refreshed mapping lost")
			}
			if n := tab.Expire(t0.Add(121*time.Second), nil); n != 9 {
				t.Errorf("Expire reported %d, want the 9 lapsed ones", n)
			}
			if tab.Len() != 3 { // live[3], B's UDP and B's TCP
				t.Errorf("Len %d, want 3", tab.Len())
			}
		})
	}
	t.Run("ICMP identifiers exhaust separately", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortLo, c.PortHi = 40000, 40000 })
		out(t, tab, UDP, ep(hostA, 40000), ep(srvA1, portP1), 0, t0)
		if _, _, err := tab.Outbound(UDP, ep(hostB, 40000), ep(srvA1, portP1), 0, t0); !errors.Is(err, ErrPortsExhausted) {
			t.Fatalf("udp: %v", err)
		}
		for i := range 5 {
			out(t, tab, ICMP, ep(hostB, uint16(i)), ep(srvA1, 0), 0, t0)
		}
	})
}

func TestICMPQueryMappings(t *testing.T) {
	// RFC 5508 REQ-1, REQ-2.
	tab := newTable(t, func(c *Config) {
		c.Mapping = AddressAndPortDependent
		c.Filtering = EndpointIndependent
		c.PortLo, c.PortHi = 40000, 40009 // does not apply to identifiers
	})
	m := out(t, tab, ICMP, ep(hostA, 4321), ep(srvA1, 0), 0, t0)
	t.Run("identifier preserved", func(t *testing.T) {
		if m.External() != ep(ext1, 4321) {
			t.Errorf("external %v", m.External())
		}
	})
	t.Run("endpoint independent whatever the config", func(t *testing.T) {
		m2, created, _ := tab.Outbound(ICMP, ep(hostA, 4321), ep(srvA2, 0), 0, t0)
		if created || m2 != m {
			t.Errorf("ping to A2 made a new mapping %v", m2.External())
		}
	})
	t.Run("clashing identifier moves", func(t *testing.T) {
		mb := out(t, tab, ICMP, ep(hostB, 4321), ep(srvA1, 0), 0, t0)
		if mb.External() == m.External() || mb.External().Port() == 0 {
			t.Errorf("B's ping mapped to %v", mb.External())
		}
	})
	t.Run("identifier 0 gets a nonzero one", func(t *testing.T) {
		m0 := out(t, tab, ICMP, ep(hostC, 0), ep(srvA1, 0), 0, t0)
		if m0.External().Port() == 0 {
			t.Error("identifier 0 kept")
		}
	})
	t.Run("reply from a pinged address answered", func(t *testing.T) {
		in(t, tab, ICMP, m.External(), ep(srvA2, 4321), 0, t0, Accept)
		in(t, tab, ICMP, m.External(), ep(srvA1, 0), 0, t0, Accept)
	})
	t.Run("reply from another address dropped", func(t *testing.T) {
		in(t, tab, ICMP, m.External(), ep(other, 4321), 0, t0, DropFiltered)
	})
	t.Run("sessions show the address", func(t *testing.T) {
		st := sessionStates(m)
		if len(st) != 2 || st[ep(srvA1, 0)] != "" || st[ep(srvA2, 0)] != "" {
			t.Errorf("sessions %v", st)
		}
	})
	t.Run("lives 60s", func(t *testing.T) {
		in(t, tab, ICMP, m.External(), ep(srvA1, 0), 0, t0.Add(59*time.Second), Accept)
		in(t, tab, ICMP, m.External(), ep(srvA1, 0), 0, t0.Add(60*time.Second), DropNoMapping)
	})
	t.Run("not IPv4", func(t *testing.T) {
		if _, _, err := tab.Outbound(ICMP, netip.MustParseAddrPort("[2001:db8::1]:1"), ep(srvA1, 0), 0, t0); !errors.Is(err, ErrNotIPv4) {
			t.Errorf("err %v", err)
		}
		if _, _, err := tab.Outbound(47, ep(hostA, 1), ep(srvA1, 0), 0, t0); !errors.Is(err, ErrProtocol) {
			t.Errorf("err %v", err)
		}
		if _, v := tab.Inbound(UDP, m.External(), netip.MustParseAddrPort("[2001:db8::1]:1"), 0, t0); v != DropNoMapping {
			t.Errorf("verdict %v", v)
		}
	})
}

// One seed, two NATs: different port sequences (their external addresses
// pick the stream); the same NAT again: the same sequence.
func TestSeedStreamPerNAT(t *testing.T) {
	ports := func(ext string) []uint16 {
		tab := newTable(t, func(c *Config) {
			c.PortAssignment = Random
			c.Seed = 42
			c.External = []netip.Addr{netip.MustParseAddr(ext)}
		})
		var got []uint16
		for i := range 8 {
			got = append(got, out(t, tab, UDP, ep(hostA, uint16(40000+i)), ep(srvA1, portP1), 0, t0).External().Port())
		}
		return got
	}
	a, b, again := ports("198.51.100.1"), ports("198.51.100.2"), ports("198.51.100.1")
	if slices.Equal(a, b) {
		t.Errorf("two NATs with seed 42 share the port sequence %v", a)
	}
	if !slices.Equal(a, again) {
		t.Errorf("seed 42 on one NAT: %v, then %v", a, again)
	}
}
