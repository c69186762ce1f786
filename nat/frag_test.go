package nat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

func TestFragmentsFollowFirst(t *testing.T) {
	e := newEngine(t, "full-cone")
	reply := make([]byte, 1500)
	datagram := func(id uint16) [][]byte {
		b := make([]byte, 1500)
		n := header.BuildUDP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: id},
			header.UDPFields{SrcPort: 5000, DstPort: 3478}, []byte(strings.Repeat("0123456789", 20)))
		return header.Fragments(b[:n], 96)
	}
	// In order: every later fragment follows its first.
	for i, f := range datagram(1) {
		r, p := process(t, e, 1, f, t0)
		if r.Verdict != Forward || p.Src.Addr() != ext || !header.IPv4(f).ChecksumValid() {
			t.Fatalf("datagram 1, fragment %d: %v from %s", i, r.Verdict, p.Src)
		}
	}
	// Later fragment first: held until its first fragment passes.
	d2 := datagram(2)
	if r := e.Process(1, d2[2], reply, t0); r.Verdict != HeldFragment {
		t.Fatalf("last fragment before the first: %v (want held until the first passes)", r.Verdict)
	}
	for i, f := range d2[:2] {
		if r, _ := process(t, e, 1, f, t0); r.Verdict != Forward {
			t.Fatalf("datagram 2, fragment %d: %v", i, r.Verdict)
		}
	}
	buf := make([]byte, 2048)
	if n, out, ok := e.NextHeld(buf); !ok || out != Outside || header.IPv4(buf[:n]).Src() != ext {
		t.Fatalf("held fragment: released %v, out of port %d", ok, out)
	}
	// Once a datagram has passed whole, a new one that reuses its
	// identification must not be translated as it was. Its last
	// fragment, first to come, waits for its own first fragment and then
	// leaves with the identification that one gets.
	d3 := datagram(1)
	if r := e.Process(1, d3[2], reply, t0); r.Verdict != HeldFragment {
		t.Fatalf("datagram 3 (ID of datagram 1 again), last fragment first: %v; want held", r.Verdict)
	}
	for _, f := range d3[:2] {
		if r, _ := process(t, e, 1, f, t0); r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
	}
	n, _, ok := e.NextHeld(buf)
	if !ok || header.IPv4(buf[:n]).ID() != header.IPv4(d3[0]).ID() {
		t.Fatalf("datagram 3's last fragment: released %v with ID %d; its first fragment left with %d",
			ok, header.IPv4(buf[:n]).ID(), header.IPv4(d3[0]).ID())
	}
}

// Out of order (RFC 4787 REQ-14): the last fragments arrive first, wait,
// and leave translated right after the first.
func TestFragmentsOutOfOrder(t *testing.T) {
	e := newEngine(t, "full-cone")
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "open the mapping"), t0)
	whole := udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, strings.Repeat("0123456789", 30))
	frags := header.Fragments(whole, 96)
	if len(frags) < 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	reply := make([]byte, 1500)
	for i := len(frags) - 1; i >= 1; i-- {
		if r := e.Process(Outside, frags[i], reply, t0); r.Verdict != HeldFragment {
			t.Fatalf("fragment %d before the first: %v", i, r.Verdict)
		}
	}
	if e.HeldReady() {
		t.Fatal("released before the first fragment")
	}
	if r := e.Process(Outside, frags[0], reply, t0); r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("first fragment: %+v", r)
	}
	got := 0
	buf := make([]byte, 2048)
	for e.HeldReady() {
		n, out, ok := e.NextHeld(buf)
		if !ok {
			break
		}
		var p header.Parsed
		p.Decode(buf[:n])
		if out != 1 || p.Dst.Addr() != hostA || !header.IPv4(buf[:n]).ChecksumValid() {
			t.Fatalf("held fragment out of port %d to %s", out, p.Dst)
		}
		got++
	}
	if got != len(frags)-1 {
		t.Fatalf("released %d of %d held fragments", got, len(frags)-1)
	}
}

// A flood of incomplete datagrams holds at most the fixed pool and evicts
// the oldest; an unfragmented packet still passes at once.
func TestFragmentFloodBounded(t *testing.T) {
	e := newEngine(t, "full-cone")
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"), t0)
	reply := make([]byte, 1500)
	for i := range 10000 {
		whole := udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, strings.Repeat("y", 200))
		binary.BigEndian.PutUint16(whole[4:], uint16(i)) // a new datagram each time
		f := header.Fragments(whole, 96)
		e.Process(Outside, f[len(f)-1], reply, t0)
	}
	held := 0
	for i := range e.held.slots {
		if e.held.slots[i].state != slotFree {
			held++
		}
	}
	if held > heldSlots {
		t.Fatalf("%d held", held)
	}
	if r, _ := process(t, e, Outside, udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "ping"), t0); r.Verdict != Forward {
		t.Fatalf("an unfragmented packet during the flood: %v", r.Verdict)
	}
}

