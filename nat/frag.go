package nat

import (
	"net/netip"
	"time"

	"github.com/gonat/gonat/header"
)

// fragKey names the datagram a fragment belongs to (RFC 791: source,
// destination, protocol, identification), as seen before translation.
type fragKey struct {
	src, dst [4]byte
	id       uint16
	proto    uint8
}

func fragKeyOf(p *header.Parsed) fragKey {
	return fragKey{src: p.Src.Addr().As4(), dst: p.Dst.Addr().As4(), id: p.ID, proto: p.IPProto}
}

// fragLifetime bounds how long a first fragment's translation is kept for
// the rest of its datagram (Linux's ipfrag_time is 30 s).
const fragLifetime = 30 * time.Second

// fragCache remembers where first fragments were translated, so later
// fragments (no ports) follow them. Fixed size and direct-mapped: a flood
// of fragments can only evict entries, never grow memory (REQ-14: bounded
// against DoS).
//
// The slots (about 120 KB) are allocated when the NAT translates its
// first fragmented datagram, once in its life (fragments allocate nothing
// after that): most NATs of a large lab never see a fragment, and 1000 of
// them would otherwise hold 120 MB of empty slots. A Flush or behaviour change drops them with the
// rest (the zero fragCache), so the next first fragment allocates again.
type fragCache struct {
	slots *[fragSlots]fragSlot // nil until put
}

const fragSlots = 1024

type fragSlot struct {
	key     fragKey
	addr    netip.Addr
	fragWay // for hairpinned datagrams
	expires time.Time
	// Payload bytes of the datagram seen so far, and its payload length
	// once its last fragment has told (0 before).
	seen, end int
}

// fragWay is how an outbound datagram's later fragments are translated
// besides the new source (fragSlot.addr): the identification its first
// fragment got, and for a hairpinned datagram the target's internal
// address and port (dst is invalid for one that crosses the NAT).
type fragWay struct {
	id  uint16
	dst netip.Addr
	out Port
}

// slot is k's slot, or nil before the first put.
func (c *fragCache) slot(k fragKey) *fragSlot {
	if c.slots == nil {
		return nil
	}
	h := uint32(k.id)*2654435761 ^ uint32(k.src[3])<<8 ^ uint32(k.dst[3])<<16 ^ uint32(k.proto)
	h ^= uint32(k.src[2])<<24 ^ uint32(k.dst[2])
	return &c.slots[h%uint32(len(c.slots))]
}

// put records how the first fragment of k's datagram was translated;
// first is its payload bytes.
func (c *fragCache) put(k fragKey, a netip.Addr, w fragWay, first int, now time.Time) {
	if c.slots == nil {
		c.slots = new([fragSlots]fragSlot)
	}
	s := c.slot(k)
	*s = fragSlot{key: k, addr: a, fragWay: w, expires: now.Add(fragLifetime), seen: first}
}

// count adds n payload bytes of k's datagram that have passed; end, when
// not 0, is the datagram's payload length (a last fragment passed). Once
// every byte has passed the entry goes, so a later datagram that reuses
// the identification is not translated as this one was (its later
// fragments wait for its own first fragment instead). A duplicated
// fragment can end an entry early: the datagram's remaining fragments
// then wait for a first fragment that has gone, and are lost.
func (c *fragCache) count(k fragKey, n, end int) {
	s := c.slot(k)
	if s == nil || s.key != k || !s.addr.IsValid() {
		return
	}
	s.seen += n
	if end > 0 {
		s.end = end
	}
	if s.end > 0 && s.seen >= s.end {
		*s = fragSlot{}
	}
}

// fragPayload is the payload bytes of fragment b, and its datagram's
// payload length if it is the last fragment (else 0).
func fragPayload(b []byte, p *header.Parsed) (n, end int) {
	n = len(header.IPv4(b).Payload())
	if !p.MoreFrags {
		end = int(p.FragOffset) + n
	}
	return n, end
}

func (c *fragCache) get(k fragKey, now time.Time) (netip.Addr, fragWay, bool) {
	s := c.slot(k)
	if s == nil || s.key != k || !s.addr.IsValid() || !now.Before(s.expires) {
		return netip.Addr{}, fragWay{}, false
	}
	return s.addr, s.fragWay, true
}

// Fragments after the first carry no ports: they follow the address their
// first fragment was translated to, remembered by (src, dst, proto, id).
func (e *Engine) outboundFragment(pk *packet) Result {
	b, p := pk.b, &pk.p
	ext, w, ok, held := e.laterFragment(pk)
	switch {
	case held:
		return e.done(HeldFragment, 0, 0)
	case !ok:
		return e.drop(pk, DropFragment)
	}
	header.RewriteID(b, p, w.id)
	header.RewriteSrc(b, p, netip.AddrPortFrom(ext, 0))
	out := Outside
	if w.dst.IsValid() { // hairpinned
		header.RewriteDst(b, p, netip.AddrPortFrom(w.dst, 0))
		out = w.out
	}
	header.IPv4(b).DecTTL()
	if e.anyMTU {
		e.cutToFit(pk, out)
	}
	return e.forwardFit(pk, out)
}

func (e *Engine) inboundFragment(pk *packet) Result {
	b, p := pk.b, &pk.p
	internal, _, ok, held := e.laterFragment(pk)
	switch {
	case held:
		return e.done(HeldFragment, 0, 0)
	case !ok:
		return e.drop(pk, DropFragment)
	}
	out, ok := e.insidePort(internal)
	if !ok {
		return e.drop(pk, DropNoRoute)
	}
	header.RewriteDst(b, p, netip.AddrPortFrom(internal, 0))
	header.IPv4(b).DecTTL()
	if e.anyMTU {
		e.cutToFit(pk, out)
	}
	return e.forwardFit(pk, out)
}

// laterFragment looks up how the first fragment of b's datagram was
// translated (ok) and counts b as passed; without that, it holds b until
// the first fragment comes (held), if there is room.
func (e *Engine) laterFragment(pk *packet) (addr netip.Addr, w fragWay, ok, held bool) {
	e.shared.Lock()
	defer e.shared.Unlock()
	k := fragKeyOf(&pk.p)
	if addr, w, ok = e.frags.get(k, pk.now); ok {
		n, end := fragPayload(pk.b, &pk.p)
		e.frags.count(k, n, end)
		return addr, w, true, false
	}
	return addr, w, false, e.held.hold(k, pk.b, pk.now)
}

// firstFragment records, under shared.Lock, how first fragment pk (not yet
// rewritten) was translated, so the later fragments of its datagram
// follow, and releases those that came before it.
func (e *Engine) firstFragment(pk *packet, addr netip.Addr, outbound bool, out Port, w fragWay) {
	k := fragKeyOf(&pk.p)
	first, _ := fragPayload(pk.b, &pk.p)
	e.frags.put(k, addr, w, first, pk.now)
	_, bytes, end := e.held.release(k, outbound, addr, out, w)
	e.frags.count(k, bytes, end)
}
