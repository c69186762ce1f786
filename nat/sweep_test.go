package nat

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// Every external port, from outside, for each filtering behaviour (RFC
// 4787 §5, RFC 5382 §4): UDP datagrams and TCP SYNs to all 65,535 ports
// of the external address, from the remote the inside hosts talk to, from
// another port of its address, and from another address. Exactly what the
// behaviour permits reaches an inside host, and only at a mapping's port;
// every other packet is dropped with the reason that fits; the verdict
// counters add up to the packets sent; no mapping is created or lost.
func TestInboundSweepPerFiltering(t *testing.T) {
	remote := ap(srv1, 3478)
	sources := []struct {
		name string
		src  netip.AddrPort
		// permitted by filtering behaviour (indexed by table.Behavior)
		permitted [3]bool
	}{
		{"the remote", remote, [3]bool{true, true, true}},
		{"another port of its address", ap(srv1, 4000), [3]bool{true, true, false}},
		{"another address", ap(srv2, 3478), [3]bool{true, false, false}},
	}
	for _, f := range []table.Behavior{table.EndpointIndependent, table.AddressDependent, table.AddressAndPortDependent} {
		t.Run("filtering="+f.String(), func(t *testing.T) {
			e := newEngine(t, "full-cone", func(c *table.Config) { c.Filtering = f })
			reply := make([]byte, 1500)
			// Two UDP mappings and an established TCP one, ports preserved.
			udpMapped := map[uint16]netip.AddrPort{5000: ap(hostA, 5000), 6000: ap(hostB, 6000)}
			for _, in := range udpMapped {
				if r := e.Process(portOf(in), udpPkt(in, remote, 64, "out"), reply, t0); r.Verdict != Forward {
					t.Fatalf("outbound from %v: %v", in, r.Verdict)
				}
			}
			tcpIn, tcpRemote := ap(hostA, 5001), ap(srv1, 80)
			for _, step := range []struct {
				in  Port
				pkt []byte
			}{
				{1, tcpPkt(tcpIn, tcpRemote, header.TCPSyn)},
				{Outside, tcpPkt(tcpRemote, ap(ext, 5001), header.TCPSyn|header.TCPAck)},
				{1, tcpPkt(tcpIn, tcpRemote, header.TCPAck)},
			} {
				if r := e.Process(step.in, step.pkt, reply, t0); r.Verdict != Forward {
					t.Fatalf("TCP handshake: %v", r.Verdict)
				}
			}
			tcpMapped := map[uint16]netip.AddrPort{5001: tcpIn}
			mappings := len(tableState(e))
			before := counts(e)

			var sent, forwarded, noMapping, filtered, unsolicited uint64
			for _, s := range sources {
				// The TCP SYN comes from the TCP remote's port for "the remote".
				tcpSrc := s.src
				if s.src == remote {
					tcpSrc = tcpRemote
				} else if s.src.Addr() == srv1 {
					tcpSrc = ap(srv1, 81)
				}
				for p := 1; p <= 65535; p++ {
					dst := ap(ext, uint16(p))
					for _, proto := range []uint8{header.ProtoUDP, header.ProtoTCP} {
						var pkt []byte
						mapped := udpMapped
						if proto == header.ProtoUDP {
							pkt = udpPkt(s.src, dst, 64, "sweep")
						} else {
							pkt = tcpPkt(tcpSrc, dst, header.TCPSyn)
							mapped = tcpMapped
						}
						sent++
						r := e.Process(Outside, pkt, reply, t0)
						in, isMapped := mapped[uint16(p)]
						want := Forward
						switch {
						case !isMapped && proto == header.ProtoTCP:
							want = DropUnsolicitedSYN
						case !isMapped:
							want = DropNoMapping
						case !s.permitted[f]:
							want = DropFiltered
						}
						if r.Verdict != want {
							t.Fatalf("%s %s -> %v: %v, want %v", table.Protocol(proto), s.name, dst, r.Verdict, want)
						}
						switch want {
						case Forward:
							forwarded++
							var q header.Parsed
							q.Decode(pkt)
							if q.Dst != in || r.Out != portOf(in) {
								t.Fatalf("%s %s -> %v delivered to %v by port %d, want %v", table.Protocol(proto), s.name, dst, q.Dst, r.Out, in)
							}
							checkSums(t, pkt)
						case DropNoMapping:
							noMapping++
						case DropFiltered:
							filtered++
						case DropUnsolicitedSYN:
							unsolicited++
						}
					}
				}
			}
			after := counts(e)
			got := map[Verdict]uint64{}
			var total uint64
			for _, v := range Verdicts() {
				if d := after[v] - before[v]; d > 0 {
					got[v] = d
					total += d
				}
			}
			want := map[Verdict]uint64{Forward: forwarded, DropNoMapping: noMapping, DropFiltered: filtered, DropUnsolicitedSYN: unsolicited}
			for v := range want {
				if want[v] == 0 {
					delete(want, v)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || total != sent {
				t.Errorf("counters moved by %v (total %d), want %v (%d sent)", got, total, want, sent)
			}
			if n := len(tableState(e)); n != mappings {
				t.Errorf("%d mappings after the sweep, %d before", n, mappings)
			}
		})
	}
}

func counts(e *Engine) [numVerdicts]uint64 {
	var c [numVerdicts]uint64
	for _, v := range Verdicts() {
		c[v] = e.Count(v)
	}
	return c
}

// portOf is the inside port of host A or B in newEngine.
func portOf(in netip.AddrPort) Port {
	if in.Addr() == hostB {
		return 2
	}
	return 1
}
