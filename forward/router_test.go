package forward

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

// The same scenario as the end-to-end tests, over channel devices: a
// request goes out translated, the reply comes back, and the router leaves
// no goroutine behind.
func TestRouterOverChannels(t *testing.T) {
	before := runtime.NumGoroutine()
	e := newEngine(t, "port-restricted-cone")
	outside, a, b := tuntest.NewChannel("out"), tuntest.NewChannel("a"), tuntest.NewChannel("b")
	r := &Router{Engine: e, Ports: []tun.Device{outside, a, b}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()

	a.In <- udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "req")
	var p header.Parsed
	select {
	case pkt := <-outside.Out:
		p.Decode(pkt)
		if p.Src != ap(ext, 5000) {
			t.Fatalf("left as %s", p.Src)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing left the outside port")
	}
	outside.In <- udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "resp")
	select {
	case pkt := <-a.Out:
		p.Decode(pkt)
		if p.Dst != ap(hostA, 5000) {
			t.Fatalf("arrived as %s", p.Dst)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reply never reached A")
	}
	// TTL 1: the Time Exceeded goes back out of the port it came in on.
	a.In <- udpPkt(ap(hostA, 5000), ap(srv1, 3478), 1, "ttl")
	select {
	case pkt := <-a.Out:
		p.Decode(pkt)
		if p.ICMPType != header.ICMPTimeExceeded || p.Src.Addr() != gw {
			t.Fatalf("got type %d from %s", p.ICMPType, p.Src)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Time Exceeded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines before, %d after the router stopped", before, n)
	}
}

// failingDevice is a queue whose reads fail at once, as every queue of a
// TUN device does when the device is deleted under the router.
type failingDevice struct{ *tuntest.Channel }

func (failingDevice) Read([][]byte, []int, int) (int, error) { return 0, errors.New("device gone") }

// With a reader per queue, every reader of a device fails when it goes:
// Run returns one of their errors and waits for them all. (Before, the
// error channel held one error per port, so readers failing together
// could block on it and hang Run; that race is too narrow to force
// here, and the send no longer blocks at all.)
func TestRouterManyQueuesFail(t *testing.T) {
	e := newEngine(t, "full-cone")
	var ports []tun.Device
	for range 2 {
		var qs []tun.Device
		for range 8 {
			qs = append(qs, failingDevice{tuntest.NewChannel("q")})
		}
		ports = append(ports, tuntest.NewQueueSet(qs...))
	}
	r := &Router{Engine: e, Ports: ports}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || err.Error() != "device gone" {
			t.Fatalf("Run returned %v, want the readers' error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after every reader failed")
	}
}

// sinkDevice takes every write and drops it, allocating nothing.
type sinkDevice struct{ *tuntest.Channel }

func (sinkDevice) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }

// sinkVirtio is a sinkDevice with offloads.
type sinkVirtio struct{ *tuntest.VirtioChannel }

func (sinkVirtio) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }

// A batch translates and writes its packets without allocating, with a
// Tap or without, plain, TSO super-packets crossing whole or cut in
// software, and datagrams coalesced for a device that takes USO.
func TestBatchNoAllocs(t *testing.T) {
	tso, th := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), make([]byte, 20*mss), header.TCPAck)
	syn, sh := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), nil, header.TCPSyn)
	udp := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "datagram")
	back := udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "datagram")
	uso := tuntest.NewVirtioChannel("a")
	uso.TakesUSO = true
	for _, c := range []struct {
		name  string
		ports []tun.Device
		in    nat.Port
		pkts  [][]byte
		h     offload.VirtioHdr
	}{
		{"plain outbound", []tun.Device{sinkDevice{tuntest.NewChannel("o")}, sinkDevice{tuntest.NewChannel("a")}}, 1, [][]byte{udp, udp, udp}, offload.VirtioHdr{}},
		{"tso to offload", []tun.Device{sinkVirtio{tuntest.NewVirtioChannel("o")}, sinkVirtio{tuntest.NewVirtioChannel("a")}}, 1, [][]byte{tso}, th},
		{"tso to plain", []tun.Device{sinkDevice{tuntest.NewChannel("o")}, sinkVirtio{tuntest.NewVirtioChannel("a")}}, 1, [][]byte{tso}, th},
		{"coalesced inbound", []tun.Device{sinkDevice{tuntest.NewChannel("o")}, sinkVirtio{uso}}, nat.Outside, [][]byte{back, back, back, back}, offload.VirtioHdr{}},
	} {
		for _, tapped := range []bool{false, true} {
			e := newEngine(t, "full-cone")
			reply := make([]byte, 1500)
			e.ProcessVirtio(1, append([]byte(nil), syn...), &sh, reply, t0())
			e.Process(1, append([]byte(nil), udp...), reply, t0())
			r := &Router{Engine: e, Ports: c.ports}
			var seen int
			if tapped {
				r.Tap = func(nat.Port, Direction, []byte, offload.VirtioHdr) { seen++ }
			}
			p := r.newPumper(16, c.ports, nil)
			load := func() {
				for i, pkt := range c.pkts {
					if p.vhdr[c.in] {
						c.h.Encode(p.bufs[i][Headroom-offload.VirtioHdrLen:])
					}
					p.sizes[i] = copy(p.bufs[i][Headroom:], pkt)
				}
			}
			allocs := testing.AllocsPerRun(50, func() {
				load()
				p.batch(c.in, len(c.pkts), t0())
			})
			if allocs != 0 || (tapped && seen == 0) || r.WriteErrors() != 0 {
				t.Errorf("%s (tap %v): %v allocs per batch, %d packets tapped, %d write errors", c.name, tapped, allocs, seen, r.WriteErrors())
			}
			if got := e.Count(nat.Forward); got < uint64(len(c.pkts)) {
				t.Errorf("%s: %d forwarded", c.name, got)
			}
		}
	}
}

// t0 is the time the tests translate at.
func t0() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
