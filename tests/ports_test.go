package tests

import (
	"fmt"
	"net/netip"
	"testing"
)

// Port assignment (RFC 4787 §4.2.1, RFC 7857 §9) and no port overloading
// (REQ-3), observed by a STUN server in the public namespace.
func TestPortAssignment(t *testing.T) {
	t.Run("preserve then clash", func(t *testing.T) {
		t.Parallel()
		tp := newTopo(t)
		tp.startSTUN()
		tp.startNAT("--port-assignment", "preserve")
		ma := mapped(t, udp(t, tp.A, ":40000"), stunServer)
		if ma.Port() != 40000 {
			t.Errorf("A:40000 mapped to %s, want port 40000 preserved", ma)
		}
		mb := mapped(t, udp(t, tp.B, ":40000"), stunServer)
		if mb.Port() == 40000 || mb == ma {
			t.Errorf("B:40000 mapped to %s, must differ from A's %s (no port overloading)", mb, ma)
		}
	})
	t.Run("sequential", func(t *testing.T) {
		t.Parallel()
		tp := newTopo(t)
		tp.startSTUN()
		tp.startNAT("--port-assignment", "sequential")
		var prev netip.AddrPort
		for i := range 10 {
			m := mapped(t, udp(t, tp.A, ":0"), stunServer)
			if i > 0 && m.Port() != prev.Port()+1 {
				t.Errorf("fresh socket %d mapped to %s after %s: not consecutive", i, m, prev)
			}
			prev = m
		}
	})
	t.Run("random", func(t *testing.T) {
		t.Parallel()
		tp := newTopo(t)
		tp.startSTUN()
		tp.startNAT("--port-assignment", "random", "--seed", "7")
		var ports []uint16
		for range 100 {
			ports = append(ports, mapped(t, udp(t, tp.A, ":0"), stunServer).Port())
		}
		up, seen := 0, map[uint16]bool{}
		for i, p := range ports {
			if seen[p] {
				t.Errorf("port %d assigned twice to live mappings", p)
			}
			seen[p] = true
			if i > 0 && p > ports[i-1] {
				up++
			}
		}
		// 99 steps of a random sequence go up about half the time; a
		// monotonic allocator goes up (almost) every time.
		if up < 25 || up > 75 {
			t.Errorf("%d of 99 steps went up: not random (%v)", up, ports[:10])
		}
	})
	t.Run("same source port on three hosts", func(t *testing.T) {
		t.Parallel()
		tp := newTopo(t)
		tp.startSTUN()
		tp.startNAT()
		seen := map[netip.AddrPort]string{}
		for _, n := range []string{tp.A, tp.B, tp.C} {
			m := mapped(t, udp(t, n, ":5000"), stunServer)
			if other, dup := seen[m]; dup {
				t.Errorf("%s and %s both mapped to %s", other, n, m)
			}
			seen[m] = n
		}
	})
	t.Run("port range kept", func(t *testing.T) {
		t.Parallel()
		tp := newTopo(t)
		tp.startSTUN()
		tp.startNAT("--port-range", "20000-20099", "--port-assignment", "random")
		low := mapped(t, udp(t, tp.A, ":700"), stunServer)
		if low.Port() == 0 || low.Port() >= 1024 {
			t.Errorf("A:700 mapped to %s, want a port below 1024 (REQ-3a)", low)
		}
		for i := range 5 {
			m := mapped(t, udp(t, tp.A, fmt.Sprintf(":%d", 40000+i)), stunServer)
			if m.Port() < 20000 || m.Port() > 20099 {
				t.Errorf("A:%d mapped to %s, outside --port-range 20000-20099", 40000+i, m)
			}
		}
	})
}
