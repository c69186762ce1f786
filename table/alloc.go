package table

import "time"

// A new mapping and a gone one: the external address and port a new
// mapping takes (allocate, over the port pools of ports.go and the
// external addresses' pooling), its entries in the indexes, and their
// removal. With PortOverloading several mappings may share an external
// endpoint as long as no two talk to the same remote.

// create makes a new mapping for key k, the first remote it talks to
// being r; the caller adds the session, sets the expiry and pushes it on
// the heap. h is k's hash.
func (t *Table) create(proto Protocol, k outKey, h uint32, r remKey, now time.Duration) (*Mapping, error) {
	ext, port, err := t.allocate(proto, k.in, k.inPort, r, now)
	if err != nil {
		return nil, err
	}
	if p := t.pool(proto.index(), ext); p.isUsed(port) {
		t.shared[extKey{proto: proto, addr: t.ext[ext], port: port}]++ // overloaded
	} else {
		p.set(port)
	}
	if t.forRemote(k) {
		t.secondaries++
	}
	if t.stripes == nil {
		// The table's first mapping: hits lock stripes only of mappings
		// that exist, and an idle NAT (most of a large lab's) is spared
		// the 32 KB. create runs under the whole table's lock, which
		// holds every reader's: a hit, under one reader's, sees it set.
		// Pointer-free and 32 KB, a size class of its own: 128-byte
		// aligned, so each stripe has its line pair (TestStripesAligned).
		t.stripes = new([numStripes]stripe)
	}
	m := newMapping(proto)
	*m = Mapping{
		okey:    k,
		extPort: port,
		extAddr: t.ext[ext],
		ext:     uint16(ext),
		hidx:    -1,
		created: now,
		tab:     t,
	}
	t.out.insert(h, m)
	t.in.insert(hashExt(m.extWord(), t.seed), m)
	p, ok := t.pairs[k.in]
	if !ok {
		p.ext = int32(ext)
		if t.cfg.Pooling == Paired {
			t.rr = ext + 1
		}
	}
	p.n++
	t.pairs[k.in] = p
	return m, nil
}

// remove takes m out of every index and frees its port.
func (t *Table) remove(m *Mapping) {
	t.unbindExt(m)
	t.removeRest(m)
}

// unbindExt takes m out of the index by external endpoint and frees its
// port (or its share of it).
func (t *Table) unbindExt(m *Mapping) {
	k := m.extKey()
	t.in.remove(hashExt(k.word(), t.seed), m)
	switch c := t.shared[k]; {
	case c > 1:
		t.shared[k] = c - 1
	case c == 1:
		delete(t.shared, k)
	default:
		t.freePort(m)
	}
}

// removeRest is remove but for what unbindExt does.
func (t *Table) removeRest(m *Mapping) {
	t.out.remove(hashOut(m.okey.probe(), t.seed), m)
	if t.forRemote(m.okey) {
		t.secondaries--
	}
	p := t.pairs[m.okey.in]
	if p.n--; p.n <= 0 {
		delete(t.pairs, m.okey.in)
	} else {
		t.pairs[m.okey.in] = p
	}
	t.sessions -= int(m.nsess)
	if m.hidx >= 0 {
		t.heapRemove(int(m.hidx))
	}
}

// bury removes a lapsed mapping and keeps it for the next Expire to report.
func (t *Table) bury(m *Mapping) {
	t.remove(m)
	t.graveyard = append(t.graveyard, m)
}

func (t *Table) pool(pi, ext int) *portPool {
	p := t.pools[pi][ext]
	if p == nil {
		p = new(portPool)
		t.pools[pi][ext] = p
	}
	return p
}

// portRange returns the external port range for an internal port and the
// Sequential cursor it uses. RFC 4787 REQ-3a: ports below 1024 map into
// 1-1023 (with LinuxLowPorts 1-511 and 600-1023, as Linux does), others
// into PortLo-PortHi. ICMP identifiers use 1-65535.
func (t *Table) portRange(proto Protocol, inPort uint16) (lo, hi uint16, class int) {
	switch {
	case proto == ICMP:
		return 1, 65535, 0
	case inPort < 512 && t.cfg.LinuxLowPorts:
		return 1, 511, 0
	case inPort < 1024 && t.cfg.LinuxLowPorts:
		return 600, 1023, 2
	case inPort < 1024:
		return 1, 1023, 0
	}
	return t.cfg.PortLo, t.cfg.PortHi, 1
}

// allocate picks an external address and port for a new mapping. When none
// is free it removes lapsed mappings and tries once more, so a lapsed mapping
// never blocks a new one even before Expire runs.
func (t *Table) allocate(proto Protocol, ia [4]byte, inPort uint16, r remKey, now time.Duration) (int, uint16, error) {
	t.releaseHolds(now, false)
	for attempt := 0; ; attempt++ {
		if ext, port, ok := t.pick(proto, ia, inPort, r, now); ok {
			return ext, port, nil
		}
		switch {
		case attempt == 0 && t.reapDue(now) > 0:
		case attempt <= 1 && t.releaseHolds(now, true) > 0:
			// Freed ports on hold give way before a mapping is refused.
			attempt = 1
		default:
			// RFC 5508 REQ-8, RFC 6888 REQ-4: never steal a live mapping.
			return 0, 0, ErrPortsExhausted
		}
	}
}

