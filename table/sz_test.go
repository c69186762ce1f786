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
	// What a packet of a one-session mapping reads and writes, through
	// the counters' low words, is the first line.
	if end := unsafe.Offsetof(m.bytesIn) + unsafe.Sizeof(m.bytesIn); end > 64 {
		t.Errorf("per-packet fields end at byte %d, want <= 64", end)
	}
	if n := unsafe.Sizeof(session{}); n != 16 {
		t.Errorf("session is %d bytes, want 16", n)
	}
	// A TCP mapping carries its first session's windows in one more
	// line, before the Mapping, in the 192-byte size class.
	if n := unsafe.Sizeof(tcpMapping{}); n > 192 {
		t.Errorf("tcpMapping is %d bytes, want <= 192", n)
	}
	var tm tcpMapping
	if off := unsafe.Offsetof(tm.m); off != winLine {
		t.Errorf("the Mapping starts at byte %d of a tcpMapping, want %d", off, winLine)
	}
	for range 64 {
		m := newMapping(TCP)
		sinkMapping = m // on the heap, as the table's
		if a := uintptr(unsafe.Pointer(m)); a%64 != 0 {
			t.Fatalf("a TCP Mapping at %#x: not on a cache line", a)
		}
		if m.win(0) != &(*tcpMapping)(unsafe.Add(unsafe.Pointer(m), -winLine)).win {
			t.Fatal("win(0) is not the tcpMapping's windows")
		}
	}
}

// The counters carry into their high words: a mapping's packets and bytes
// go past 2^32 as a uint64 would.
func TestMappingCounters(t *testing.T) {
	var m Mapping
	m.pktsOut, m.pktsIn = 1<<32-1, 1<<32-2
	m.countPacket(true)
	m.countPacket(false)
	m.countPacket(false)
	if m.PacketsOut() != 1<<32 || m.PacketsIn() != 1<<32 {
		t.Errorf("packets %d out, %d in; want 2^32 each", m.PacketsOut(), m.PacketsIn())
	}
	m.AddBytes(true, 1<<31+5)
	m.AddBytes(true, 1<<31)
	m.AddBytes(false, 3<<32+7) // a sum from a caller, not one packet
	if m.BytesOut() != 1<<32+5 || m.BytesIn() != 3<<32+7 {
		t.Errorf("bytes %d out, %d in; want %d and %d", m.BytesOut(), m.BytesIn(), uint64(1<<32+5), uint64(3<<32+7))
	}
}
