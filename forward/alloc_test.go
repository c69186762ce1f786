package forward

import (
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
	"github.com/gonat/gonat/tun/tuntest"
)

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
			p := r.newPumper(16, c.ports)
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
