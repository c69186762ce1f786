package forward

import (
	"context"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/tuntest"
)

// A down link loses what comes from it and what goes to it, counted;
// the mapping made before stays, and traffic flows again once it is up.
func TestLinkDownDropsAndCounts(t *testing.T) {
	e := newEngine(t, "port-restricted-cone")
	outside, a, b := tuntest.NewChannel("out"), tuntest.NewChannel("a"), tuntest.NewChannel("b")
	r := &Router{Engine: e, Ports: []tun.Device{outside, a, b}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	expect := func(ch chan []byte, what string) header.Parsed {
		t.Helper()
		var p header.Parsed
		select {
		case pkt := <-ch:
			p.Decode(pkt)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing came", what)
		}
		return p
	}
	none := func(ch chan []byte, what string) {
		t.Helper()
		select {
		case <-ch:
			t.Fatalf("%s: a packet came through a down link", what)
		case <-time.After(200 * time.Millisecond):
		}
	}

	a.In <- udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "req")
	if p := expect(outside.Out, "before"); p.Src != ap(ext, 5000) {
		t.Fatalf("left as %s", p.Src)
	}
	if changed, err := r.SetLinkDown(1, true); err != nil || !changed {
		t.Fatalf("down: changed %v, %v", changed, err)
	}
	if changed, _ := r.SetLinkDown(1, true); changed {
		t.Fatal("taking a down link down again reported a change")
	}
	a.In <- udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "lost out")
	none(outside.Out, "from A")
	outside.In <- udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "lost in")
	none(a.Out, "to A")
	if n := r.LinkDownDrops(); n != 2 {
		t.Fatalf("LinkDownDrops %d, want 2", n)
	}
	if n := e.Count(nat.Forward); n != 2 {
		t.Fatalf("engine forwarded %d, want 2 (the one before, and the inbound one translated for the down link)", n)
	}
	// B's link is up: B is unaffected.
	b.In <- udpPkt(ap(hostB, 6000), ap(srv1, 3478), 64, "b")
	expect(outside.Out, "from B")
	if got := e.LiveMappings(time.Now())[table.UDP]; got != 2 {
		t.Fatalf("%d live UDP mappings, want 2 (A's survives)", got)
	}
	r.SetLinkDown(1, false)
	if r.LinkDown(1) {
		t.Fatal("still down")
	}
	a.In <- udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "back")
	if p := expect(outside.Out, "after"); p.Src != ap(ext, 5000) {
		t.Fatalf("left as %s after the link came back", p.Src)
	}
	outside.In <- udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "resp")
	expect(a.Out, "reply after")
	if _, err := r.SetLinkDown(3, true); err == nil {
		t.Fatal("port 3 of 3 ports accepted")
	}
}
