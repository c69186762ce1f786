package table

import (
	"testing"
	"unsafe"
)

// The Mapping stays in Go's 128-byte size class (one per two cache lines,
// line-aligned) and its lookup fields in the first line; a field added
// carelessly must fail here, not quietly cost a cache miss per packet.
func TestMappingLayout(t *testing.T) {
	var m Mapping
	if n := unsafe.Sizeof(m); n > 128 {
		t.Errorf("Mapping is %d bytes, want <= 128", n)
	}
	if end := unsafe.Offsetof(m.more) + unsafe.Sizeof(m.more); end > 64 {
		t.Errorf("lookup fields end at byte %d, want <= 64", end)
	}
	if n := unsafe.Sizeof(session{}); n != 16 {
		t.Errorf("session is %d bytes, want 16", n)
	}
}
