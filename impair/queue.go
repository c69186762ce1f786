package impair

// A Queue holds delayed packets in due-time order (ties in arrival order). Packets are copied
// into a fixed pool of slots made once by NewQueue: Push, Pop and Free never allocate, and a
// full pool refuses the packet (the caller counts it as a queue overflow). Not safe for
// concurrent use.
type Queue struct {
	slab []byte // slots*slotSize bytes, slot i at [i*slotSize:(i+1)*slotSize]
	size int
	lens []int
	due  []int64
	seq  []uint64
	heap []int32 // slot numbers, a binary min-heap on (due, seq)
	free []int32 // slot numbers not in use
	next uint64  // arrival counter for ties
}

// NewQueue returns a Queue of slots packets of at most slotSize bytes each.
func NewQueue(slots, slotSize int) *Queue {
	q := &Queue{
		slab: make([]byte, slots*slotSize),
		size: slotSize,
		lens: make([]int, slots),
		due:  make([]int64, slots),
		seq:  make([]uint64, slots),
		heap: make([]int32, 0, slots),
		free: make([]int32, slots),
	}
	for i := range q.free {
		q.free[i] = int32(slots - 1 - i)
	}
	return q
}

// Len is the number of packets queued (popped but not freed ones excluded).
func (q *Queue) Len() int { return len(q.heap) }

// Push copies pkt into a free slot, due at due. It reports false, keeping nothing, when every
// slot is taken or pkt is longer than a slot.
func (q *Queue) Push(due int64, pkt []byte) bool {
	if len(q.free) == 0 || len(pkt) > q.size {
		return false
	}
	s := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	q.lens[s] = copy(q.slab[int(s)*q.size:], pkt)
	q.due[s] = due
	q.seq[s] = q.next
	q.next++
	q.heap = append(q.heap, s)
	q.up(len(q.heap) - 1)
	return true
}

// Next returns the due time of the earliest packet; ok is false when the Queue is empty.
func (q *Queue) Next() (due int64, ok bool) {
	if len(q.heap) == 0 {
		return 0, false
	}
	return q.due[q.heap[0]], true
}

// Pop removes the earliest packet if it is due at now or before, and returns its slot and
// bytes. The bytes stay valid until Free(slot); the caller frees every slot it pops.
func (q *Queue) Pop(now int64) (slot int, pkt []byte, ok bool) {
	if len(q.heap) == 0 || q.due[q.heap[0]] > now {
		return 0, nil, false
	}
	s := q.heap[0]
	last := len(q.heap) - 1
	q.heap[0] = q.heap[last]
	q.heap = q.heap[:last]
	if last > 0 {
		q.down(0)
	}
	off := int(s) * q.size
	return int(s), q.slab[off : off+q.lens[s] : off+q.size], true
}

// Free returns a popped slot to the pool.
func (q *Queue) Free(slot int) { q.free = append(q.free, int32(slot)) }

func (q *Queue) less(a, b int32) bool {
	if q.due[a] != q.due[b] {
		return q.due[a] < q.due[b]
	}
	return q.seq[a] < q.seq[b]
}

func (q *Queue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(q.heap[i], q.heap[p]) {
			return
		}
		q.heap[i], q.heap[p] = q.heap[p], q.heap[i]
		i = p
	}
}

func (q *Queue) down(i int) {
	n := len(q.heap)
	for {
		m := i
		if l := 2*i + 1; l < n && q.less(q.heap[l], q.heap[m]) {
			m = l
		}
		if r := 2*i + 2; r < n && q.less(q.heap[r], q.heap[m]) {
			m = r
		}
		if m == i {
			return
		}
		q.heap[i], q.heap[m] = q.heap[m], q.heap[i]
		i = m
	}
}
