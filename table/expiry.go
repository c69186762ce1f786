package table

import "time"

// Expiry: a mapping lapses at its Expires and is gone for every lookup
// from then on (each checks alive); Expire, or a new mapping that needs
// the port, removes it and frees its port.

// Expire removes the mappings that have lapsed by now (Expires <= now) and
// frees their ports, calling fn (if not nil) for each. Mappings that Outbound
// removed on the way (a lapsed mapping in the way of a new one) are reported
// here too, so every mapping that leaves the table other than by Flush is
// reported exactly once. It returns how many were reported. fn must not
// change the table. The cost is O(log n) per removed mapping (plus, amortised,
// one heap step per live mapping per timeout period), not a scan of the table.
func (t *Table) Expire(now time.Time, fn func(*Mapping)) int {
	if t.haveEpoch {
		t.reapDue(now.Sub(t.epoch))
	}
	n := len(t.graveyard)
	if fn != nil {
		for _, m := range t.graveyard {
			fn(m)
		}
	}
	clear(t.graveyard)
	t.graveyard = t.graveyard[:0]
	return n
}

// reapDue moves every mapping lapsed at table time at to the graveyard and
// returns how many.
func (t *Table) reapDue(at time.Duration) int {
	n := 0
	for len(t.heap) > 0 && t.heap[0].due <= at {
		m := t.heap[0]
		if !m.alive(at) {
			t.bury(m)
			n++
			continue
		}
		m.due = m.expires
		t.heapDown(0)
	}
	return n
}

// setExpires sets a mapping's expiry, moving it up the heap if it got earlier
// than its due time. Moving Expires later needs no call: due stays below it.
func (t *Table) setExpires(m *Mapping, e time.Duration) {
	m.expires = e
	if m.hidx >= 0 && e < m.due {
		m.due = e
		t.heapUp(int(m.hidx))
	}
}

// The expiry heap: a min-heap of mappings on due, each knowing its position.
// due never exceeds Expires, so the top is checked no later than the first
// mapping to lapse; a live top is rescheduled at its Expires. Refreshes on
// the hot path only move Expires later and never touch the heap.

func (t *Table) heapLess(i, j int) bool { return t.heap[i].due < t.heap[j].due }

func (t *Table) heapSwap(i, j int) {
	h := t.heap
	h[i], h[j] = h[j], h[i]
	h[i].hidx = int32(i)
	h[j].hidx = int32(j)
}

func (t *Table) heapPush(m *Mapping) {
	m.hidx = int32(len(t.heap))
	t.heap = append(t.heap, m)
	t.heapUp(len(t.heap) - 1)
}

func (t *Table) heapUp(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !t.heapLess(i, parent) {
			return
		}
		t.heapSwap(i, parent)
		i = parent
	}
}

func (t *Table) heapDown(i int) bool {
	start := i
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && t.heapLess(r, l) {
			c = r
		}
		if !t.heapLess(c, i) {
			break
		}
		t.heapSwap(i, c)
		i = c
	}
	return i > start
}

func (t *Table) heapRemove(i int) {
	last := len(t.heap) - 1
	m := t.heap[i]
	if i != last {
		t.heapSwap(i, last)
	}
	t.heap[last] = nil
	t.heap = t.heap[:last]
	m.hidx = -1
	if i != last && !t.heapDown(i) {
		t.heapUp(i)
	}
}
