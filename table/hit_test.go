package table

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// state is a table's whole observable state: every mapping with its
// counters, expiry and sessions, in a canonical order.
func state(t *Table) string {
	var lines []string
	t.All(func(m *Mapping) bool {
		s := fmt.Sprintf("%s exp=%d due=%d heap=%v pkts=%d/%d bytes=%d/%d", m, m.expires, m.due, m.hidx >= 0,
			m.PacketsOut(), m.PacketsIn(), m.BytesOut(), m.BytesIn())
		for i := range int(m.nsess) {
			x := m.sess(i)
			s += fmt.Sprintf(" [%v tcp=%#x exp=%d]", x.remote.addrPort(), x.tcp, x.expires)
			if m.Proto() == TCP {
				s += fmt.Sprintf("%+v", *m.win(i))
			}
		}
		if m.indexed() {
			// The address-dependent filter's index of latest expiries.
			var addrs []string
			for a, e := range m.more.addr {
				addrs = append(addrs, fmt.Sprintf("%v=%d", netip.AddrFrom4(a), e))
			}
			slices.Sort(addrs)
			s += fmt.Sprint(" addr", addrs)
		}
		lines = append(lines, s)
		return true
	})
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestHitMatchesFull drives two tables with the same packets: one tries
// the hit path first and falls back to Outbound/Inbound when it declines,
// the other takes the full path every time. Verdicts, mappings, counters,
// timers, sessions and expiries must stay identical, for every preset and
// with inbound refresh on and off.
func TestHitMatchesFull(t *testing.T) {
	var configs []string
	for _, p := range PresetNames() {
		configs = append(configs, p, p+"+refresh")
	}
	for _, name := range configs {
		t.Run(name, func(t *testing.T) {
			preset, refresh := strings.CutSuffix(name, "+refresh")
			mk := func() *Table {
				c, err := Preset(preset)
				if err != nil {
					t.Fatal(err)
				}
				c.External = []netip.Addr{ext1, ext2}
				if c.PortOverloading {
					// One address: hosts preserving the same port share it.
					c.External = c.External[:1]
				}
				c.Seed = 7
				c.InboundRefresh = c.InboundRefresh || refresh
				c.UDPTimeout, c.UDPUnrepliedTimeout = 30*time.Second, 10*time.Second
				c.TCPTransitoryTimeout = 20 * time.Second
				tab, err := New(c)
				if err != nil {
					t.Fatal(err)
				}
				return tab
			}
			hit, full := mk(), mk()
			rng := rand.New(rand.NewPCG(1, 2))
			hosts := []netip.Addr{hostA, hostB}
			// Enough remotes that a mapping's sessions get indexed.
			remotes := []netip.Addr{srvA1, srvA2, other, netip.MustParseAddr("192.0.2.8"), netip.MustParseAddr("192.0.2.9")}
			protos := []Protocol{UDP, TCP, ICMP}
			flagSets := []uint8{FlagACK, FlagACK, FlagACK, FlagSYN, FlagSYN | FlagACK, FlagFIN | FlagACK, FlagRST, 0}
			now := t0
			var hits, fallbacks, accepted, outOfWindow int
			indexed, shared := false, 0
			for step := range 8000 {
				back := false
				switch r := rng.IntN(100); {
				case r < 2:
					now = now.Add(time.Duration(rng.IntN(40)) * time.Second) // timers lapse
				case r < 7:
					// Readers of different queues each read the clock once
					// per batch: one may come in behind another (by this
					// much so that a session just refreshed is met).
					now = now.Add(-time.Duration(rng.IntN(100)) * time.Millisecond)
					back = true
				default:
					now = now.Add(time.Duration(rng.IntN(2000)) * time.Microsecond)
				}
				proto := protos[rng.IntN(len(protos))]
				in := ep(hosts[rng.IntN(len(hosts))], uint16(4000+rng.IntN(3)))
				rem := ep(remotes[rng.IntN(len(remotes))], uint16(3478+rng.IntN(2)))
				if proto == ICMP {
					rem = ep(rem.Addr(), 0)
				}
				var flags uint8
				if proto == TCP {
					flags = flagSets[rng.IntN(len(flagSets))]
				}
				n := 40 + rng.IntN(1400)
				// Most TCP segments carry sequence numbers, from a range
				// small enough that some fall in a session's window and
				// some out of it.
				seg := FlagsOnly(flags)
				if proto == TCP && rng.IntN(4) != 0 {
					seg.HasSeq = true
					seg.Seq, seg.Ack = uint32(rng.IntN(1<<18)), uint32(rng.IntN(1<<18))
					seg.Window, seg.Len = uint16(rng.IntN(1<<16)), uint32(n-40)
					seg.WScale = []uint8{NoWScale, 0, 7, 14}[rng.IntN(4)]
				}
				var got, want string
				if rng.IntN(2) == 0 {
					m := hit.outboundHit(proto, in, rem, &seg, n, now)
					if m == nil {
						fallbacks++
						var err error
						m, _, err = hit.OutboundSeg(proto, in, rem, seg, now)
						if err == nil {
							m.AddBytes(true, n)
						}
						got = fmt.Sprint(m, err)
					} else {
						hits++
						got = fmt.Sprint(m, nil)
					}
					m2, _, err := full.OutboundSeg(proto, in, rem, seg, now)
					if err == nil {
						m2.AddBytes(true, n)
					}
					want = fmt.Sprint(m2, err)
				} else {
					// Inbound to an external endpoint a mapping may hold:
					// the ports near the preserved ones, on both addresses.
					ext := ep([]netip.Addr{ext1, ext2}[rng.IntN(2)], uint16(4000+rng.IntN(3)))
					if proto == ICMP {
						ext = ep(ext.Addr(), uint16(4000+rng.IntN(3)))
					}
					m, v, ok := hit.inboundHit(proto, ext, rem, &seg, n, now)
					if !ok {
						fallbacks++
						m, v = hit.InboundSeg(proto, ext, rem, seg, now)
						if v == Accept {
							m.AddBytes(false, n)
						}
					} else {
						hits++
					}
					m2, v2 := full.InboundSeg(proto, ext, rem, seg, now)
					switch v2 {
					case Accept:
						m2.AddBytes(false, n)
						accepted++
					case DropOutOfWindow:
						outOfWindow++
					}
					got, want = fmt.Sprint(m, v), fmt.Sprint(m2, v2)
					if v == DropFiltered && v2 == DropFiltered && m != nil && m2 != nil {
						// With port overloading, any live holder of the
						// endpoint stands for a refusal: the first in index
						// order, which each table's hash seed orders its own
						// way.
						got, want = fmt.Sprint(m.External(), v), fmt.Sprint(m2.External(), v2)
					}
				}
				if got != want {
					t.Fatalf("step %d (%s %s %s flags %#x): hit path %s, full path %s", step, proto, in, rem, flags, got, want)
				}
				if step%50 == 0 {
					if a, b := hit.Expire(now, nil), full.Expire(now, nil); a != b {
						t.Fatalf("step %d: Expire removed %d with hits, %d without", step, a, b)
					}
				}
				if !indexed {
					hit.All(func(m *Mapping) bool { indexed = indexed || m.indexed(); return !indexed })
				}
				shared = max(shared, len(hit.shared))
				if step%8 != 0 && !back {
					continue // the state is compared every few steps: formatting it is most of the test's time
				}
				if a, b := state(hit), state(full); a != b {
					t.Fatalf("step %d (%s %s %s flags %#x): state differs\nwith hits:\n%s\nwithout:\n%s", step, proto, in, rem, flags, a, b)
				}
			}
			t.Logf("%d hits, %d fallbacks, %d inbound accepted, %d out of the window, at most %d shared endpoints", hits, fallbacks, accepted, outOfWindow, shared)
			if hits < 500 || accepted < 200 {
				t.Errorf("too few hits (%d) or accepted packets (%d) for the comparison to mean much", hits, accepted)
			}
			// Symmetric mappings take ports the inbound packets seldom
			// find: their TCP sessions see little from outside.
			if outOfWindow < 10 && hit.cfg.Mapping != AddressAndPortDependent {
				t.Errorf("%d packets out of the window: too few for the comparison to mean much", outOfWindow)
			}
			// Symmetric mappings hold one remote each, and port overloading
			// makes a mapping per remote on a clash: neither gets indexed.
			if !indexed && hit.cfg.Mapping != AddressAndPortDependent && !hit.cfg.PortOverloading {
				t.Error("no mapping's sessions were indexed")
			}
			if hit.cfg.PortOverloading && shared == 0 {
				t.Error("port overloading on, but no endpoint was ever shared")
			}
		})
	}
}

// Hits on one mapping from two goroutines (a flow's packets out and its
// replies in, on two queues) serialise on its stripe: the race detector
// sees no conflict and no packet goes uncounted.
func TestHitConcurrent(t *testing.T) {
	tab := newTable(t, nil)
	const flows, per = 8, 2000
	var exts [flows]netip.AddrPort
	for f := range flows {
		m := out(t, tab, UDP, ep(hostA, uint16(5000+f)), ep(srvA1, portP1), 0, t0)
		exts[f] = m.External()
		in(t, tab, UDP, exts[f], ep(srvA1, portP1), 0, t0, Accept) // replied: hits from now on
	}
	now := t0.Add(time.Second)
	var wg sync.WaitGroup
	var misses [4]int
	for g := range 4 {
		wg.Go(func() {
			for k := range per {
				f := (k + g) % flows
				if g%2 == 0 {
					if tab.outboundHit(UDP, ep(hostA, uint16(5000+f)), ep(srvA1, portP1), flagSeg(0), 100, now) == nil {
						misses[g]++
					}
				} else if _, v, ok := tab.inboundHit(UDP, exts[f], ep(srvA1, portP1), flagSeg(0), 100, now); !ok || v != Accept {
					misses[g]++
				}
			}
		})
	}
	wg.Wait()
	if misses != [4]int{} {
		t.Fatalf("packets not taken as hits: %v", misses)
	}
	var pktsOut, pktsIn, bytes uint64
	tab.All(func(m *Mapping) bool {
		pktsOut += m.PacketsOut()
		pktsIn += m.PacketsIn()
		bytes += m.BytesOut() + m.BytesIn()
		return true
	})
	if pktsOut != flows+2*per || pktsIn != flows+2*per || bytes != 4*per*100 {
		t.Errorf("counted %d out, %d in, %d bytes; want %d, %d, %d", pktsOut, pktsIn, bytes, flows+2*per, flows+2*per, 4*per*100)
	}
}

// A hit that finds its mapping's stripe held (another reader on the
// same flow) waits for it and is counted in Shared.Waits.
func TestHitStripeWait(t *testing.T) {
	tab := newTable(t, nil)
	a, r := ep(hostA, 5000), ep(srvA1, portP1)
	m := out(t, tab, UDP, a, r, 0, t0)
	s := NewShared(tab)
	hit := func(rd *Reader) *Mapping {
		defer rd.Unlock()
		return rd.Lock().OutboundHit(UDP, a, r, 0, 100, t0)
	}
	r1, r2 := s.NewReader(), s.NewReader()
	if hit(r1) != m || s.Waits() != 0 {
		t.Fatalf("uncontended hit: %d waits", s.Waits())
	}
	l := tab.stripeOf(m)
	l.Lock()
	done := make(chan *Mapping)
	go func() { done <- hit(r2) }()
	stopped(t, s, 0, done, l.Unlock, "a hit on a stripe held")
	l.Unlock()
	if got := <-done; got != m || s.Waits() != 1 {
		t.Fatalf("after the wait: %p (want %p), %d waits", got, m, s.Waits())
	}
}

// Each stripe lock has a pair of cache lines of its own, and mappings
// made one after another (128 bytes apart) get different stripes. A
// table allocates them with its first mapping.
func TestStripesAligned(t *testing.T) {
	tab := newTable(t, nil)
	if tab.stripes != nil {
		t.Fatal("stripes allocated before any mapping")
	}
	out(t, tab, UDP, ep(hostA, 5000), ep(srvA1, portP1), 0, t0)
	if a := uintptr(unsafe.Pointer(&tab.stripes[0])); a%128 != 0 || unsafe.Sizeof(stripe{}) != 128 {
		t.Errorf("stripes at %#x, %d bytes each: not a line pair each", a, unsafe.Sizeof(stripe{}))
	}
	ms := make([]Mapping, 64)
	seen := map[*stripe]bool{}
	for i := range ms {
		seen[tab.stripeOf(&ms[i])] = true
	}
	if len(seen) < 56 {
		t.Errorf("64 neighbouring mappings fell in %d stripes", len(seen))
	}
}
