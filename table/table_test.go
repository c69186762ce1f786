package table

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func TestPeekHasNoSideEffects(t *testing.T) {
	// RFC 5508 REQ-6: an ICMP error neither refreshes, creates nor deletes.
	a, r := ep(hostA, 5000), ep(srvA1, portP1)
	tab := newTable(t, func(c *Config) { c.InboundRefresh = true })
	m := out(t, tab, UDP, a, r, 0, t0)
	mt := out(t, tab, TCP, a, r, syn, t0)
	snap := func() (Mapping, Mapping, int, string) {
		return *m, *mt, tab.Len(), fmt.Sprint(sessionStates(m), sessionStates(mt))
	}
	m0, mt0, n0, s0 := snap()
	check := func(t *testing.T) {
		t.Helper()
		m1, mt1, n1, s1 := snap()
		if !m1.Expires().Equal(m0.Expires()) || !mt1.Expires().Equal(mt0.Expires()) {
			t.Errorf("Expires moved: %v %v", m1.Expires().Sub(m0.Expires()), mt1.Expires().Sub(mt0.Expires()))
		}
		if m1.PacketsIn() != m0.PacketsIn() || m1.PacketsOut() != m0.PacketsOut() || mt1.PacketsIn() != mt0.PacketsIn() {
			t.Error("counters moved")
		}
		if n1 != n0 {
			t.Errorf("Len %d, was %d", n1, n0)
		}
		if s1 != s0 {
			t.Errorf("sessions %s, were %s", s1, s0)
		}
	}
	t.Run("PeekInbound accepted", func(t *testing.T) {
		if got, v := tab.PeekInbound(UDP, m.External(), r, t0.Add(100*time.Second)); v != Accept || got != m {
			t.Errorf("%v %s", got, v)
		}
		if got, v := tab.PeekInbound(TCP, mt.External(), r, t0.Add(100*time.Second)); v != Accept || got != mt {
			t.Errorf("%v %s", got, v)
		}
		check(t)
	})
	t.Run("PeekInbound filtered", func(t *testing.T) {
		if got, v := tab.PeekInbound(UDP, m.External(), ep(srvA2, portP1), t0); v != DropFiltered || got != m {
			t.Errorf("%v %s", got, v)
		}
		check(t)
	})
	t.Run("PeekInbound with no mapping", func(t *testing.T) {
		if got, v := tab.PeekInbound(TCP, ep(ext1, 9), r, t0); v != DropNoMapping || got != nil {
			t.Errorf("%v %s", got, v)
		}
		check(t)
	})
	t.Run("PeekOutbound found", func(t *testing.T) {
		if got := tab.PeekOutbound(UDP, a, r, t0.Add(time.Second)); got != m {
			t.Errorf("got %v", got)
		}
		if got := tab.PeekOutbound(UDP, a, ep(srvA2, 1), t0.Add(time.Second)); got != m {
			t.Errorf("EIM: got %v for another remote", got)
		}
		check(t)
	})
	t.Run("PeekOutbound never creates", func(t *testing.T) {
		if got := tab.PeekOutbound(UDP, ep(hostB, 5000), r, t0); got != nil {
			t.Errorf("got %v", got)
		}
		if got := tab.PeekOutbound(ICMP, a, r, t0); got != nil {
			t.Errorf("got %v", got)
		}
		check(t)
	})
	t.Run("Peek on a lapsed mapping never deletes", func(t *testing.T) {
		late := t0.Add(time.Hour)
		if got := tab.PeekOutbound(UDP, a, r, late); got != nil {
			t.Errorf("got %v", got)
		}
		if got, v := tab.PeekInbound(UDP, m.External(), r, late); v != DropNoMapping || got != nil {
			t.Errorf("%v %s", got, v)
		}
		check(t)
		if used, _ := tab.PoolUsage(UDP); used != 1 {
			t.Errorf("port freed by Peek: used %d", used)
		}
		if n := tab.Expire(late, nil); n != 2 {
			t.Errorf("Expire removed %d", n)
		}
	})
}

