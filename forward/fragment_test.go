package forward

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

// newEngineMTU is newEngine (A on port 1, B on port 2) with the outside
// link's MTU mtu.
func newEngineMTU(t *testing.T, mtu int) *nat.Engine {
	t.Helper()
	c, err := table.Preset("port-restricted-cone")
	if err != nil {
		t.Fatal(err)
	}
	c.External = []netip.Addr{ext}
	cfg := nat.Config{Table: c, OutsideMTU: mtu}
	for _, h := range []netip.Addr{hostA, hostB} {
		cfg.Inside = append(cfg.Inside, nat.InsidePort{Hosts: []netip.Prefix{netip.PrefixFrom(h, 24)}, Gateway: gw})
	}
	e, err := nat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// reassemble reads fragments from c until the datagram is whole and
// returns its payload (the UDP header and data), checking each fragment's
// size and header checksum; each starts after hdr bytes of device header.
func reassemble(t *testing.T, c chan []byte, mtu, hdr int) (payload []byte, frags int) {
	t.Helper()
	for {
		f := recv(t, c, "fragment")[hdr:]
		if len(f) > mtu || !header.IPv4(f).ChecksumValid() {
			t.Fatalf("fragment of %d bytes (MTU %d), header checksum valid %v", len(f), mtu, header.IPv4(f).ChecksumValid())
		}
		var p header.Parsed
		p.Decode(f)
		if int(p.FragOffset) != len(payload) {
			t.Fatalf("fragment at %d, want %d", p.FragOffset, len(payload))
		}
		payload = append(payload, header.IPv4(f).Payload()...)
		frags++
		if !p.MoreFrags {
			return payload, frags
		}
	}
}

// A DF-clear datagram larger than the outside link leaves in fragments
// that put it back together, UDP checksum valid; one from a device with
// checksum offload has its checksum finished first.
func TestRouterFragments(t *testing.T) {
	data := make([]byte, 1400)
	fill(data, 3)
	for _, tc := range []struct {
		name    string
		offload bool
	}{{"plain", false}, {"partial checksum", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var outside, a, b tun.Device = tuntest.NewChannel("out"), tuntest.NewChannel("a"), tuntest.NewChannel("b")
			in := tuntest.UDP(ap(hostA, 5000), ap(srv1, 9), data)
			if tc.offload {
				outside, a, b = tuntest.NewVirtioChannel("out"), tuntest.NewVirtioChannel("a"), tuntest.NewVirtioChannel("b")
				pkt, h := tuntest.UDPPartial(ap(hostA, 5000), ap(srv1, 9), 64, data)
				in = tuntest.WithVirtioHdr(h, pkt)
			}
			r := &Router{Engine: newEngineMTU(t, 576), Ports: []tun.Device{outside, a, b}}
			startRouter(t, r)
			chanOf(a).In <- in
			out := chanOf(outside).Out
			pl, n := reassemble(t, out, 576, virtioLen(tc.offload))
			if n != 3 {
				t.Errorf("%d fragments, want 3 (1408 bytes in 552-byte pieces)", n)
			}
			whole := make([]byte, 20+len(pl))
			k := header.BuildIPv4(whole, header.IPv4Fields{Src: ext, Dst: srv1, Protocol: header.ProtoUDP, TTL: 63}, pl)
			checkSums(t, whole[:k])
			if !bytes.Equal(pl[8:], data) {
				t.Error("the fragments do not put the data back together")
			}
			if r.Fragmented() != 1 {
				t.Errorf("Fragmented() = %d, want 1", r.Fragmented())
			}
		})
	}
}

// A TSO super-packet (DF set) whose segments exceed the outside link is
// refused with fragmentation needed quoting its first segment, so the
// sender's TCP lowers its segment size.
func TestRouterTSOTooBig(t *testing.T) {
	outside, a := tuntest.NewVirtioChannel("out"), tuntest.NewVirtioChannel("a")
	startRouter(t, &Router{Engine: newEngineMTU(t, 1280), Ports: []tun.Device{outside, a, tuntest.NewVirtioChannel("b")}})
	payload := make([]byte, 10*mss)
	pkt, h := tuntest.TSO(ap(hostA, 5000), ap(srv1, 80), payload, header.TCPAck)
	a.In <- tuntest.WithVirtioHdr(h, pkt)
	got := recv(t, a.Out, "fragmentation needed")[offload.VirtioHdrLen:]
	var p header.Parsed
	p.Decode(got)
	if p.ICMPType != header.ICMPDestUnreachable || p.ICMPCode != header.ICMPCodeFragNeeded || header.ICMPv4(got[20:]).MTU() != 1280 {
		t.Fatalf("got type %d code %d MTU %d, want 3/4 with 1280", p.ICMPType, p.ICMPCode, header.ICMPv4(got[20:]).MTU())
	}
	if q := header.IPv4(got[28:]); q.TotalLen() != 20+20+mss {
		t.Errorf("quotes a packet of %d bytes, want the first segment's %d", q.TotalLen(), 40+mss)
	}
	checkSums(t, got)
}

