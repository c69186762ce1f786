package observe

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/pcapgo"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

// A super-packet written to a device counts as the packets and bytes
// the wire carries once the kernel has cut it; what is read from a
// device is not counted.
func TestTapCountsSegments(t *testing.T) {
	var w Traffic
	tap := &Tap{Written: &w}
	src, dst := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.1:5201")
	super := tuntest.TCP(src, dst, header.TCPAck, make([]byte, 3*1000))
	plain := tuntest.TCP(src, dst, header.TCPAck, make([]byte, 100))
	tap.Packet(forward.ToDevice, super, offload.VirtioHdr{GSOType: offload.GSOTCPv4, GSOSize: 1000})
	tap.Packet(forward.ToDevice, plain, offload.VirtioHdr{})
	tap.Packet(forward.FromDevice, plain, offload.VirtioHdr{})
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

// Sides hands the outside port's packets to the outside Tap and every
// inside port's to the inside one, both ways into the capture.
func TestSides(t *testing.T) {
	dir := t.TempDir()
	in, err := CreatePcap(filepath.Join(dir, "in.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var inbound, outbound Traffic
	tap := Sides(&Tap{Written: &outbound}, &Tap{Pcap: in, Written: &inbound})
	pkt := tuntest.UDP(netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("198.51.100.1:3478"), nil)
	tap(1, forward.FromDevice, pkt, offload.VirtioHdr{})
	tap(2, forward.ToDevice, pkt, offload.VirtioHdr{})
	tap(nat.Outside, forward.ToDevice, pkt, offload.VirtioHdr{})
	tap(nat.Outside, forward.ToDevice, pkt, offload.VirtioHdr{})
	count := func(tr *Traffic) (n uint64) {
		tr.Each(func(_ uint8, packets, _ uint64) { n += packets })
		return n
	}
	if got := count(&inbound); got != 1 {
		t.Errorf("inbound: %d packets, want 1 (the one written to port 2)", got)
	}
	if got := count(&outbound); got != 2 {
		t.Errorf("outbound: %d packets, want 2", got)
	}
	in.Close()
	f, err := os.Open(filepath.Join(dir, "in.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			break
		}
		records++
	}
	if records != 2 {
		t.Errorf("inside capture: %d records, want 2 (read from port 1, written to port 2)", records)
	}
}
