package nat

import (
	"net/netip"
	"testing"
)

// After Rebind packets leave from the new external endpoint and replies
// to it come in; the old endpoint, and after a new address the old
// address, no longer reach the host. Reboot forgets the mappings, and
// with a new address the next packet leaves from it.
func TestRebindAndReboot(t *testing.T) {
	ext2 := netip.MustParseAddr("198.51.100.7")
	send := func(e *Engine) netip.AddrPort {
		t.Helper()
		r, p := process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"), t0)
		if r.Verdict != Forward {
			t.Fatalf("outbound: %v", r.Verdict)
		}
		return p.Src
	}
	reply := func(e *Engine, to netip.AddrPort) Verdict {
		t.Helper()
		r, _ := process(t, e, Outside, udpPkt(ap(srv1, 3478), to, 64, "y"), t0)
		return r.Verdict
	}
	for _, newAddr := range []bool{false, true} {
		e := newEngine(t, "port-restricted-cone")
		before := send(e)
		var to []netip.Addr
		if newAddr {
			to = []netip.Addr{ext2}
		}
		if n, err := e.Rebind(to, t0); err != nil || n != 1 {
			t.Fatalf("rebind: %d moved, %v", n, err)
		}
		after := send(e)
		if after == before || (newAddr && after.Addr() != ext2) || (!newAddr && after.Addr() != ext) {
			t.Fatalf("new address %v: left as %s before, %s after", newAddr, before, after)
		}
		if v := reply(e, after); v != Forward {
			t.Fatalf("reply to the new endpoint: %v", v)
		}
		if v := reply(e, before); v == Forward {
			t.Fatalf("reply to the old endpoint %s forwarded", before)
		}
		if newAddr && e.Config().Table.External[0] != ext2 {
			t.Fatalf("external %v", e.Config().Table.External)
		}
	}
	e := newEngine(t, "port-restricted-cone")
	before := send(e)
	if err := e.Reboot([]netip.Addr{ext2}, t0); err != nil {
		t.Fatal(err)
	}
	if v := reply(e, ap(ext2, before.Port())); v == Forward {
		t.Fatal("a mapping survived the reboot")
	}
	if after := send(e); after.Addr() != ext2 {
		t.Fatalf("after the reboot left as %s", after)
	}
	if err := e.Reboot([]netip.Addr{ext2, ext}, t0); err == nil {
		t.Fatal("two addresses for one accepted")
	}
}