func TestCountersAndAccessors(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.Filtering = EndpointIndependent })
	a, r := ep(hostA, 5000), ep(srvA1, portP1)
	m, created, err := tab.Outbound(UDP, a, r, 0, t0)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	m.AddBytes(true, 100)
	out(t, tab, UDP, a, ep(srvA2, portP2), 0, t0)
	in(t, tab, UDP, m.External(), r, 0, t0, Accept)
	m.AddBytes(false, 40)
	in(t, tab, UDP, m.External(), ep(other, 1), 0, t0, Accept)
	if m.PacketsOut() != 2 || m.PacketsIn() != 2 || m.BytesOut() != 100 || m.BytesIn() != 40 {
		t.Errorf("counters %d/%d packets %d/%d bytes", m.PacketsOut(), m.PacketsIn(), m.BytesOut(), m.BytesIn())
	}
	if !m.Created().Equal(t0) || m.Proto() != UDP || m.Internal() != a {
		t.Errorf("fields %+v", m)
	}
	if s := m.String(); s != "udp 10.0.0.2:5000 -> 198.51.100.1:5000" {
		t.Errorf("String() = %q", s)
	}
	n := 0
	m.Sessions(func(SessionInfo) bool { n++; return false })
	if n != 1 {
		t.Errorf("Sessions did not stop: %d", n)
	}
	out(t, tab, TCP, a, r, syn, t0)
	n = 0
	tab.All(func(*Mapping) bool { n++; return false })
	if n != 1 {
		t.Errorf("All did not stop: %d", n)
	}
	n = 0
	tab.All(func(*Mapping) bool { n++; return true })
	if n != 2 || tab.Len() != 2 {
		t.Errorf("All saw %d, Len %d", n, tab.Len())
	}
}

// TestManySessions drives one mapping with hundreds of remotes (so its
// session list is indexed, pruned, and unindexed again) and checks every
// verdict against a direct model of RFC 4787 filtering and refresh.
func TestManySessions(t *testing.T) {
	const timeout = 60 * time.Second
	for _, f := range []Behavior{EndpointIndependent, AddressDependent, AddressAndPortDependent} {
		for _, refresh := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/refresh=%v", f.Short(true), refresh), func(t *testing.T) {
				tab := newTable(t, func(c *Config) {
					c.Filtering = f
					c.UDPTimeout = timeout
					c.InboundRefresh = refresh
				})
				a := ep(hostA, 5000)
				remote := func(rng *rand.Rand, n int) netip.AddrPort {
					i := rng.IntN(n)
					return ep(netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%10)}), uint16(1000+i/10))
				}
				// The model.
				var mapExp time.Time
				sess := map[netip.AddrPort]time.Time{}
				live := func(r netip.AddrPort, now time.Time) bool { return now.Before(sess[r]) }
				admits := func(r netip.AddrPort, now time.Time) bool {
					switch f {
					case EndpointIndependent:
						return true
					case AddressAndPortDependent:
						return live(r, now)
					}
					for o, e := range sess {
						if o.Addr() == r.Addr() && now.Before(e) {
							return true
						}
					}
					return false
				}

				rng := rand.New(rand.NewPCG(5, 6))
				now := t0
				var m *Mapping
				maxSess := 0
				for step := range 30000 {
					// Phases: many peers, then few (so the index is dropped), then many.
					peers := 300
					if step/10000 == 1 {
						peers = 5
					}
					now = now.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
					r := remote(rng, peers)
					if rng.IntN(3) == 0 {
						if !now.Before(mapExp) {
							clear(sess) // a new mapping starts with no permissions
						}
						m = out(t, tab, UDP, a, r, 0, now)
						mapExp = now.Add(timeout)
						sess[r] = now.Add(timeout)
						maxSess = max(maxSess, int(m.nsess))
						continue
					}
					if m == nil {
						continue
					}
					want := Accept
					switch {
					case !now.Before(mapExp):
						want = DropNoMapping
					case !admits(r, now):
						want = DropFiltered
					}
					if _, v := tab.Inbound(UDP, m.External(), r, 0, now); v != want {
						t.Fatalf("step %d: from %v at +%v: %s, want %s (indexed %v, %d sessions)",
							step, r, now.Sub(t0), v, want, m.indexed(), int(m.nsess))
					}
					if want == Accept && refresh {
						mapExp = now.Add(timeout)
						if live(r, now) {
							sess[r] = now.Add(timeout)
						}
					}
					if want == Accept && !mapExp.Equal(m.Expires()) {
						t.Fatalf("step %d: Expires +%v, model +%v", step, m.Expires().Sub(t0), mapExp.Sub(t0))
					}
				}
				if maxSess > 2*300+2*indexThreshold {
					t.Errorf("session list grew to %d for 300 peers: not pruned", maxSess)
				}
			})
		}
	}
}

