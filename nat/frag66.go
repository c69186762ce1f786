package nat

import (
	"net/netip"
	"sync"
)

// Fragments in the nat66 mode. A first fragment carries the ports and is
// translated as any packet; a later one carries none (RFC 8200 section
// 4.5) and no checksum that covers an address, so it needs only its
// address changed:
//
//   - Going out, every fragment leaves from the one external address:
//     a later fragment from an inside host has its source replaced, no
//     state needed.
//   - Coming in, a later fragment goes to the inside host its datagram's
//     first fragment went to (source, destination, identification), for
//     as long as RFC 8200 gives reassembly (60 s). The record is a fixed,
//     direct-mapped cache made by the first admitted first fragment, as
//     the routed mode's (firewall6.go): a flood evicts entries, never
//     grows memory. A later fragment before its first is dropped
//     (fragment-no-state).

type frag66Slot struct {
	key     frag6Key
	to      [16]byte // the inside host
	expires int64
}

// frag66 is where later fragments from outside go. Safe for concurrent
// use.
type frag66 struct {
	mu    sync.Mutex
	slots *[frag6Slots]frag66Slot // nil until a fragmented datagram comes in
}

func (f *frag66) reset() {
	f.mu.Lock()
	f.slots = nil
	f.mu.Unlock()
}

// admit records that the first fragment of datagram k went to inside
// host to at now.
func (f *frag66) admit(k frag6Key, to netip.Addr, now int64) {
	f.mu.Lock()
	if f.slots == nil {
		f.slots = new([frag6Slots]frag66Slot)
	}
	f.slots[k.slot()] = frag66Slot{key: k, to: to.As16(), expires: now + frag6Lifetime}
	f.mu.Unlock()
}

// later returns the inside host of datagram k's first fragment, if it
// came in and its time is not over.
func (f *frag66) later(k frag6Key, now int64) (netip.Addr, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.slots == nil {
		return netip.Addr{}, false
	}
	s := &f.slots[k.slot()]
	if s.key != k || s.expires <= now {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(s.to), true
}

// fragKey66 is the datagram pk is a fragment of.
func fragKey66(pk *packet6) frag6Key {
	return frag6Key{src: pk.p.Src.Addr().As16(), dst: pk.p.Dst.Addr().As16(), id: pk.p.FragID}
}

// laterOut66 sends a later fragment from inside out from the external
// address.
func (e *Engine) laterOut66(pk *packet6, st *v6State) Result {
	if pk.p.Dst.Addr() == st.ext {
		return e.drop6(pk, DropUnsupported) // hairpinned: no ports to find the target by
	}
	*(*[16]byte)(pk.b[8:24]) = st.ext.As16()
	pk.p.Src = netip.AddrPortFrom(st.ext, 0)
	return e.forward6(pk, Outside, 0)
}

// laterIn66 sends a later fragment from outside in to the host its
// first fragment went to.
func (e *Engine) laterIn66(pk *packet6) Result {
	to, ok := e.frags66.later(fragKey66(pk), pk.now.UnixNano())
	if !ok {
		return e.drop6(pk, DropFragment)
	}
	out, ok := e.port6(to)
	if !ok {
		return e.drop6(pk, DropNoRoute)
	}
	*(*[16]byte)(pk.b[24:40]) = to.As16()
	pk.p.Dst = netip.AddrPortFrom(to, 0)
	return e.forward6(pk, out, 0)
}
