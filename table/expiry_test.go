package table

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func TestUDPExpiry(t *testing.T) {
	// RFC 4787 REQ-5, REQ-6; docs/nat-requirements.md items 8, 9. The clock is virtual.
	const timeout = 300 * time.Second
	a, srv := ep(hostA, 5000), ep(srvA1, portP1)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	t.Run("lives at t-1s, gone at t and t+1s", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, a, srv, 0, t0)
		if !m.Expires().Equal(at(timeout)) {
			t.Errorf("Expires %v, want +%v", m.Expires().Sub(t0), timeout)
		}
		in(t, tab, UDP, m.External(), srv, 0, at(timeout-time.Second), Accept)
		in(t, tab, UDP, m.External(), srv, 0, at(timeout), DropNoMapping)
		in(t, tab, UDP, m.External(), srv, 0, at(timeout+time.Second), DropNoMapping)
		if tab.PeekOutbound(UDP, a, srv, at(timeout+time.Second)) != nil {
			t.Error("PeekOutbound finds a lapsed mapping")
		}
		if _, v := tab.PeekInbound(UDP, m.External(), srv, at(timeout+time.Second)); v != DropNoMapping {
			t.Errorf("PeekInbound: %s", v)
		}
		m2, created, err := tab.Outbound(UDP, a, srv, 0, at(timeout+time.Second))
		if err != nil || !created || m2 == m {
			t.Errorf("Outbound after lapse: created %v err %v", created, err)
		}
	})
	t.Run("outbound refreshes", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, a, srv, 0, t0)
		out(t, tab, UDP, a, srv, 0, at(200*time.Second))
		in(t, tab, UDP, m.External(), srv, 0, at(499*time.Second), Accept)
		in(t, tab, UDP, m.External(), srv, 0, at(501*time.Second), DropNoMapping)
	})
	t.Run("outbound to another remote refreshes an EIM mapping", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, a, srv, 0, t0)
		out(t, tab, UDP, a, ep(srvA2, portP1), 0, at(200*time.Second))
		in(t, tab, UDP, m.External(), ep(srvA2, portP1), 0, at(499*time.Second), Accept)
	})
	t.Run("inbound does not refresh without InboundRefresh", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, a, srv, 0, t0)
		in(t, tab, UDP, m.External(), srv, 0, at(200*time.Second), Accept)
		in(t, tab, UDP, m.External(), srv, 0, at(301*time.Second), DropNoMapping)
	})
	t.Run("inbound refreshes with InboundRefresh", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.InboundRefresh = true })
		m := out(t, tab, UDP, a, srv, 0, t0)
		in(t, tab, UDP, m.External(), srv, 0, at(200*time.Second), Accept)
		if !m.Expires().Equal(at(500 * time.Second)) {
			t.Errorf("Expires +%v", m.Expires().Sub(t0))
		}
		if _, v := tab.PeekInbound(UDP, m.External(), srv, at(499*time.Second)); v != Accept {
			t.Errorf("at +499s: %s", v)
		}
		if _, v := tab.PeekInbound(UDP, m.External(), srv, at(500*time.Second)); v != DropNoMapping {
			t.Errorf("at +500s: %s", v)
		}
	})
	t.Run("a filtered packet never refreshes", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.InboundRefresh = true })
		m := out(t, tab, UDP, a, srv, 0, t0)
		in(t, tab, UDP, m.External(), ep(srvA2, portP1), 0, at(200*time.Second), DropFiltered)
		if !m.Expires().Equal(at(timeout)) || m.PacketsIn() != 0 {
			t.Errorf("filtered packet touched the mapping: +%v, %d in", m.Expires().Sub(t0), m.PacketsIn())
		}
	})
	t.Run("permissions lapse on their own", func(t *testing.T) {
		tab := newTable(t, nil) // EIM, APDF
		m := out(t, tab, UDP, a, srv, 0, t0)
		out(t, tab, UDP, a, ep(srvA2, portP1), 0, at(200*time.Second))
		in(t, tab, UDP, m.External(), srv, 0, at(301*time.Second), DropFiltered)
		in(t, tab, UDP, m.External(), ep(srvA2, portP1), 0, at(301*time.Second), Accept)
		var exp []time.Duration
		m.Sessions(func(s SessionInfo) bool {
			exp = append(exp, s.Expires.Sub(t0))
			return true
		})
		if len(exp) != 2 || exp[0] != 300*time.Second || exp[1] != 500*time.Second {
			t.Errorf("session expiries %v", exp)
		}
	})
	t.Run("restricted-cone permission lapses by address", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.Filtering = AddressDependent })
		m := out(t, tab, UDP, a, srv, 0, t0)
		out(t, tab, UDP, a, ep(srvA2, portP1), 0, at(200*time.Second))
		in(t, tab, UDP, m.External(), ep(srvA1, portP2), 0, at(299*time.Second), Accept)
		in(t, tab, UDP, m.External(), ep(srvA1, portP2), 0, at(300*time.Second), DropFiltered)
		in(t, tab, UDP, m.External(), ep(srvA2, portP2), 0, at(300*time.Second), Accept)
	})
	t.Run("inbound refresh also renews the sender's permission", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.InboundRefresh = true })
		m := out(t, tab, UDP, a, srv, 0, t0)
		out(t, tab, UDP, a, ep(srvA2, portP1), 0, at(100*time.Second))
		in(t, tab, UDP, m.External(), srv, 0, at(250*time.Second), Accept)
		in(t, tab, UDP, m.External(), srv, 0, at(301*time.Second), Accept)
	})
	t.Run("Expire removes and frees the port", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortHold = 0 }) // another host takes it at once
		m := out(t, tab, UDP, a, srv, 0, t0)
		if m.External().Port() != 5000 {
			t.Fatalf("A:5000 mapped to %v", m.External())
		}
		if n := tab.Expire(at(timeout-time.Second), nil); n != 0 {
			t.Errorf("Expire before the timeout removed %d", n)
		}
		var removed []*Mapping
		if n := tab.Expire(at(timeout), func(m *Mapping) { removed = append(removed, m) }); n != 1 {
			t.Errorf("Expire removed %d", n)
		}
		if len(removed) != 1 || removed[0] != m {
			t.Errorf("fn got %v", removed)
		}
		if tab.Len() != 0 {
			t.Errorf("Len %d", tab.Len())
		}
		if used, _ := tab.PoolUsage(UDP); used != 0 {
			t.Errorf("%d ports still used", used)
		}
		mb := out(t, tab, UDP, ep(hostB, 5000), srv, 0, at(timeout))
		if mb.External() != m.External() {
			t.Errorf("B:5000 got %v, want the freed %v", mb.External(), m.External())
		}
		if n := tab.Expire(at(timeout), nil); n != 0 {
			t.Errorf("second Expire removed %d", n)
		}
	})
	t.Run("a lapsed mapping replaced by Outbound is reported by Expire", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, a, srv, 0, t0)
		m2 := out(t, tab, UDP, a, srv, 0, at(timeout+time.Second))
		if m2 == m || m2.External() != m.External() {
			t.Errorf("new mapping %v (old %v)", m2.External(), m.External())
		}
		var removed []*Mapping
		if n := tab.Expire(at(timeout+time.Second), func(m *Mapping) { removed = append(removed, m) }); n != 1 || removed[0] != m {
			t.Errorf("Expire reported %d %v", n, removed)
		}
		if tab.Len() != 1 || tab.PeekOutbound(UDP, a, srv, at(timeout+time.Second)) != m2 {
			t.Error("the new mapping was lost")
		}
	})
	t.Run("a lapsed mapping holding a preserved port gives it up", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.PortHold = 0 }) // another host takes it at once
		m := out(t, tab, UDP, a, srv, 0, t0)
		mb := out(t, tab, UDP, ep(hostB, 5000), srv, 0, at(timeout))
		if mb.External() != m.External() {
			t.Errorf("B got %v, want %v", mb.External(), m.External())
		}
		if tab.Len() != 1 || tab.Expire(at(timeout), nil) != 1 {
			t.Error("lapsed mapping not reported once")
		}
	})
	t.Run("Flush drops everything", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, UDP, a, srv, 0, t0)
		out(t, tab, TCP, a, srv, FlagSYN, t0)
		out(t, tab, ICMP, a, srv, 0, t0)
		tab.Flush()
		if tab.Len() != 0 {
			t.Errorf("Len %d", tab.Len())
		}
		in(t, tab, UDP, m.External(), srv, 0, t0, DropNoMapping)
		for _, p := range []Protocol{UDP, TCP, ICMP} {
			if used, _ := tab.PoolUsage(p); used != 0 {
				t.Errorf("%s: %d ports used", p, used)
			}
		}
		if n := tab.Expire(t0.Add(24*time.Hour), nil); n != 0 {
			t.Errorf("Expire after Flush removed %d", n)
		}
		m2, created, _ := tab.Outbound(UDP, a, srv, 0, t0)
		if !created || m2.External() != m.External() {
			t.Errorf("after Flush: created %v, %v", created, m2.External())
		}
	})
}