func chanOf(d tun.Device) *tuntest.Channel {
	if v, ok := d.(*tuntest.VirtioChannel); ok {
		return &v.Channel
	}
	return d.(*tuntest.Channel)
}

func virtioLen(on bool) int {
	if on {
		return offload.VirtioHdrLen
	}
	return 0
}

// Cutting allocates nothing once a reader's fragment buffers exist: a
// batch of DF-clear datagrams over a smaller link, plain or with a
// partial checksum, runs at 0 allocations.
func TestFragmentNoAllocs(t *testing.T) {
	data := make([]byte, 1400)
	plain := tuntest.UDP(ap(hostA, 5000), ap(srv1, 9), data)
	partial, ph := tuntest.UDPPartial(ap(hostA, 5000), ap(srv1, 9), 64, data)
	for _, c := range []struct {
		name  string
		ports []tun.Device
		pkt   []byte
		h     offload.VirtioHdr
	}{
		{"plain", []tun.Device{sinkDevice{tuntest.NewChannel("o")}, sinkDevice{tuntest.NewChannel("a")}, sinkDevice{tuntest.NewChannel("b")}}, plain, offload.VirtioHdr{}},
		{"partial checksum", []tun.Device{sinkVirtio{tuntest.NewVirtioChannel("o")}, sinkVirtio{tuntest.NewVirtioChannel("a")}, sinkVirtio{tuntest.NewVirtioChannel("b")}}, partial, ph},
	} {
		r := &Router{Engine: newEngineMTU(t, 576), Ports: c.ports}
		p := r.newPumper(16, c.ports, nil)
		load := func() {
			for i := range 4 {
				if p.vhdr[1] {
					c.h.Encode(p.bufs[i][Headroom-offload.VirtioHdrLen:])
				}
				p.sizes[i] = copy(p.bufs[i][Headroom:], c.pkt)
			}
		}
		allocs := testing.AllocsPerRun(50, func() {
			load()
			p.batch(1, 4, t0())
		})
		if allocs != 0 || r.Fragmented() == 0 || r.WriteErrors() != 0 {
			t.Errorf("%s: %v allocs per batch of 4, %d cut, %d write errors", c.name, allocs, r.Fragmented(), r.WriteErrors())
		}
	}
}

// A DF-clear UDP super-packet whose segments exceed the link is cut into
// its datagrams and each of those into fragments: every datagram put
// back together carries its segment of the data with a valid checksum.
func TestRouterUSOFragments(t *testing.T) {
	const segSize, segs = 1000, 3
	data := make([]byte, segs*segSize)
	fill(data, 5)
	buf := make([]byte, 4000)
	n := header.BuildUDP(buf, header.IPv4Fields{Src: hostA, Dst: srv1, TTL: 64, ID: 500},
		header.UDPFields{SrcPort: 5000, DstPort: 9}, data)
	pkt := buf[:n]
	tuntest.MakePartial(pkt)
	h := offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, GSOType: offload.GSOUDPL4, GSOSize: segSize, HdrLen: 28, CsumStart: 20, CsumOffset: 6}
	outside, a := tuntest.NewVirtioChannel("out"), tuntest.NewVirtioChannel("a")
	startRouter(t, &Router{Engine: newEngineMTU(t, 576), Ports: []tun.Device{outside, a, tuntest.NewVirtioChannel("b")}})
	a.In <- tuntest.WithVirtioHdr(h, pkt)
	for i := range segs {
		pl, frags := reassemble(t, outside.Out, 576, offload.VirtioHdrLen)
		if frags != 2 {
			t.Errorf("datagram %d: %d fragments, want 2 (1008 bytes in 552-byte pieces)", i, frags)
		}
		whole := make([]byte, 20+len(pl))
		k := header.BuildIPv4(whole, header.IPv4Fields{Src: ext, Dst: srv1, Protocol: header.ProtoUDP, TTL: 63}, pl)
		checkSums(t, whole[:k])
		if !bytes.Equal(pl[8:], data[i*segSize:(i+1)*segSize]) {
			t.Errorf("datagram %d does not carry segment %d of the data", i, i)
		}
	}
}
