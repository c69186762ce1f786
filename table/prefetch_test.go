package table

import (
	"net/netip"
	"testing"
	"time"
)

// Prefetch is only a hint: on a table big enough for it to work, it
// allocates nothing, changes nothing, and copes with keys that are not
// there or not IPv4.
func TestPrefetch(t *testing.T) {
	tab := newTable(t, nil)
	n := prefetchMin + 100
	ext := make([]netip.AddrPort, n)
	for i := range n {
		m := out(t, tab, UDP, benchInternal(i), benchRemote, 0, t0)
		ext[i] = m.External()
	}
	if !tab.prefetchHelps() {
		t.Fatalf("%d mappings: PrefetchHelps false", n)
	}
	keys := []LookupKey{
		{Proto: UDP, Outbound: true, Local: benchInternal(7), Remote: benchRemote},
		{Proto: UDP, Local: ext[9]},
		{Proto: TCP, Outbound: true, Local: benchInternal(7), Remote: benchRemote}, // no such mapping
		{Proto: UDP, Local: netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), 5)},
		{Proto: UDP, Outbound: true, Local: benchInternal(3)}, // remote missing
		{},
	}
	for range 100 { // more than one internal batch
		keys = append(keys, LookupKey{Proto: UDP, Local: ext[len(keys)]})
	}
	if a := testing.AllocsPerRun(100, func() { tab.prefetchBatch(keys) }); a != 0 {
		t.Errorf("Prefetch: %v allocs", a)
	}
	if tab.Len() != n {
		t.Fatalf("Len %d after Prefetch, want %d", tab.Len(), n)
	}
	checkInvariants(t, tab)
	now := t0.Add(time.Second)
	if m, v := tab.Inbound(UDP, ext[9], benchRemote, 0, now); v != Accept || m.Internal() != benchInternal(9) {
		t.Fatalf("inbound after Prefetch: %v %v", m, v)
	}
	if m, created, err := tab.Outbound(UDP, benchInternal(7), benchRemote, 0, now); err != nil || created || m.External() != ext[7] {
		t.Fatalf("outbound after Prefetch: %v created %v err %v", m, created, err)
	}
}
