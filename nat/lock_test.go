package nat

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gonat/gonat/header"
)

// A packet that needs the whole engine (a new mapping) waits while any
// queue has a packet in flight, and is counted in LockWaits; one that
// finds every lock free is not.
func TestLockWaits(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	if r, _ := process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "a"), t0); r.Verdict != Forward || e.LockWaits() != 0 {
		t.Fatalf("uncontended packet: %+v, %d lock waits, want Forward and 0", r, e.LockWaits())
	}
	q1, q2 := e.NewQueue(), e.NewQueue()
	q1.r.Lock() // a reader on q1, mid-packet
	done := make(chan Result)
	go func() {
		done <- q2.Process(1, udpPkt(ap(hostA, 5001), ap(srv1, 3478), 64, "b"), make([]byte, 1500), t0)
	}()
	for deadline := time.Now().Add(5 * time.Second); e.LockWaits() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			q1.r.Unlock()
			t.Fatal("a packet finding a lock held was not counted within 5s")
		}
	}
	select {
	case r := <-done:
		t.Fatalf("a new mapping was made while another queue had a packet in flight: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	q1.r.Unlock()
	if r := <-done; r.Verdict != Forward || e.LockWaits() != 1 {
		t.Fatalf("after the wait: %+v, %d lock waits, want Forward and 1", r, e.LockWaits())
	}
}

// Packets of existing mappings on one queue share no lock with another
// queue: with q1 stopped mid-packet (its lock held), q2 translates a
// flow's packets both ways without waiting. TestLockWaits shows that
// the same held lock does stop a packet that needs the whole engine.
func TestHitPathSharesNoLock(t *testing.T) {
	for _, c := range []struct{ preset, proto string }{
		{"port-restricted-cone", "udp"}, {"port-restricted-cone", "tcp"},
		{"linux", "udp"}, {"linux", "tcp"}, // port overloading on
	} {
		proto := c.proto
		t.Run(c.preset+"/"+proto, func(t *testing.T) {
			e := newEngine(t, c.preset)
			reply := make([]byte, 1500)
			in, rem := ap(hostA, 5000), ap(srv1, 3478)
			pkt := func(src, dst netip.AddrPort, flags uint8) []byte {
				if proto == "udp" {
					return udpPkt(src, dst, 64, "x")
				}
				return tcpPkt(src, dst, flags)
			}
			// Open the flow both ways (TCP: the handshake) on the default queue.
			r, p := process(t, e, 1, pkt(in, rem, header.TCPSyn), t0)
			if r.Verdict != Forward {
				t.Fatalf("first packet: %+v", r)
			}
			extEP := p.Src // as translated
			if r, _ := process(t, e, Outside, pkt(rem, extEP, header.TCPSyn|header.TCPAck), t0); r.Verdict != Forward {
				t.Fatalf("reply: %+v", r)
			}
			q1, q2 := e.NewQueue(), e.NewQueue()
			q1.r.Lock()
			defer q1.r.Unlock()
			done := make(chan [2]Result, 1)
			go func() {
				now := t0.Add(time.Second)
				done <- [2]Result{
					q2.Process(1, pkt(in, rem, header.TCPAck), reply, now),
					q2.Process(Outside, pkt(rem, extEP, header.TCPAck), reply, now),
				}
			}()
			select {
			case rs := <-done:
				if rs[0].Verdict != Forward || rs[1].Verdict != Forward {
					t.Fatalf("out %+v, in %+v; want both forwarded", rs[0], rs[1])
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a packet of an existing flow waited for another queue's lock")
			}
			if w := e.LockWaits(); w != 0 {
				t.Errorf("%d lock waits, want 0", w)
			}
		})
	}
}

// BenchmarkTranslateParallel runs readers side by side, each with a UDP
// flow of its own, half its packets out and half the replies in: through
// one shared lock (Engine.Process: every reader on the default queue)
// and through a Queue each (NewQueue, as the router's readers do).
// Compare ns/op at -cpu 1,2,4.
func BenchmarkTranslateParallel(b *testing.B) {
	for _, mode := range []string{"shared-lock", "queue-each"} {
		b.Run(mode, func(b *testing.B) {
			e := newEngine(b, "port-restricted-cone")
			var next atomic.Uint32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				q := e.q0
				if mode == "queue-each" {
					q = e.NewQueue()
				}
				reply := make([]byte, 1500)
				out := dfPkt(ap(hostA, uint16(6000+next.Add(1))), ap(srv1, 3478))
				buf := make([]byte, len(out))
				copy(buf, out)
				if r := q.Process(1, buf, reply, t0); r.Verdict != Forward {
					b.Fatalf("first packet: %+v", r)
				}
				var p header.Parsed
				p.Decode(buf)
				back := dfPkt(ap(srv1, 3478), p.Src)
				now := t0.Add(time.Second)
				for i := 0; pb.Next(); i++ {
					pkt, port := out, Port(1)
					if i&1 == 1 {
						pkt, port = back, Outside
					}
					copy(buf, pkt)
					if r := q.Process(port, buf, reply, now); r.Verdict != Forward {
						b.Fatalf("packet %d: %+v", i, r)
					}
				}
			})
		})
	}
}

// Each queue, the default one included, has a pair of cache lines of
// its own (its reader lock too: table.TestReadersAligned).
func TestQueuesAligned(t *testing.T) {
	e := newEngine(t, "full-cone")
	for range 5 {
		e.NewQueue()
	}
	for i, q := range *e.queues.Load() {
		if uintptr(unsafe.Pointer(q))%128 != 0 || unsafe.Sizeof(*q) != 128 {
			t.Errorf("queue %d at %p, %d bytes: not a line pair of its own", i, q, unsafe.Sizeof(*q))
		}
	}
}
