package observe

import (
	"testing"

	"github.com/gonat/gonat/tun"
)

// A Tap must not hide what its device is: with the offload backend the
// router reads a virtio-net header in front of every packet only if it
// can see the device has one. A Tap that hid it made --pcap-* and
// --metrics turn offload devices into plain ones (partial checksums
// then took the plain checksum update).
func TestTapKeepsVirtioHdr(t *testing.T) {
	v := tun.NewVirtioChannel("v0")
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
	p := tun.NewChannel("p0")
	defer p.Close()
	if tun.HasVirtioHdr(&Tap{Device: p}) {
		t.Error("Tap over a plain device: HasVirtioHdr true")
	}
}

// A Tap can be busy-polled exactly when its device can.
func TestTapPoller(t *testing.T) {
	p := tun.NewChannel("p0")
	defer p.Close()
	tap := &Tap{Device: p}
	if tun.CanPoll(tap) {
		t.Error("Tap over a channel device: CanPoll true")
	}
	if _, err := tap.TryRead(make([][]byte, 1), make([]int, 1), 0); err == nil {
		t.Error("TryRead through a Tap over a device that is no Poller: no error")
	}
}