// pick chooses the external address and port for a mapping whose first
// remote is r.
func (t *Table) pick(proto Protocol, ia [4]byte, inPort uint16, r remKey, now time.Duration) (int, uint16, bool) {
	n := len(t.ext)
	start, count := 0, n
	switch {
	case t.cfg.Pooling == Paired:
		// RFC 4787 REQ-2: every mapping of one internal address uses the same
		// external address while it holds any mapping (lapsed ones not yet
		// removed included); a new internal address takes the next one round
		// robin (or any with a free port).
		if p, ok := t.pairs[ia]; ok {
			start, count = int(p.ext), 1
		} else {
			start = t.rr % n
		}
	case n > 1:
		start = t.rng.IntN(n)
	}

	lo, hi, class := t.portRange(proto, inPort)
	mask := maskAll
	if t.cfg.Parity && proto != ICMP {
		// RFC 4787 REQ-4: keep the port's parity (RTP even, RTCP odd).
		mask = maskEven
		if inPort%2 == 1 {
			mask = maskOdd
		}
	}
	mode := t.cfg.PortAssignment
	if proto == ICMP {
		mode = Preserve // identifiers: keep if free (RFC 5508 REQ-1), else random
	}
	pi := proto.index()

	if mode == Preserve && inPort >= lo && inPort <= hi {
		// Port preservation may try every address of the pool before giving
		// up the port (RFC 4787 §4.2.1); paired pooling allows only one.
		for j := range count {
			e := (start + j) % n
			if t.takeable(proto, e, inPort, ia, now) {
				return e, inPort, true
			}
		}
		if t.cfg.PortOverloading && proto != ICMP {
			// Held, but maybe not toward r: share it (Linux keeps the
			// port whenever the reply tuple stays unique).
			for j := range count {
				e := (start + j) % n
				if t.shareable(proto, e, inPort, r, now) && !t.onHold(proto, e, inPort) {
					return e, inPort, true
				}
			}
		}
	}
	for j := range count {
		e := (start + j) % n
		p := t.pool(pi, e)
		var port uint16
		var ok bool
		if mode == Sequential {
			if port, ok = p.nextFree(lo, hi, p.last[class]+1, mask); ok {
				p.last[class] = port
			}
		} else {
			// Random, and Preserve after a clash (as Linux does).
			port, ok = p.random(lo, hi, mask, t.rng)
		}
		if ok {
			return e, port, true
		}
	}
	return 0, 0, false
}

// takeable reports whether port is free on external address e for
// internal address ia, removing a lapsed mapping that still holds it and
// ending a hold ia may end.
func (t *Table) takeable(proto Protocol, e int, port uint16, ia [4]byte, now time.Duration) bool {
	p := t.pool(proto.index(), e)
	k := extKey{proto: proto, addr: t.ext[e], port: port}
	for p.isUsed(port) {
		// Bury lapsed holders until the port is free or a live one holds
		// it (with PortOverloading there may be several).
		var lapsed *Mapping
		for c := range t.in.eachExt(hashExt(k.word(), t.seed), k.word()) {
			if c.alive(now) {
				return false
			}
			lapsed = c
		}
		if lapsed == nil {
			// No mapping holds it: a freed port on hold.
			return t.retake(k, ia, now)
		}
		t.bury(lapsed)
	}
	return true
}

// forRemote reports whether k is the key of a mapping made for one remote
// on a port clash (PortOverloading, whose mapping is endpoint-independent,
// so its other keys carry no remote).
func (t *Table) forRemote(k outKey) bool {
	return t.cfg.PortOverloading && (k.rem != ([4]byte{}) || k.remPort != 0)
}

// talksTo reports whether a live holder of external endpoint k other than
// except has a live session with r (PortOverloading: the reply tuple
// (k, r) is taken).
func (t *Table) talksTo(k extKey, r remKey, rel time.Duration, except *Mapping) bool {
	for c := range t.in.eachExt(hashExt(k.word(), t.seed), k.word()) {
		if c != except && c.alive(rel) && c.findLive(r, rel) >= 0 {
			return true
		}
	}
	return false
}

// clashes reports whether another live holder of m's external endpoint
// has a live session with r.
func (t *Table) clashes(m *Mapping, r remKey, rel time.Duration) bool {
	k := m.extKey()
	return t.shared[k] > 0 && t.talksTo(k, r, rel, m)
}

// shareable reports whether a new mapping toward r may take external
// port on address e that live mappings hold: none of them talks to r.
func (t *Table) shareable(proto Protocol, e int, port uint16, r remKey, rel time.Duration) bool {
	return !t.talksTo(extKey{proto: proto, addr: t.ext[e], port: port}, r, rel, nil)
}
