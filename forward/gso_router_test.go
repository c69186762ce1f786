package forward

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

func recv(t *testing.T, c chan []byte, what string) []byte {
	t.Helper()
	select {
	case p := <-c:
		return p
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing arrived", what)
	}
	return nil
}

func runRouter(t *testing.T, ports ...tun.Device) {
	t.Helper()
	startRouter(t, &Router{Engine: newEngine(t, "port-restricted-cone"), Ports: ports})
}

// startRouter runs r until t ends, and fails t if it had write errors.
func startRouter(t *testing.T, r *Router) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if n := r.WriteErrors(); n != 0 {
			t.Errorf("%d write errors", n)
		}
	})
}

// Between devices with offloads a super-packet crosses whole, with its
// virtio-net header; to a device without, it leaves in segments with
// complete checksums; a plain packet gets a zero header on its way to a
// device with offloads.
func TestRouterVirtio(t *testing.T) {
	payload := make([]byte, 30000)
	fill(payload, 9)

	// The same through devices seen as queue sets (tun.MultiQueue, as a
	// multi-queue device is): a reader must judge the header by the
	// queues it uses, not by the set, which need not repeat their
	// methods.
	for _, wrap := range []struct {
		name string
		fn   func(tun.Device) tun.Device
	}{{"", func(d tun.Device) tun.Device { return d }}, {" as queue sets", func(d tun.Device) tun.Device { return tuntest.NewQueueSet(d) }}} {
		t.Run("offload to offload"+wrap.name, func(t *testing.T) {
			outside, a := tuntest.NewVirtioChannel("out"), tuntest.NewVirtioChannel("a")
			runRouter(t, wrap.fn(outside), wrap.fn(a), wrap.fn(tuntest.NewVirtioChannel("b")))
			offloadToOffload(t, outside, a, payload)
		})
	}

	// A link impaired for IPv6 only cuts no IPv4 super-packet into
	// segments for its decisions: they cross whole, as unimpaired.
	t.Run("offload to offload, impaired for the other family", func(t *testing.T) {
		outside, a := tuntest.NewVirtioChannel("out"), tuntest.NewVirtioChannel("a")
		startRouter(t, &Router{Engine: newEngine(t, "port-restricted-cone"), Ports: []tun.Device{outside, a, tuntest.NewVirtioChannel("b")},
			Impair: []PortImpair{{In: impair.MustParse("family=ipv6 loss=100%"), Out: impair.MustParse("family=ipv6 delay=10ms")}}})
		offloadToOffload(t, outside, a, payload)
	})

	t.Run("offload to plain", func(t *testing.T) {
		outside, a := tuntest.NewChannel("out"), tuntest.NewVirtioChannel("a")
		runRouter(t, outside, a, tuntest.NewVirtioChannel("b"))
		syn, sh := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), nil, header.TCPSyn)
		a.In <- tuntest.WithVirtioHdr(sh, syn)
		checkSums(t, recv(t, outside.Out, "SYN")) // partial checksum finished
		b, h := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), payload, header.TCPAck)
		a.In <- tuntest.WithVirtioHdr(h, b)
		var got []byte
		for i := range (len(payload) + mss - 1) / mss {
			s := recv(t, outside.Out, "segment")
			checkSums(t, s)
			if header.IPv4(s).Src() != ext || len(s) > 1500 {
				t.Fatalf("segment %d: from %s, %d bytes", i, header.IPv4(s).Src(), len(s))
			}
			got = append(got, s[40:]...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatal("the segments do not add up to the payload")
		}
	})

	t.Run("plain to offload", func(t *testing.T) {
		outside, a := tuntest.NewVirtioChannel("out"), tuntest.NewChannel("a")
		runRouter(t, outside, a, tuntest.NewChannel("b"))
		a.In <- udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "plain")
		got := recv(t, outside.Out, "datagram")
		var gh offload.VirtioHdr
		gh.Decode(got)
		if gh != (offload.VirtioHdr{}) {
			t.Fatalf("header %+v, want zero", gh)
		}
		checkSums(t, got[offload.VirtioHdrLen:])
	})

	t.Run("time exceeded back to offload", func(t *testing.T) {
		outside, a := tuntest.NewVirtioChannel("out"), tuntest.NewVirtioChannel("a")
		runRouter(t, outside, a, tuntest.NewVirtioChannel("b"))
		b, h := tuntest.UDPPartial(ap(hostA, 5000), ap(srv1, 3478), 1, []byte("ttl"))
		a.In <- tuntest.WithVirtioHdr(h, b)
		got := recv(t, a.Out, "time exceeded")
		var gh offload.VirtioHdr
		gh.Decode(got)
		checkSums(t, got[offload.VirtioHdrLen:])
		if gh != (offload.VirtioHdr{}) || header.ICMPv4(got[offload.VirtioHdrLen+20:]).Type() != header.ICMPTimeExceeded {
			t.Fatalf("header %+v, type %d", gh, got[offload.VirtioHdrLen+20])
		}
	})
}

