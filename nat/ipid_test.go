package nat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gonat/gonat/header"
)

// RFC 7857 §10 (docs/nat-requirements.md item 34): A and B number their datagrams on their
// own, so behind one external address two of them can carry the same
// identification to the same server, and the server would mix their
// fragments. The NAT gives each non-atomic datagram an identification of
// its own, the same for all of a datagram's fragments (also those held
// until their first fragment came); atomic datagrams (DF set) keep theirs.
func TestIPIDNonAtomic(t *testing.T) {
	e := newEngine(t, "full-cone")
	reply := make([]byte, 1500)
	datagram := func(src netip.Addr) [][]byte {
		b := make([]byte, 1500)
		n := header.BuildUDP(b, header.IPv4Fields{Src: src, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: 777},
			header.UDPFields{SrcPort: 5000, DstPort: 3478}, []byte(strings.Repeat("0123456789", 30)))
		return header.Fragments(b[:n], 96)
	}
	fa, fb := datagram(hostA), datagram(hostB)
	// B's later fragments come before its first: held, then released.
	for i := len(fb) - 1; i >= 1; i-- {
		if r := e.Process(2, fb[i], reply, t0); r.Verdict != HeldFragment {
			t.Fatalf("B fragment %d: %v", i, r.Verdict)
		}
	}
	idsOf := func(who string, frags [][]byte, port Port) map[uint16]bool {
		ids := map[uint16]bool{}
		for i, f := range frags {
			r := e.Process(port, f, reply, t0)
			if r.Verdict != Forward {
				t.Fatalf("%s fragment %d: %v", who, i, r.Verdict)
			}
			checkSums(t, f)
			ids[header.IPv4(f).ID()] = true
		}
		return ids
	}
	// Interleaved as two senders would be: A's first, B's first, A's rest.
	idA := idsOf("A", fa[:1], 1)
	idB := idsOf("B", fb[:1], 2)
	for id := range idsOf("A", fa[1:], 1) {
		idA[id] = true
	}
	buf := make([]byte, 2048)
	for e.HeldReady() {
		n, _, ok := e.NextHeld(buf)
		if !ok {
			break
		}
		if !header.IPv4(buf[:n]).ChecksumValid() {
			t.Error("held fragment: bad header checksum")
		}
		idB[header.IPv4(buf[:n]).ID()] = true
	}
	if len(idA) != 1 || len(idB) != 1 {
		t.Fatalf("identifications within one datagram differ: A %v, B %v", idA, idB)
	}
	for id := range idA {
		if idB[id] {
			t.Fatalf("A's and B's datagrams both left as %s -> %s with ID %d", ext, srv1, id)
		}
	}
	// Unfragmented: DF clear gets a fresh identification each time, DF
	// set keeps the sender's.
	seen := map[uint16]bool{}
	for range 3 {
		b := make([]byte, 1500)
		n := header.BuildUDP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: 9},
			header.UDPFields{SrcPort: 5001, DstPort: 3478}, []byte("x"))
		if r := e.Process(1, b[:n], reply, t0); r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
		checkSums(t, b[:n])
		seen[header.IPv4(b[:n]).ID()] = true
	}
	if len(seen) != 3 {
		t.Errorf("three DF-clear datagrams left with IDs %v; want three distinct", seen)
	}
	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: hostA, Dst: srv1, Protocol: header.ProtoUDP, TTL: 64, ID: 9, DontFrag: true},
		header.UDPFields{SrcPort: 5001, DstPort: 3478}, []byte("x"))
	e.Process(1, b[:n], reply, t0)
	if id := header.IPv4(b[:n]).ID(); id != 9 {
		t.Errorf("an atomic datagram (DF set) left with ID %d; want the sender's 9", id)
	}
}

// Queues number non-atomic datagrams from blocks of the engine's counter:
// two queues sending side by side never hand out the same identification.
func TestIPIDQueuesDistinct(t *testing.T) {
	e := newEngine(t, "full-cone")
	qs := []*Queue{e.NewQueue(), e.NewQueue(), e.q0}
	reply := make([]byte, 1500)
	seen := map[uint16]int{}
	for i := range 600 {
		b := udpPkt(ap(hostA, uint16(5000+i%3)), ap(srv1, 3478), 64, "x") // DF clear
		if r := qs[i%3].Process(1, b, reply, t0); r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
		id := header.IPv4(b).ID()
		if j, dup := seen[id]; dup {
			t.Fatalf("datagrams %d and %d both left with ID %d", j, i, id)
		}
		seen[id] = i
	}
}

// A queue that sat on part of its block of identifications while the
// other queues moved the engine's counter round must not hand out the
// numbers they are handing out again: any number comes back only after
// close to 2^16 other datagrams.
func TestIPIDStaleBlock(t *testing.T) {
	e := newEngine(t, "full-cone")
	q1, q2 := e.NewQueue(), e.NewQueue()
	reply := make([]byte, 1500)
	b := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x") // DF clear
	send := func(q *Queue) uint16 {
		copy(b, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"))
		if r := q.Process(1, b, reply, t0); r.Verdict != Forward {
			t.Fatal(r.Verdict)
		}
		return header.IPv4(b).ID()
	}
	last := map[uint16]int{}
	n := 0
	use := func(q *Queue, who string) {
		id := send(q)
		if k, ok := last[id]; ok && n-k < 1<<16-2*idBlock {
			t.Fatalf("%s: datagram %d has ID %d, as datagram %d had (%d apart)", who, n, id, k, n-k)
		}
		last[id] = n
		n++
	}
	use(q1, "q1") // q1 takes a block and uses one number of it
	for range 1<<16 - idBlock {
		use(q2, "q2")
	}
	for range 200 {
		use(q1, "q1")
		use(q2, "q2")
	}
}
