package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

func TestTTLExceeded(t *testing.T) {
	e := newEngine(t, "full-cone")
	b := udpPkt(ap(hostA, 5000), ap(srv1, 33434), 1, "probe")
	r, p := process(t, e, 1, b, t0)
	if r.Verdict != DropTTLExceeded || r.ReplyLen == 0 {
		t.Fatalf("%+v", r)
	}
	if p.IPProto != header.ProtoICMP || p.ICMPType != header.ICMPTimeExceeded || p.Src.Addr() != gw || p.Dst.Addr() != hostA {
		t.Fatalf("reply %d/%d from %s to %s", p.ICMPType, p.ICMPCode, p.Src, p.Dst)
	}
	checkSums(t, lastReply)
	var n int
	e.Mappings(t0, func(MappingInfo) { n++ })
	if n != 0 {
		t.Fatalf("an expiring packet created %d mappings", n)
	}
}

// quote builds an ICMP error from `from` about packet orig (as the
// remote side saw it).
func quote(t *testing.T, orig []byte, from netip.Addr, typ, code uint8) []byte {
	b := make([]byte, 1500)
	n := header.BuildICMPError(b, orig, from, typ, code, 0)
	if n == 0 {
		t.Fatal("BuildICMPError refused")
	}
	return b[:n]
}

func TestICMPErrorTranslation(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	out := udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "anyone?")
	process(t, e, 1, out, t0)
	// R reports Time Exceeded about E1:5000 -> S1:9 (RFC 5508 REQ-4).
	errPkt := quote(t, out, rtr, header.ICMPTimeExceeded, 0)
	r, p := process(t, e, Outside, errPkt, t0)
	if r.Verdict != Forward || r.Out != 1 {
		t.Fatalf("%+v", r)
	}
	if p.Dst.Addr() != hostA || p.InnerSrc != ap(hostA, 5000) || p.InnerDst != ap(srv1, 9) || p.ICMPType != header.ICMPTimeExceeded {
		t.Fatalf("translated to dst %s inner %s -> %s type %d", p.Dst, p.InnerSrc, p.InnerDst, p.ICMPType)
	}
	checkSums(t, errPkt)
	if !header.ICMPChecksumValid(errPkt, &p) || !header.InnerIPChecksumValid(errPkt, &p) {
		t.Fatal("checksums after translation")
	}

	// Bad ICMP checksum: dropped (REQ-3).
	bad := quote(t, out, rtr, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable)
	bad[len(bad)-1] ^= 0xff
	if r, _ := process(t, e, Outside, bad, t0); r.Verdict != DropBadChecksum {
		t.Fatalf("bad checksum: %v", r.Verdict)
	}
	// No mapping: dropped.
	stray := udpPkt(ap(ext, 7777), ap(srv1, 9), 64, "never sent")
	if r, _ := process(t, e, Outside, quote(t, stray, rtr, header.ICMPDestUnreachable, 3), t0); r.Verdict != DropNoMapping {
		t.Fatalf("error without mapping: %v", r.Verdict)
	}
}

// An ICMP error neither refreshes nor deletes the mapping (RFC 5508 REQ-6).
func TestICMPErrorDoesNotRefresh(t *testing.T) {
	e := newEngine(t, "full-cone", func(c *table.Config) { c.UDPTimeout = 10 * time.Second })
	out := udpPkt(ap(hostA, 5000), ap(srv1, 9), 64, "x")
	process(t, e, 1, out, t0)
	errPkt := quote(t, out, srv1, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable)
	if r, _ := process(t, e, Outside, errPkt, t0.Add(9*time.Second)); r.Verdict != Forward {
		t.Fatalf("%v", r.Verdict)
	}
	in := udpPkt(ap(srv2, 1), ap(ext, 5000), 64, "late")
	if r, _ := process(t, e, Outside, in, t0.Add(10*time.Second+time.Millisecond)); r.Verdict != DropNoMapping {
		t.Fatalf("the ICMP error refreshed the mapping: %v", r.Verdict)
	}
}

func TestOutboundICMPError(t *testing.T) {
	e := newEngine(t, "full-cone")
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"), t0)
	in := udpPkt(ap(srv2, 4000), ap(ext, 5000), 64, "to a closed port")
	process(t, e, Outside, in, t0) // now in == srv2:4000 -> 10.0.0.2:5000
	// A's kernel answers port unreachable about what it received.
	errPkt := quote(t, in, hostA, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable)
	r, p := process(t, e, 1, errPkt, t0)
	if r.Verdict != Forward || r.Out != Outside || p.Src.Addr() != ext || p.InnerDst != ap(ext, 5000) {
		t.Fatalf("%+v src %s inner dst %s", r, p.Src, p.InnerDst)
	}
	checkSums(t, errPkt)
}

func TestEcho(t *testing.T) {
	e := newEngine(t, "full-cone")
	// Two hosts, same identifier (RFC 5508 REQ-1).
	a := echoPkt(hostA, srv1, header.ICMPEchoRequest, 0x4242)
	b := echoPkt(hostB, srv1, header.ICMPEchoRequest, 0x4242)
	_, pa := process(t, e, 1, a, t0)
	_, pb := process(t, e, 2, b, t0)
	checkSums(t, a)
	checkSums(t, b)
	if pa.Src == pb.Src {
		t.Fatalf("both echo requests left as %s", pa.Src)
	}
	for i, want := range []struct {
		id   uint16
		port Port
	}{{pa.Src.Port(), 1}, {pb.Src.Port(), 2}} {
		reply := echoPkt(srv1, ext, header.ICMPEchoReply, want.id)
		r, p := process(t, e, Outside, reply, t0)
		if r.Verdict != Forward || r.Out != want.port || p.Dst.Port() != 0x4242 {
			t.Fatalf("reply %d: %+v id %#x", i, r, p.Dst.Port())
		}
		checkSums(t, reply)
	}
}
