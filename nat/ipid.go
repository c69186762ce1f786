package nat

// idBlock is how many IP identifications a queue takes from the engine's
// counter at a time: one write to a shared line per idBlock non-atomic
// datagrams, not one per datagram.
const idBlock = 64

// nextID returns the identification for a non-atomic datagram that
// leaves as segs datagrams (a DF-clear super-packet, which the kernel
// numbers ID, ID+1, ...). Call it with q's reader lock held (alone, or
// with the others by shared.Lock).
//
// A block goes stale once the other queues have moved the counter almost
// round (by 2^16 less two blocks): its numbers would come round again
// elsewhere, and two datagrams a moment apart could share one
// (TestIPIDStaleBlock).
func (q *Queue) nextID(segs int) uint16 {
	if segs > 1 {
		return uint16(q.e.ipID.Add(uint32(segs)) - uint32(segs)) // a run of its own
	}
	if q.idLeft == 0 || q.e.ipID.Load()-q.idTaken > 1<<16-2*idBlock {
		q.idTaken = q.e.ipID.Add(idBlock)
		q.idNext = uint16(q.idTaken - idBlock)
		q.idLeft = idBlock
	}
	q.idLeft--
	q.idNext++
	return q.idNext - 1
}
