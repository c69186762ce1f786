package table

import (
	"net/netip"
	"testing"
	"time"
)

// Rebind moves live mappings to new external ports (and, given them, new
// addresses), keeping the mapping, its sessions and its filter; the old
// endpoints answer nothing; lapsed mappings are removed.
func TestRebind(t *testing.T) {
	for _, pa := range []PortAssignment{Preserve, Sequential, Random} {
		for _, newAddr := range []bool{false, true} {
			name := pa.String()
			if newAddr {
				name += "/new-address"
			}
			t.Run(name, func(t *testing.T) {
				tab := newTable(t, func(c *Config) {
					c.PortAssignment = pa
					c.Filtering = AddressAndPortDependent
					c.UDPUnrepliedTimeout = 30 * time.Second
				})
				now := t0
				u := out(t, tab, UDP, ep(hostA, 5000), ep(srvA1, portP1), 0, now)
				in(t, tab, UDP, u.External(), ep(srvA1, portP1), 0, now, Accept)
				tc := out(t, tab, TCP, ep(hostB, 6000), ep(srvA1, 443), FlagSYN, now)
				in(t, tab, TCP, tc.External(), ep(srvA1, 443), FlagSYN|FlagACK, now, Accept)
				out(t, tab, TCP, ep(hostB, 6000), ep(srvA1, 443), FlagACK, now)
				stale := out(t, tab, UDP, ep(hostC, 7000), ep(srvA1, portP1), 0, now)
				oldU, oldT, oldStale := u.External(), tc.External(), stale.External()
				states := sessionStates(tc)
				// Past the unreplied UDP timeout: hostC's mapping has lapsed.
				now = now.Add(tab.unreplied() + time.Second)
				out(t, tab, UDP, ep(hostA, 5000), ep(srvA1, portP1), 0, now)
				out(t, tab, TCP, ep(hostB, 6000), ep(srvA1, 443), FlagACK, now)

				var ext []netip.Addr
				if newAddr {
					ext = []netip.Addr{ext2}
				}
				moved, err := tab.Rebind(ext, now)
				if err != nil {
					t.Fatal(err)
				}
				if moved != 2 {
					t.Fatalf("moved %d mappings, want 2", moved)
				}
				for _, c := range []struct {
					m   *Mapping
					old netip.AddrPort
				}{{u, oldU}, {tc, oldT}} {
					got := c.m.External()
					wantAddr := oldU.Addr()
					if newAddr {
						wantAddr = ext2
					}
					if got.Addr() != wantAddr {
						t.Errorf("%s: moved to %s, want address %s", c.m.Proto(), got, wantAddr)
					}
					if !newAddr && got.Port() == c.old.Port() {
						t.Errorf("%s: still on port %d", c.m.Proto(), got.Port())
					}
					if m, _ := tab.Inbound(c.m.Proto(), c.old, ep(srvA1, c.m.inl.remote.port), 0, now); m != nil {
						t.Errorf("%s: the old endpoint %s still maps", c.m.Proto(), c.old)
					}
				}
				// The flow carries on through the same mappings.
				if m := out(t, tab, UDP, ep(hostA, 5000), ep(srvA1, portP1), 0, now); m != u {
					t.Fatal("the UDP flow got a new mapping after the rebind")
				}
				if m := in(t, tab, UDP, u.External(), ep(srvA1, portP1), 0, now, Accept); m != u {
					t.Fatal("a reply to the new endpoint found another mapping")
				}
				in(t, tab, UDP, u.External(), ep(srvA2, portP1), 0, now, DropFiltered)
				if m := in(t, tab, TCP, tc.External(), ep(srvA1, 443), FlagACK, now, Accept); m != tc {
					t.Fatal("a TCP segment to the new endpoint found another mapping")
				}
				if got := sessionStates(tc); got[ep(srvA1, 443)] != states[ep(srvA1, 443)] && got[ep(srvA1, 443)] != "ESTABLISHED" {
					t.Errorf("TCP session %v after the rebind, before %v", got, states)
				}
				if m, _ := tab.Inbound(UDP, oldStale, ep(srvA1, portP1), 0, now); m != nil {
					t.Error("the lapsed mapping survived the rebind")
				}
				if n := tab.Len(); n != 2 {
					t.Errorf("%d mappings held, want 2", n)
				}
				if newAddr && tab.Config().External[0] != ext2 {
					t.Errorf("config's external %v", tab.Config().External)
				}
			})
		}
	}
	if _, err := newTable(t, nil).Rebind([]netip.Addr{ext1, ext2}, t0); err == nil {
		t.Error("two addresses for one accepted")
	}
}
