package nat

import (
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// done counts verdict v and returns it with the port to send the packet
// to and the length of the NAT's reply, if any.
func (e *Engine) done(v Verdict, out Port, reply int) Result {
	e.counters[v].Add(1)
	return Result{Verdict: v, Out: out, ReplyLen: reply}
}

// Process handles one packet that arrived on port in, rewriting it in
// place. reply is scratch space for an ICMP error the NAT may generate
// (at least 576 bytes). now is read once per batch by the caller.
// Readers running side by side should each use a Queue of their own.
func (e *Engine) Process(in Port, b []byte, reply []byte, now time.Time) Result {
	return e.q0.Process(in, b, reply, now)
}

// Prefetch is Queue.Prefetch on the engine's default queue.
func (e *Engine) Prefetch(in Port, pkts [][]byte) { e.q0.Prefetch(in, pkts) }

// Process is Engine.Process through q.
func (q *Queue) Process(in Port, b []byte, reply []byte, now time.Time) Result {
	return q.process(in, b, reply, now, 1)
}

// process is Process for a packet that leaves as segs datagrams (a
// super-packet the kernel will segment), which matters to the IP
// identifications a non-atomic one uses up.
func (q *Queue) process(in Port, b []byte, reply []byte, now time.Time, segs int) Result {
	e := q.e
	var p header.Parsed
	p.Decode(b)
	if p.Status != header.OK {
		if p.Status == header.BadVersion {
			return e.drop(in, &p, DropNotIPv4, now)
		}
		return e.drop(in, &p, DropMalformed, now)
	}
	b = b[:p.Length]
	if in == Outside {
		return e.inbound(q, b, &p, reply, now)
	}
	return e.outbound(q, in, b, &p, reply, now, segs)
}

// Prefetch starts the mapping-table loads that translating a batch of
// packets from port in will make, so that with a big table the batch pays
// its cache misses together rather than one per packet (see
// table.Prefetch). Call it with the batch just read, then Process each
// packet. It changes nothing; with a small table it returns at once.
func (q *Queue) Prefetch(in Port, pkts [][]byte) {
	q.rlock()
	defer q.slot.Unlock()
	tab := q.e.tab
	if !tab.PrefetchHelps() {
		return
	}
	keys := q.prefetchKeys[:0]
	for _, b := range pkts {
		// Flow, not Decode: this pass only needs the flow, and Decode's
		// full record cost ~10 ns per packet of it at 1M mappings.
		proto, src, dst, ok := header.Flow(b)
		if !ok {
			continue
		}
		// Filled in place: a key built on the stack and then copied into
		// the slice is read back with wider loads than it was written
		// with, a store-forwarding stall per packet (perf annotate: half
		// of this loop's time).
		keys = append(keys, table.LookupKey{})
		k := &keys[len(keys)-1]
		k.Proto = table.Protocol(proto)
		if in != Outside {
			k.Outbound, k.Local, k.Remote = true, src, dst
		} else {
			k.Local = dst
		}
	}
	tab.Prefetch(keys)
	q.prefetchKeys = keys[:0]
}

func (e *Engine) drop(in Port, p *header.Parsed, v Verdict, now time.Time) Result {
	if e.tracing.Load() {
		e.emit(Event{Kind: EventDrop, Time: now, Verdict: v, In: in, Proto: table.Protocol(p.IPProto), Src: p.Src, Dst: p.Dst})
	}
	return e.done(v, 0, 0)
}
