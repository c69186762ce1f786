package forward

import (
	"sync"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

// seen is one packet a Tap was given.
type seen struct {
	port nat.Port
	dir  Direction
	p    header.Parsed
	h    offload.VirtioHdr
	segs int // on the wire (h.WireSegments)
}

// recorder is a Tap that keeps what it sees.
type recorder struct {
	mu   sync.Mutex
	pkts []seen
}

func (r *recorder) tap(port nat.Port, dir Direction, pkt []byte, h offload.VirtioHdr) {
	s := seen{port: port, dir: dir, h: h}
	s.p.Decode(pkt)
	s.segs, _ = h.WireSegments(pkt)
	r.mu.Lock()
	r.pkts = append(r.pkts, s)
	r.mu.Unlock()
}

// waitFor returns what the tap saw once it has seen n packets.
func (r *recorder) waitFor(t *testing.T, n int) []seen {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]seen(nil), r.pkts...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tap saw %d packets, want %d: %+v", len(got), n, got)
		}
		time.Sleep(time.Millisecond)
	}
}

// runTapped runs a router over ports with a recorder as its Tap until t
// ends.
func runTapped(t *testing.T, e *nat.Engine, ports ...tun.Device) *recorder {
	t.Helper()
	rec := &recorder{}
	startRouter(t, &Router{Engine: e, Ports: ports, Tap: rec.tap})
	return rec
}

// The Tap sees a packet read, before translation, and written, after,
// on the ports it crosses, and the ICMP error the engine answers with.
func TestTapSeesBothSides(t *testing.T) {
	outside, a, b := tuntest.NewChannel("out"), tuntest.NewChannel("a"), tuntest.NewChannel("b")
	rec := runTapped(t, newEngine(t, "port-restricted-cone"), outside, a, b)
	a.In <- udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "req")
	recv(t, outside.Out, "request")
	a.In <- udpPkt(ap(hostA, 5000), ap(srv1, 3478), 1, "ttl")
	recv(t, a.Out, "time exceeded")
	got := rec.waitFor(t, 4)
	want := []struct {
		port nat.Port
		dir  Direction
		src  string
	}{{1, FromDevice, "10.0.0.2:5000"}, {nat.Outside, ToDevice, "198.51.100.1:5000"}, {1, FromDevice, "10.0.0.2:5000"}, {1, ToDevice, "10.0.0.1:0"}}
	for i, w := range want {
		if g := got[i]; g.port != w.port || g.dir != w.dir || g.p.Src.String() != w.src {
			t.Errorf("packet %d: port %d %v from %s, want port %d %v from %s", i, g.port, g.dir, g.p.Src, w.port, w.dir, w.src)
		}
	}
	if got[3].p.ICMPType != header.ICMPTimeExceeded {
		t.Errorf("the answer is ICMP type %d", got[3].p.ICMPType)
	}
}

// A super-packet reaches the Tap once, with its header, when it crosses
// whole; bound for a device without offloads, as each segment written.
func TestTapSuperPackets(t *testing.T) {
	payload := make([]byte, 5*mss)
	b, h := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), payload, header.TCPAck)
	syn, sh := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), nil, header.TCPSyn)
	for _, c := range []struct {
		name    string
		outside tun.Device
		written int // packets the tap sees written to the outside
	}{
		{"offload to offload", tuntest.NewVirtioChannel("out"), 1},
		{"offload to plain", tuntest.NewChannel("out"), 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := tuntest.NewVirtioChannel("a")
			rec := runTapped(t, newEngine(t, "port-restricted-cone"), c.outside, a, tuntest.NewVirtioChannel("b"))
			a.In <- tuntest.WithVirtioHdr(sh, syn)
			a.In <- tuntest.WithVirtioHdr(h, b)
			var written []seen // after the SYN
			for _, s := range rec.waitFor(t, 3+c.written) {
				if s.dir == ToDevice {
					written = append(written, s)
				}
			}
			var segs int
			for _, s := range written[1:] {
				if s.port != nat.Outside || s.p.Src.Addr() != ext {
					t.Fatalf("%+v, want written to the outside, translated", s)
				}
				if s.h.IsGSO() && (s.h.GSOSize != mss || s.h.GSOType != offload.GSOTCPv4) {
					t.Errorf("header %+v", s.h)
				}
				segs += s.segs
			}
			if len(written)-1 != c.written || segs != 5 {
				t.Errorf("the tap saw %d packets written, %d segments on the wire; want %d, 5", len(written)-1, segs, c.written)
			}
		})
	}
}

// Datagrams coalesced for a device that takes UDP super-packets reach
// the Tap one by one, before they are coalesced.
func TestTapBeforeCoalescing(t *testing.T) {
	e := newEngine(t, "full-cone")
	if r := e.Process(1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "map"), make([]byte, 1500), time.Now()); r.Verdict != nat.Forward {
		t.Fatal(r.Verdict)
	}
	outside, a := tuntest.NewChannel("out"), tuntest.NewVirtioChannel("a")
	a.TakesUSO = true
	const n = 4
	for range n { // queued before the router starts: one batch
		outside.In <- udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "datagram")
	}
	rec := runTapped(t, e, outside, a, tuntest.NewChannel("b"))
	got := recv(t, a.Out, "super-packet")
	var h offload.VirtioHdr
	h.Decode(got)
	if segs, _ := h.WireSegments(got[offload.VirtioHdrLen:]); segs != n {
		t.Fatalf("device got %d datagrams in one write, want %d", segs, n)
	}
	var written int
	for _, s := range rec.waitFor(t, 2*n) {
		if s.dir == ToDevice {
			written++
			if s.port != 1 || s.h.IsGSO() || s.p.Length != len(udpPkt(ap(srv1, 3478), ap(hostA, 5000), 64, "datagram")) {
				t.Errorf("%+v, want one datagram written to port 1", s)
			}
		}
	}
	if written != n {
		t.Errorf("the tap saw %d datagrams written, want %d", written, n)
	}
}