// TestExpireExact checks Expire against a scan of All over random traffic:
// after Expire(now), every mapping left has Expires > now and every one
// removed had Expires <= now.
func TestExpireExact(t *testing.T) {
	tab := newTable(t, func(c *Config) {
		c.External = []netip.Addr{ext1, ext2}
		c.PortLo, c.PortHi = 1000+24, 1100
		c.Mapping = AddressAndPortDependent
		c.UDPTimeout = 30 * time.Second
		c.ICMPTimeout = 10 * time.Second
		c.TCPEstablishedTimeout = 100 * time.Second
		c.TCPTransitoryTimeout = 20 * time.Second
		c.InboundRefresh = true
	})
	rng := rand.New(rand.NewPCG(3, 4))
	now := t0
	created, removed, exhausted := 0, 0, 0
	flags := []uint8{FlagSYN, FlagSYN | FlagACK, FlagACK, FlagFIN | FlagACK, FlagRST, 0}
	for step := range 20000 {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Millisecond)
		proto := []Protocol{UDP, TCP, ICMP}[rng.IntN(3)]
		host := netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(2)), byte(1 + rng.IntN(5))})
		inside := ep(host, uint16(1010+rng.IntN(20))) // both port ranges
		rem := ep(srvA1, uint16(3478+rng.IntN(3)))
		f := flags[rng.IntN(len(flags))]
		m, c, err := tab.Outbound(proto, inside, rem, f, now)
		if errors.Is(err, ErrPortsExhausted) {
			exhausted++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if c {
			created++
		}
		if rng.IntN(2) == 0 {
			tab.Inbound(proto, m.External(), rem, flags[rng.IntN(len(flags))], now)
		}
		if step%100 == 0 {
			checkInvariants(t, tab)
		}
		if step%500 == 0 {
			removed += tab.Expire(now, func(m *Mapping) {
				if m.Expires().After(now) {
					t.Fatalf("removed a live mapping %v (+%v)", m, m.Expires().Sub(now))
				}
			})
			tab.All(func(m *Mapping) bool {
				if !m.Expires().After(now) {
					t.Fatalf("kept a lapsed mapping %v", m)
				}
				return true
			})
		}
	}
	// Outbound may have removed lapsed mappings since the last check; Expire
	// reports them.
	removed += tab.Expire(now, nil)
	if created-removed != tab.Len() {
		t.Errorf("created %d removed %d, Len %d", created, removed, tab.Len())
	}
	removed += tab.Expire(now.Add(time.Hour), nil)
	t.Logf("%d mappings made, %d refused for want of ports", created, exhausted)
	if tab.Len() != 0 || created != removed {
		t.Errorf("after the last Expire: Len %d, created %d removed %d", tab.Len(), created, removed)
	}
	for _, p := range []Protocol{UDP, TCP, ICMP} {
		if used, _ := tab.PoolUsage(p); used != 0 {
			t.Errorf("%s: %d ports used with no mapping", p, used)
		}
	}
	if len(tab.pairs) != 0 || len(tab.heap) != 0 || tab.out.n != 0 {
		t.Errorf("state left: %d pairs, %d heap, %d out", len(tab.pairs), len(tab.heap), tab.out.n)
	}
}

