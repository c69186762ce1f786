package table

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Rebind moves every live mapping to a new external endpoint, keeping
// its internal endpoint, sessions (filter permissions, TCP state), timers
// and counters: a NAT that renumbers its mappings under live flows, as in
// the QUIC rebinding scenario. Without ext, each mapping takes another
// port of its address (chosen by the port assignment, never the one it
// had); its old port is freed as a lapsed mapping's would be. With ext,
// one address for each of the table's, the external addresses are
// replaced, position by position, and every mapping takes a port of its
// new address chosen afresh; the old addresses keep nothing.
//
// Lapsed mappings are removed first (the next Expire reports them), and
// so is a mapping for which no port is free on its new address. Rebind
// reports how many mappings moved. It changes the endpoints the hit path
// reads, so it needs the whole table (Shared.Lock).
func (t *Table) Rebind(ext []netip.Addr, now time.Time) (moved int, err error) {
	if ext != nil {
		if len(ext) != len(t.ext) {
			return 0, fmt.Errorf("rebind: %d external addresses for %d", len(ext), len(t.ext))
		}
		for i, a := range ext {
			if !a.Is4() {
				return 0, fmt.Errorf("rebind: external address %s is not IPv4", a)
			}
			if slices.Contains(ext[:i], a) {
				return 0, fmt.Errorf("rebind: external address %s given twice", a)
			}
		}
	}
	rel := t.since(now)
	t.reapDue(rel)
	var live, lapsed []*Mapping
	t.in.all(func(m *Mapping) bool {
		if m.alive(rel) {
			live = append(live, m)
		} else {
			lapsed = append(lapsed, m)
		}
		return true
	})
	for _, m := range lapsed {
		t.bury(m)
	}
	if ext != nil {
		for _, m := range live {
			t.unbindExt(m)
		}
		// The old addresses' ports, held or shared, go with them.
		clear(t.held)
		clear(t.holds)
		t.holds, t.holdHead = t.holds[:0], 0
		clear(t.shared)
		for pi := range t.pools {
			clear(t.pools[pi])
		}
		for i, a := range ext {
			t.ext[i], t.extAddr[i] = a.As4(), a
		}
		t.cfg.External = slices.Clone(ext)
	}
	for _, m := range live {
		e, port, err := t.allocate(m.okey.proto, m.okey.in, m.okey.inPort, m.inl.remote, rel)
		if err != nil {
			if ext != nil {
				// Unbound already: it has no endpoint left.
				t.removeRest(m)
				t.graveyard = append(t.graveyard, m)
			}
			continue
		}
		if ext == nil {
			t.unbindExt(m)
		}
		t.bindExt(m, e, port)
		moved++
	}
	return moved, nil
}

// bindExt gives m external address e and port, taken in its pool (shared
// if already taken, as create does), and indexes it by them.
func (t *Table) bindExt(m *Mapping, e int, port uint16) {
	if p := t.pool(m.okey.proto.index(), e); p.isUsed(port) {
		t.shared[extKey{proto: m.okey.proto, addr: t.ext[e], port: port}]++
	} else {
		p.set(port)
	}
	m.ext, m.extAddr, m.extPort = uint16(e), t.ext[e], port
	t.in.insert(hashExt(m.extWord(), t.seed), m)
	if p, ok := t.pairs[m.okey.in]; ok {
		p.ext = int32(e)
		t.pairs[m.okey.in] = p
	}
}
