package nat

import (
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// packet is one packet on its way through the engine: what each step of
// the path needs to know of it. process makes it on its stack and passes
// it down by pointer, so it costs no allocation.
type packet struct {
	q     *Queue
	in    Port   // the port it came in on
	b     []byte // the packet, cut to its IP length; rewritten in place
	reply []byte // scratch for an ICMP error the NAT answers with
	now   time.Time
	segs  int // how many datagrams it leaves as (a super-packet: more than one)
	// wire is the size of the largest datagram it leaves as, for a
	// super-packet (0: len(b)); fragMTU the MTU to fragment it to
	// (pmtu.go).
	wire    int
	fragMTU uint16
	p       header.Parsed
	// nonAtomic says an outbound packet may be fragmented (DF clear, or
	// a fragment): it leaves with identification newID, the NAT's.
	nonAtomic bool
	newID     uint16
	// srcIn and dstIn are the packet's endpoints as it came in, for
	// tracing: IPv4 only, so 12 bytes to copy rather than two AddrPorts.
	srcIn, dstIn     [4]byte
	sportIn, dportIn uint16
}

// traceNote marks a traced translation for the reader.
type traceNote uint8

const (
	noteCreated     traceNote = 1 << iota // the packet made its mapping
	noteHairpin                           // it turned back in at the NAT
	noteICMPError                         // it is an ICMP error about another packet
	noteICMPLimited                       // its ICMP error was held back by the rate limits
)

// trace reports pk to the observer while tracing is on: a forwarded
// packet as translated, leaving by port out, with its endpoints before
// and after; any other verdict as a drop, with the endpoints it has.
func (e *Engine) trace(pk *packet, v Verdict, out Port, notes traceNote) {
	if e.tracing.Load() {
		e.emitPacket(pk, v, out, notes)
	}
}

// emitPacket is trace's slow path, apart so that trace inlines.
func (e *Engine) emitPacket(pk *packet, v Verdict, out Port, notes traceNote) {
	p := &pk.p
	ev := Event{Kind: EventDrop, Time: pk.now, Verdict: v, In: pk.in, Proto: table.Protocol(p.IPProto), Src: e.unalias(p.Src), Dst: e.unalias(p.Dst)}
	if v == Forward {
		ev.Kind, ev.Out = EventTranslated, out
		ev.Src = e.unalias(netip.AddrPortFrom(netip.AddrFrom4(pk.srcIn), pk.sportIn))
		ev.Dst = e.unalias(netip.AddrPortFrom(netip.AddrFrom4(pk.dstIn), pk.dportIn))
		ev.NewSrc, ev.NewDst = e.unalias(p.Src), e.unalias(p.Dst)
		ev.Created = notes&noteCreated != 0
		ev.Hairpin = notes&noteHairpin != 0
		ev.ICMPError = notes&noteICMPError != 0
	}
	ev.ICMPLimited = notes&noteICMPLimited != 0
	e.emit(ev)
}

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
	if aliasSource(in, b) {
		return q.dropAliasSource(in, b, now)
	}
	return q.process(in, b, reply, now, 1, 0)
}

// process is Process for a packet that leaves as segs datagrams (a
// super-packet the kernel will segment), which matters to the IP
// identifications a non-atomic one uses up, the largest wire bytes long
// (0: as long as b), which matters to the links it fits.
func (q *Queue) process(in Port, b []byte, reply []byte, now time.Time, segs, wire int) Result {
	e := q.e
	// Field by field: a composite literal is built in a temporary and
	// copied, twice the stores of a struct this size per packet.
	var pk packet
	pk.q, pk.in, pk.reply, pk.now, pk.segs, pk.wire = q, in, reply, now, segs, wire
	pk.p.Decode(b)
	if pk.p.Status != header.OK {
		if pk.p.Status == header.BadVersion {
			if b[0]>>4 == 6 {
				// From pk, not the arguments: the arguments would have
				// to be kept across Decode, spills every IPv4 packet
				// would pay for.
				return pk.q.process6(pk.in, b, pk.reply, pk.now, 0)
			}
			return e.drop(&pk, DropNotIPv4)
		}
		return e.drop(&pk, DropMalformed)
	}
	if !header.IPv4(b).ChecksumValid() {
		return e.drop(&pk, DropBadChecksum)
	}
	pk.b = b[:pk.p.Length]
	pk.srcIn, pk.sportIn = pk.p.Src.Addr().As4(), pk.p.Src.Port()
	pk.dstIn, pk.dportIn = pk.p.Dst.Addr().As4(), pk.p.Dst.Port()
	var res Result
	if in == Outside {
		res = e.inbound(&pk)
	} else {
		res = e.outbound(&pk)
	}
	if res.Verdict == Forward && res.Out != Outside && pk.b[ipv4Dst] == aliasFirst {
		// To an IPv6 host behind NAT64 (nat64.go).
		return e.toInside6(&pk, res)
	}
	return res
}

// Prefetch starts the mapping-table loads that translating a batch of
// packets from port in will make, so that with a big table the batch pays
// its cache misses together rather than one per packet (see
// table.Hits.Prefetch). Call it with the batch just read, then Process each
// packet. It changes nothing; with a small table it returns at once.
func (q *Queue) Prefetch(in Port, pkts [][]byte) {
	h := q.r.Lock()
	defer q.r.Unlock()
	if !h.PrefetchHelps() {
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
	h.Prefetch(keys)
	q.prefetchKeys = keys[:0]
}

// drop counts and traces pk's drop for reason v.
func (e *Engine) drop(pk *packet, v Verdict) Result {
	e.trace(pk, v, 0, 0)
	return e.done(v, 0, 0)
}
