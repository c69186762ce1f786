package offload_test

import (
	"bytes"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

// A super-packet is cut in as many rounds as the buffers take, and its
// segments add up to its payload; segments too large for a buffer are
// counted, never written past its end.
func TestSegmenterSplitsInBatches(t *testing.T) {
	payload := make([]byte, 60000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	b, h := tuntest.TSO(ap(hostA, 1), ap(srv1, 2), payload, header.TCPAck)
	s := offload.NewSegmenter(8, 1500, headroom)
	var got []byte
	n := h.Segments(b)
	for k := 0; k < n; {
		q, next, lost := s.Split(b, &h, k)
		if lost != 0 || len(q) == 0 || len(q) > 8 {
			t.Fatalf("split from %d: %d packets, %d lost", k, len(q), lost)
		}
		for _, pkt := range q {
			checkSums(t, pkt[headroom:])
			got = append(got, pkt[headroom+40:]...)
		}
		k = next
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("segments do not add up")
	}
	// Segments that do not fit are counted, not written past the end.
	small := offload.NewSegmenter(4, 500, headroom)
	if q, _, lost := small.Split(b, &h, 0); len(q) != 0 || lost == 0 {
		t.Fatalf("%d packets, %d lost", len(q), lost)
	}
}
