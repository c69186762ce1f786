package tuntest

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
)

func TestHasVirtioHdr(t *testing.T) {
	c := NewChannel("c")
	v := NewVirtioChannel("v")
	if !tun.HasVirtioHdr(v) || tun.HasVirtioHdr(c) || v.USO() {
		t.Fatal("HasVirtioHdr / USO")
	}
}

// Packets queued on In are read in one batch, each past the offset with
// its virtio-net header (on a VirtioChannel) just in front; written back,
// one arrives on Out as it was sent. After Close, Read says
// tun.ErrClosed.
func TestChannelRoundTrip(t *testing.T) {
	pkt := UDP(netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("198.51.100.1:3478"), []byte("hello"))
	h := offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, CsumStart: 20, CsumOffset: 6}
	plain, virtio := NewChannel("p"), NewVirtioChannel("v")
	for _, c := range []struct {
		name    string
		dev     tun.Device
		in, out chan []byte
		sent    []byte
		hdr     int
	}{
		{"plain", plain, plain.In, plain.Out, pkt, 0},
		{"virtio", virtio, virtio.In, virtio.Out, WithVirtioHdr(h, pkt), offload.VirtioHdrLen},
	} {
		t.Run(c.name, func(t *testing.T) {
			const off = 16
			bufs := [][]byte{make([]byte, off+1500), make([]byte, off+1500), make([]byte, off+1500)}
			sizes := make([]int, len(bufs))
			c.in <- c.sent
			c.in <- c.sent
			n, err := c.dev.Read(bufs, sizes, off)
			if err != nil || n != 2 {
				t.Fatalf("Read: %d packets, %v; want the 2 queued", n, err)
			}
			if got := bufs[1][off-c.hdr : off+sizes[1]]; !bytes.Equal(got, c.sent) {
				t.Fatalf("read %x, want %x", got, c.sent)
			}
			if _, err := c.dev.Write([][]byte{bufs[1][:off+sizes[1]]}, off); err != nil {
				t.Fatal(err)
			}
			if got := <-c.out; !bytes.Equal(got, c.sent) {
				t.Fatalf("wrote %x, want %x", got, c.sent)
			}
			c.dev.Close()
			if _, err := c.dev.Read(bufs, sizes, off); !errors.Is(err, tun.ErrClosed) {
				t.Errorf("Read after Close: %v, want tun.ErrClosed", err)
			}
		})
	}
}

// The builders' packets decode with the ports and protocol asked for.
func TestBuilders(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("198.51.100.1:3478")
	for _, c := range []struct {
		name  string
		pkt   []byte
		proto uint8
	}{
		{"udp", UDP(src, dst, []byte("x")), header.ProtoUDP},
		{"tcp", TCP(src, dst, header.TCPSyn, nil), header.ProtoTCP},
	} {
		var p header.Parsed
		p.Decode(c.pkt)
		if p.Status != header.OK || p.IPProto != c.proto || p.Src != src || p.Dst != dst {
			t.Errorf("%s: decodes as %v proto %d %s -> %s", c.name, p.Status, p.IPProto, p.Src, p.Dst)
		}
	}
}
