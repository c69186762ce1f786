package forward

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun"
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