// checkInvariants verifies the table's internal indexes agree with each other.
func checkInvariants(t *testing.T, tab *Table) {
	t.Helper()
	if tab.in.n != tab.out.n || len(tab.heap) != tab.in.n {
		t.Fatalf("%d in, %d out, %d in heap", tab.in.n, tab.out.n, len(tab.heap))
	}
	checkIndex(t, &tab.in, func(m *Mapping) uint32 { return hashExt(m.extWord(), tab.seed) })
	checkIndex(t, &tab.out, func(m *Mapping) uint32 { return hashOut(m.okey.probe(), tab.seed) })
	perProto := map[int]int{}
	pairs := map[[4]byte]pair{}
	holders := map[extKey]int32{}
	for m := range tab.in.all {
		k := m.extKey()
		found := false
		for c := range tab.in.eachExt(hashExt(k.word(), tab.seed), k.word()) {
			found = found || c == m
		}
		if !found || tab.out.findOut(hashOut(m.okey.probe(), tab.seed), m.okey.probe()) != m {
			t.Fatalf("%v indexed wrongly", m)
		}
		holders[k]++
		if !tab.pools[m.Proto().index()][m.ext].isUsed(m.External().Port()) {
			t.Fatalf("%v: port not marked used", m)
		}
		if tab.heap[m.hidx] != m || m.due > m.expires {
			t.Fatalf("%v: heap slot %d, due %v after Expires", m, m.hidx, m.due)
		}
		perProto[m.Proto().index()]++
		p := pairs[m.okey.in]
		p.ext = int32(m.ext)
		p.n++
		pairs[m.okey.in] = p
		if tab.cfg.Pooling == Paired && tab.pairs[m.okey.in].ext != int32(m.ext) {
			t.Fatalf("%v not on its paired address", m)
		}
	}
	for i := 1; i < len(tab.heap); i++ {
		if tab.heap[i].due < tab.heap[(i-1)/2].due {
			t.Fatalf("heap order broken at %d", i)
		}
	}
	for pi, pools := range tab.pools {
		used := 0
		for _, p := range pools {
			if p != nil {
				used += p.n
			}
		}
		extra := 0
		for k, n := range holders {
			if k.proto.index() == pi {
				extra += int(n - 1)
			}
		}
		if used+extra != perProto[pi] {
			t.Fatalf("protocol %d: %d ports used + %d shared, %d mappings", pi, used, extra, perProto[pi])
		}
	}
	for k, n := range holders {
		if n > 1 && !tab.cfg.PortOverloading {
			t.Fatalf("%v held by %d mappings without port overloading", k, n)
		}
		if tab.shared[k] != n-1 {
			t.Fatalf("%v: %d holders, shared count %d", k, n, tab.shared[k])
		}
	}
	if len(tab.shared) > len(holders) {
		t.Fatalf("shared counts for %d endpoints, %d held", len(tab.shared), len(holders))
	}
	if tab.cfg.Pooling == Paired && len(pairs) != len(tab.pairs) {
		t.Fatalf("%d pairs, want %d", len(tab.pairs), len(pairs))
	}
	for ia, p := range pairs {
		if tab.cfg.Pooling == Paired && tab.pairs[ia] != p {
			t.Fatalf("pair %v = %+v, want %+v", ia, tab.pairs[ia], p)
		}
	}
}