// Sinks keep the compiler from optimising the measured calls away.
var (
	sinkMapping *Mapping
	sinkVerdict Verdict
	sinkBool    bool
)

func TestHitsDoNotAllocate(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.InboundRefresh = true })
	a, r := ep(hostA, 5000), ep(srvA1, portP1)
	mu := out(t, tab, UDP, a, r, 0, t0)
	mt := out(t, tab, TCP, a, r, syn, t0)
	in(t, tab, TCP, mt.External(), r, synAck, t0, Accept)
	mi := out(t, tab, ICMP, a, r, 0, t0)
	// A mapping with an indexed session list.
	big := out(t, tab, UDP, ep(hostB, 6000), r, 0, t0)
	for i := range 50 {
		out(t, tab, UDP, ep(hostB, 6000), ep(other, uint16(100+i)), 0, t0)
	}
	if !big.indexed() {
		t.Fatal("50 sessions not indexed")
	}
	now := t0.Add(time.Second)
	segOut := Segment{Seq: 100, Ack: 900, Len: 60, Window: 1000, Flags: ack, HasSeq: true}
	segIn := Segment{Seq: 900, Ack: 160, Len: 60, Window: 1000, Flags: ack, HasSeq: true}
	segRst := Segment{Seq: 900 + 1<<31, Flags: rst, HasSeq: true}
	cases := []struct {
		name string
		fn   func()
	}{
		{"udp outbound hit", func() { sinkMapping, sinkBool, _ = tab.Outbound(UDP, a, r, 0, now) }},
		{"udp inbound hit", func() { sinkMapping, sinkVerdict = tab.Inbound(UDP, mu.External(), r, 0, now) }},
		{"udp inbound filtered", func() { sinkMapping, sinkVerdict = tab.Inbound(UDP, mu.External(), ep(other, 1), 0, now) }},
		{"udp inbound no mapping", func() { sinkMapping, sinkVerdict = tab.Inbound(UDP, ep(ext1, 1), r, 0, now) }},
		{"tcp outbound hit", func() { sinkMapping, sinkBool, _ = tab.Outbound(TCP, a, r, ack, now) }},
		{"tcp inbound hit", func() { sinkMapping, sinkVerdict = tab.Inbound(TCP, mt.External(), r, ack, now) }},
		{"icmp outbound hit", func() { sinkMapping, sinkBool, _ = tab.Outbound(ICMP, a, r, 0, now) }},
		{"icmp inbound hit", func() { sinkMapping, sinkVerdict = tab.Inbound(ICMP, mi.External(), r, 0, now) }},
		{"indexed outbound hit", func() { sinkMapping, sinkBool, _ = tab.Outbound(UDP, ep(hostB, 6000), ep(other, 140), 0, now) }},
		{"indexed inbound hit", func() { sinkMapping, sinkVerdict = tab.Inbound(UDP, big.External(), ep(other, 140), 0, now) }},
		{"peek inbound", func() { sinkMapping, sinkVerdict = tab.PeekInbound(UDP, mu.External(), r, now) }},
		{"peek outbound", func() { sinkMapping = tab.PeekOutbound(UDP, a, r, now) }},
		// The hit path (hit.go), which the engine tries first.
		{"udp outbound hit path", func() { sinkMapping = tab.outboundHit(UDP, a, r, flagSeg(0), 100, now) }},
		{"udp inbound hit path", func() {
			sinkMapping, sinkVerdict, sinkBool = tab.inboundHit(UDP, mu.External(), r, flagSeg(0), 100, now)
		}},
		{"udp inbound hit path filtered", func() {
			sinkMapping, sinkVerdict, sinkBool = tab.inboundHit(UDP, mu.External(), ep(other, 1), flagSeg(0), 100, now)
		}},
		{"tcp outbound hit path", func() { sinkMapping = tab.outboundHit(TCP, a, r, flagSeg(ack), 100, now) }},
		{"tcp inbound hit path", func() {
			sinkMapping, sinkVerdict, sinkBool = tab.inboundHit(TCP, mt.External(), r, flagSeg(ack), 100, now)
		}},
		{"indexed inbound hit path", func() {
			sinkMapping, sinkVerdict, sinkBool = tab.inboundHit(UDP, big.External(), ep(other, 140), flagSeg(0), 100, now)
		}},
		// With sequence numbers: the windows tracked and checked.
		{"tcp outbound hit path, windows", func() { sinkMapping = tab.outboundHit(TCP, a, r, &segOut, 100, now) }},
		{"tcp inbound hit path, windows", func() {
			sinkMapping, sinkVerdict, sinkBool = tab.inboundHit(TCP, mt.External(), r, &segIn, 100, now)
		}},
		{"tcp inbound RST out of the window", func() {
			sinkMapping, sinkVerdict = tab.InboundSeg(TCP, mt.External(), r, segRst, now)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
				t.Errorf("%v allocations per call", n)
			}
		})
	}
	if sinkVerdict != DropOutOfWindow {
		t.Errorf("the RST out of the window (the last case): %v", sinkVerdict)
	}
}