// Busy-poll readers need every port to be a tun.Poller: with one that is not,
// Run says which at once instead of starting.
func TestRouterBusyPollNeedsPoller(t *testing.T) {
	a, b := tuntest.NewChannel("out0"), tuntest.NewChannel("in0")
	defer a.Close()
	defer b.Close()
	r := &Router{Engine: newEngine(t, "port-restricted-cone"), Ports: []tun.Device{a, b}, Mode: ReadMode{Readers: ReadersBusyPoll, Quiet: time.Millisecond}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "out0") || !strings.Contains(err.Error(), "offload") || strings.Contains(err.Error(), "--") {
		t.Fatalf("Run with a channel device and busy-poll readers: %v, want an error naming out0 and the offload backend, and no command-line flag", err)
	}
}

// Per-CPU readers need every port to be a tun.Poller too: Validate says
// so, naming the readers; and it refuses a ReadMode that ReadMode.Validate
// refuses.
func TestRouterPerCPUValidate(t *testing.T) {
	a, b := tuntest.NewChannel("out0"), tuntest.NewChannel("in0")
	defer a.Close()
	defer b.Close()
	e := newEngine(t, "port-restricted-cone")
	r := &Router{Engine: e, Ports: []tun.Device{a, b}, Mode: ReadMode{Readers: ReadersPerCPU}}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "per-CPU") || !strings.Contains(err.Error(), "out0") || strings.Contains(err.Error(), "--") {
		t.Errorf("per-CPU readers with channel devices: %v, want an error naming per-CPU readers and out0, and no command-line flag", err)
	}
	r = &Router{Engine: e, Ports: []tun.Device{a, b}, Mode: ReadMode{Readers: ReadersBusyPoll}}
	if err := r.Validate(); !errors.Is(err, ErrQuiet) {
		t.Errorf("busy-poll readers without a quiet time: %v, want %v", err, ErrQuiet)
	}
}

// offloadToOffload sends a TCP super-packet from a to outside through a
// running router: it must cross whole, with its header, translated.
func offloadToOffload(t *testing.T, outside, a *tuntest.VirtioChannel, payload []byte) {
	b, h := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), payload, header.TCPAck)
	syn, sh := tuntest.TSO(ap(hostA, 40000), ap(srv1, 5201), nil, header.TCPSyn)
	a.In <- tuntest.WithVirtioHdr(sh, syn)
	recv(t, outside.Out, "SYN")
	a.In <- tuntest.WithVirtioHdr(h, b)
	got := recv(t, outside.Out, "super-packet")
	var gh offload.VirtioHdr
	gh.Decode(got)
	pkt := got[offload.VirtioHdrLen:]
	if gh != h || len(pkt) != len(b) {
		t.Fatalf("header %+v (sent %+v), %d bytes (sent %d)", gh, h, len(pkt), len(b))
	}
	checkSums(t, tuntest.DeviceFinish(pkt, gh))
	if header.IPv4(pkt).Src() != ext || !bytes.Equal(pkt[40:], payload) {
		t.Fatal("not translated, or the payload changed")
	}
}
