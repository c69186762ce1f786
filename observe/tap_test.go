package observe

import (
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

// A Tap must not hide what its device is: with the offload backend the
// router reads a virtio-net header in front of every packet only if it
// can see the device has one. A Tap that hid it made --pcap-* and
// --metrics turn offload devices into plain ones (partial checksums
// then took the plain checksum update).
func TestTapKeepsVirtioHdr(t *testing.T) {
	v := tuntest.NewVirtioChannel("v0")
	v.TakesUSO = true
	defer v.Close()
	tap := &Tap{Device: v}
	if !tun.HasVirtioHdr(tap) {
		t.Error("Tap over a virtio device: HasVirtioHdr false")
	}
	// USO stays off behind a Tap: coalesced datagrams would reach the
	// capture and the counters as one packet.
	if vd, ok := tun.Device(tap).(tun.VirtioDevice); !ok || vd.USO() {
		t.Error("Tap over a USO device: USO on")
	}
	p := tuntest.NewChannel("p0")
	defer p.Close()
	if tun.HasVirtioHdr(&Tap{Device: p}) {
		t.Error("Tap over a plain device: HasVirtioHdr true")
	}
}

// A Tap can be busy-polled exactly when its device can.
func TestTapPoller(t *testing.T) {
	p := tuntest.NewChannel("p0")
	defer p.Close()
	tap := &Tap{Device: p}
	if tun.CanPoll(tap) {
		t.Error("Tap over a channel device: CanPoll true")
	}
	if _, err := tap.TryRead(make([][]byte, 1), make([]int, 1), 0); err == nil {
		t.Error("TryRead through a Tap over a device that is no Poller: no error")
	}
}

// A super-packet written through a Tap counts as the packets and bytes
// the wire carries once the kernel has cut it.
func TestTapCountsSegments(t *testing.T) {
	v := tuntest.NewVirtioChannel("v0")
	defer v.Close()
	var w Traffic
	tap := &Tap{Device: v, Written: &w}
	const off = 16
	src, dst := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.1:5201")
	buf := append(make([]byte, off), tuntest.TCP(src, dst, header.TCPAck, make([]byte, 3*1000))...)
	h := offload.VirtioHdr{GSOType: offload.GSOTCPv4, GSOSize: 1000}
	h.Encode(buf[off-offload.VirtioHdrLen : off])
	plain := append(make([]byte, off), tuntest.TCP(src, dst, header.TCPAck, make([]byte, 100))...)
	if _, err := tap.Write([][]byte{buf, plain}, off); err != nil {
		t.Fatal(err)
	}
	var pk, by uint64
	w.Each(func(proto uint8, packets, bytes uint64) {
		if proto == 6 {
			pk, by = packets, bytes
		}
	})
	if want := uint64(3 + 1); pk != want {
		t.Errorf("packets %d, want %d (3 segments + 1 plain)", pk, want)
	}
	if want := uint64(3*(40+1000) + 140); by != want {
		t.Errorf("bytes %d, want %d", by, want)
	}
}

// A Tap over a device with several queues gives every queue a Tap of its
// own that writes to the same counters, so no queue goes unread behind
// it and none goes uncounted.
func TestTapQueues(t *testing.T) {
	q0, q1 := tuntest.NewChannel("q"), tuntest.NewChannel("q")
	defer q0.Close()
	defer q1.Close()
	var w Traffic
	tap := &Tap{Device: tuntest.NewQueueSet(q0, q1), Written: &w}
	qs := tun.QueuesOf(tap)
	if len(qs) != 2 || qs[0] != tun.Device(tap) {
		t.Fatalf("queues %v, want the tap and one more", qs)
	}
	pkt := tuntest.UDP(netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("198.51.100.1:3478"), nil)
	for _, q := range qs {
		if _, err := q.Write([][]byte{pkt}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(q1.Out); got != 1 {
		t.Errorf("queue 1's device got %d packets, want 1", got)
	}
	w.Each(func(proto uint8, packets, bytes uint64) {
		if proto != 17 || packets != 2 {
			t.Errorf("counted %d packets of protocol %d, want 2 of 17", packets, proto)
		}
	})
	if one := tun.QueuesOf(&Tap{Device: q0}); len(one) != 1 {
		t.Errorf("Tap over a one-queue device has %d queues", len(one))
	}
}