func TestManySessionsTCP(t *testing.T) {
	// An indexed TCP mapping whose latest session closes: the mapping's
	// Expires and the address-dependent filter both fall back to the others.
	tab := newTable(t, func(c *Config) { c.Filtering = AddressDependent })
	a := ep(hostA, 40000)
	x := func(port uint16) netip.AddrPort { return ep(netip.MustParseAddr("192.0.2.1"), port) }
	y := ep(netip.MustParseAddr("192.0.2.2"), 1)
	var m *Mapping
	for p := uint16(1); p <= 12; p++ {
		m = out(t, tab, TCP, a, x(p), syn, t0) // SYN_SENT until +240s
	}
	out(t, tab, TCP, a, y, syn, t0)
	if !m.indexed() {
		t.Fatal("13 sessions not indexed")
	}
	in(t, tab, TCP, m.External(), x(5), synAck, t0.Add(10*time.Second), Accept) // until +7450s
	if !m.Expires().Equal(t0.Add(7450 * time.Second)) {
		t.Fatalf("Expires +%v", m.Expires().Sub(t0))
	}
	in(t, tab, TCP, m.External(), x(5), rst, t0.Add(20*time.Second), Accept) // CLOSED until +260s
	if !m.Expires().Equal(t0.Add(260 * time.Second)) {
		t.Fatalf("after RST Expires +%v", m.Expires().Sub(t0))
	}
	if e := tab.epoch.Add(m.more.addr[x(5).Addr().As4()]); !e.Equal(t0.Add(260 * time.Second)) {
		t.Fatalf("address index +%v", e.Sub(t0))
	}
	at := t0.Add(250 * time.Second)
	if _, v := tab.PeekInbound(TCP, m.External(), x(99), at); v != Accept {
		t.Errorf("X:99 at +250s: %s", v)
	}
	if _, v := tab.PeekInbound(TCP, m.External(), ep(y.Addr(), 2), at); v != DropFiltered {
		t.Errorf("Y:2 at +250s: %s", v)
	}
	if _, v := tab.PeekInbound(TCP, m.External(), x(99), t0.Add(260*time.Second)); v != DropNoMapping {
		t.Errorf("X:99 at +260s: %s", v)
	}
}

func TestSessionListShrinks(t *testing.T) {
	tab := newTable(t, func(c *Config) { c.Filtering = AddressDependent })
	a := ep(hostA, 5000)
	rem := func(i int) netip.AddrPort { return ep(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 7) }
	m := out(t, tab, UDP, a, rem(1), 0, t0)
	for i := 2; !m.indexed() || int(m.nsess) < m.more.pruneAt; i++ {
		out(t, tab, UDP, a, rem(i), 0, t0)
	}
	if int(m.nsess) < 2*indexThreshold {
		t.Fatalf("pruning due at %d sessions", int(m.nsess))
	}
	out(t, tab, UDP, a, rem(1), 0, t0.Add(200*time.Second))
	late := t0.Add(301 * time.Second)
	out(t, tab, UDP, a, rem(200), 0, late) // prunes all lapsed sessions
	if m.indexed() || int(m.nsess) != 2 {
		t.Errorf("after prune: %d sessions, indexed %v", int(m.nsess), m.indexed())
	}
	in(t, tab, UDP, m.External(), ep(rem(1).Addr(), 9), 0, late, Accept)
	in(t, tab, UDP, m.External(), ep(rem(200).Addr(), 9), 0, late, Accept)
	in(t, tab, UDP, m.External(), rem(2), 0, late, DropFiltered)
}
