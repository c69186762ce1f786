package table

import "time"

// Freed ports held before reuse (RFC 6888 REQ-8): a UDP port or ICMP
// identifier a lapsed mapping gave up goes to no other internal address
// for Config.PortHold, so a new mapping does not receive what the old
// one's remotes still send. TCP ports are free at once (REQ-8 a: the
// table tracks TCP state). A held port keeps its bit in the pool, so
// every way of picking a port passes it by; the internal address that
// held it may take it back at once (its mapping returns, port
// preserved); and when nothing else is free, holds give way rather than
// refuse a mapping.

// heldPort is a port on hold: taken from its pool at until, unless
// taken back before.
type heldPort struct {
	key   extKey
	in    [4]byte // the internal address whose mapping held it
	until time.Duration
}

// freePort frees m's port, or puts it on hold from m's expiry.
func (t *Table) freePort(m *Mapping) {
	p := t.pool(m.okey.proto.index(), int(m.ext))
	if t.cfg.PortHold <= 0 || m.okey.proto == TCP {
		p.clear(m.extPort)
		return
	}
	p.n-- // no longer a mapping's; its bit stays set while held
	h := heldPort{key: m.extKey(), in: m.okey.in, until: m.expires + t.cfg.PortHold}
	t.held[h.key] = h
	if len(t.holds) >= 2*len(t.held)+64 {
		t.compactHolds() // entries of holds taken back: bounded
	}
	t.holds = append(t.holds, h)
}

// compactHolds drops the entries of holds whose hold is no longer on.
func (t *Table) compactHolds() {
	w := 0
	for _, h := range t.holds[t.holdHead:] {
		if cur, ok := t.held[h.key]; ok && cur == h {
			t.holds[w] = h
			w++
		}
	}
	clear(t.holds[w:])
	t.holds = t.holds[:w]
	t.holdHead = 0
}

// unhold frees the held port k now.
func (t *Table) unhold(k extKey) {
	delete(t.held, k)
	t.pool(k.proto.index(), t.extIndex(k.addr)).used[k.port>>6] &^= 1 << (k.port & 63)
}

// releaseHolds frees the ports whose hold is over at rel, or every held
// port if all is set.
func (t *Table) releaseHolds(rel time.Duration, all bool) int {
	n := 0
	for ; t.holdHead < len(t.holds); t.holdHead++ {
		h := t.holds[t.holdHead]
		if !all && h.until > rel {
			break
		}
		if cur, ok := t.held[h.key]; ok && cur == h {
			t.unhold(h.key)
			n++
		}
	}
	if t.holdHead > len(t.holds)/2 {
		t.compactHolds()
	}
	return n
}

// retake reports whether internal address in may take port k, which no
// mapping holds but whose bit is set: a hold that is its own or over.
func (t *Table) retake(k extKey, in [4]byte, rel time.Duration) bool {
	h, ok := t.held[k]
	if !ok || (h.in != in && h.until > rel) {
		return false
	}
	t.unhold(k)
	return true
}

// extIndex is the position of external address a in the pool.
func (t *Table) extIndex(a [4]byte) int {
	for i, e := range t.ext {
		if e == a {
			return i
		}
	}
	return -1
}

// HeldPorts returns how many freed ports are on hold (RFC 6888 REQ-8).
func (t *Table) HeldPorts() int { return len(t.held) }

// onHold reports whether port on external address e is a freed port on
// hold (no mapping holds it, so it is not one to share).
func (t *Table) onHold(proto Protocol, e int, port uint16) bool {
	_, ok := t.held[extKey{proto: proto, addr: t.ext[e], port: port}]
	return ok
}
