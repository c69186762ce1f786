package impair

import (
	"encoding/binary"
	"testing"
)

func TestQueueOrder(t *testing.T) {
	q := NewQueue(8, 64)
	dues := []int64{50, 10, 30, 10, 40, 20, 30, 5}
	for i, d := range dues {
		var p [4]byte
		binary.BigEndian.PutUint32(p[:], uint32(i))
		if !q.Push(d, p[:]) {
			t.Fatalf("push %d refused", i)
		}
	}
	if q.Push(1, []byte{1}) {
		t.Fatal("push into a full queue accepted")
	}
	if due, _ := q.Next(); due != 5 {
		t.Fatalf("Next = %d, want 5", due)
	}
	if _, _, ok := q.Pop(4); ok {
		t.Fatal("popped before due")
	}
	// Due order, ties in arrival order: 7(5) 1(10) 3(10) 5(20) 2(30) 6(30) 4(40) 0(50).
	want := []uint32{7, 1, 3, 5, 2, 6, 4, 0}
	for _, w := range want {
		s, p, ok := q.Pop(100)
		if !ok || binary.BigEndian.Uint32(p) != w || len(p) != 4 {
			t.Fatalf("pop = %v %v, want packet %d", p, ok, w)
		}
		q.Free(s)
	}
	if q.Len() != 0 {
		t.Fatal("not empty")
	}
	if q.Push(1, make([]byte, 65)) {
		t.Fatal("oversized packet accepted")
	}
}

func TestQueueAllocs(t *testing.T) {
	q := NewQueue(256, 2048)
	pkt := make([]byte, 1400)
	var now int64
	n := testing.AllocsPerRun(1000, func() {
		now++
		q.Push(now+100, pkt)
		if s, _, ok := q.Pop(now); ok {
			q.Free(s)
		}
	})
	if n != 0 {
		t.Errorf("%v allocs per packet", n)
	}
}
