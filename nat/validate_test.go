package nat

import (
	"testing"
	"time"

)

func countMappings(e *Engine, now time.Time) int {
	n := 0
	e.Mappings(now, func(MappingInfo) { n++ })
	return n
}

// Every packet's IPv4 header checksum is verified (RFC 1812 §5.2.2), in
// both directions, before anything is looked up or made.
func TestBadHeaderChecksumDropped(t *testing.T) {
	e := newEngine(t, "full-cone")
	out := udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x")
	out[10] ^= 0x40
	if r, _ := process(t, e, 1, out, t0); r.Verdict != DropBadChecksum {
		t.Fatalf("outbound with a bad header checksum: %v", r.Verdict)
	}
	if n := countMappings(e, t0); n != 0 {
		t.Fatalf("it made %d mappings", n)
	}
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x"), t0)
	in := udpPkt(ap(srv2, 1), ap(ext, 5000), 64, "y")
	in[8]-- // TTL changed, checksum not
	if r, _ := process(t, e, Outside, in, t0); r.Verdict != DropBadChecksum {
		t.Fatalf("inbound with a bad header checksum: %v", r.Verdict)
	}
	if c := e.Count(DropBadChecksum); c != 2 {
		t.Fatalf("bad-checksum counted %d, want 2", c)
	}
}