// A fragmented datagram hairpinned inside the NAT: every fragment leaves
// with the sender's external address as source and the target's internal
// address as destination, out of the target's port, whether the later
// fragments come after the first or before it (held, then released).
func TestHairpinFragments(t *testing.T) {
	for _, order := range []string{"in order", "later first"} {
		t.Run(order, func(t *testing.T) {
			e := newEngine(t, "full-cone", func(c *table.Config) { c.Hairpin = true })
			process(t, e, 2, udpPkt(ap(hostB, 6000), ap(srv1, 3478), 64, "b"), t0)
			whole := udpPkt(ap(hostA, 5000), ap(ext, 6000), 64, strings.Repeat("0123456789", 30))
			frags := header.Fragments(whole, 96)
			if len(frags) < 3 {
				t.Fatalf("%d fragments", len(frags))
			}
			reply := make([]byte, 1500)
			check := func(what string, b []byte, out Port) {
				t.Helper()
				var p header.Parsed
				p.Decode(b)
				if out != 2 || p.Src.Addr() != ext || p.Dst.Addr() != hostB || !header.IPv4(b).ChecksumValid() {
					t.Errorf("%s: out of port %d as %s -> %s (checksum ok: %v); want port 2, %s -> %s",
						what, out, p.Src.Addr(), p.Dst.Addr(), header.IPv4(b).ChecksumValid(), ext, hostB)
				}
			}
			if order == "later first" {
				for i := len(frags) - 1; i >= 1; i-- {
					if r := e.Process(1, frags[i], reply, t0); r.Verdict != HeldFragment {
						t.Fatalf("fragment %d before the first: %v", i, r.Verdict)
					}
				}
			}
			r := e.Process(1, frags[0], reply, t0)
			if r.Verdict != Forward {
				t.Fatalf("first fragment: %v", r.Verdict)
			}
			check("first fragment", frags[0], r.Out)
			got := 0
			if order == "in order" {
				for i := 1; i < len(frags); i++ {
					r := e.Process(1, frags[i], reply, t0)
					if r.Verdict != Forward {
						t.Fatalf("fragment %d: %v", i, r.Verdict)
					}
					check(fmt.Sprint("fragment ", i), frags[i], r.Out)
					got++
				}
			} else {
				buf := make([]byte, 2048)
				for e.HeldReady() {
					n, out, ok := e.NextHeld(buf)
					if !ok {
						break
					}
					check("held fragment", buf[:n], out)
					got++
				}
			}
			if got != len(frags)-1 {
				t.Fatalf("%d of %d later fragments passed", got, len(frags)-1)
			}
		})
	}
}

// An idle NAT keeps no fragment state; its first fragmented datagram
// allocates the cache and the hold once, and fragments after that
// allocate nothing, in order or held and released.
func TestFragmentStateLazy(t *testing.T) {
	e := newEngine(t, "full-cone")
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "open the mapping"), t0)
	process(t, e, Outside, udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "reply"), t0)
	if e.frags.slots != nil || e.held.slots != nil {
		t.Fatal("fragment state allocated before any fragment")
	}
	whole := udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, strings.Repeat("0123456789", 30))
	frags := header.Fragments(whole, 96)
	bufs := make([][]byte, len(frags))
	for i := range frags {
		bufs[i] = make([]byte, len(frags[i]))
	}
	reply, held := make([]byte, 1500), make([]byte, HeldMaxSize)
	// The last fragment first (held), then the rest in order.
	order := []int{len(frags) - 1}
	for i := range len(frags) - 1 {
		order = append(order, i)
	}
	id := uint16(0)
	datagram := func() {
		id++ // a new datagram each time: a finished one's entry is gone
		for i, f := range frags {
			copy(bufs[i], f)
			h := header.IPv4(bufs[i])
			h.SetID(id)
			h.SetChecksum(h.ComputeChecksum())
		}
		for _, i := range order {
			if r := e.Process(Outside, bufs[i], reply, t0); r.Verdict != Forward && r.Verdict != HeldFragment {
				t.Fatalf("datagram %d, fragment %d: %v", id, i, r.Verdict)
			}
		}
		if _, _, ok := e.NextHeld(held); !ok {
			t.Fatalf("datagram %d: held fragment not released", id)
		}
	}
	datagram()
	if e.frags.slots == nil || e.held.slots == nil {
		t.Fatal("no fragment state after a fragmented datagram")
	}
	if a := testing.AllocsPerRun(100, datagram); a != 0 {
		t.Errorf("%v allocs per fragmented datagram once warm", a)
	}
}
