package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
)

// runPackets is a gonat run NAT's verdict counters, from gonat lab status.
func runPackets(t *testing.T, name string) map[string]uint64 {
	t.Helper()
	out, err := exec.Command(gonatBin, "lab", "status", "--lab", name, "--json").CombinedOutput()
	var st struct {
		NATs []struct{ Packets map[string]uint64 } `json:"nats"`
	}
	if err != nil || json.Unmarshal(out, &st) != nil || len(st.NATs) != 1 {
		t.Fatalf("lab status: %v\n%s", err, out)
	}
	return st.NATs[0].Packets
}

// countersMoved is after minus before, reasons that did not move left out.
func countersMoved(before, after map[string]uint64) map[string]uint64 {
	d := map[string]uint64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

// Ports of the external address, from outside, per filtering behaviour,
// through a real gonat: UDP from the remote the inside host talks to, from
// another port of its address and from another address, and TCP SYNs
// from all three, to the low ports and to 2,048 ports around the mappings
// (nat.TestInboundSweepPerFiltering sweeps all 65,535 against the engine).
// Each mapping's socket receives exactly one datagram from each source the
// behaviour permits and nothing else; the counters equal the packets sent.
func TestFilteringSweep(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside another such test (see the package comment)
	const mappings, first = 8, 40000
	var ports []int
	for p := 1; p < 1024; p++ {
		ports = append(ports, p)
	}
	for p := first - 1024; p < first+1024; p++ {
		ports = append(ports, p)
	}
	for _, c := range []struct {
		filtering string
		permitted [3]bool // the remote, another port, another address
	}{
		{"endpoint-independent", [3]bool{true, true, true}},
		{"address-dependent", [3]bool{true, true, false}},
		{"address-and-port-dependent", [3]bool{true, false, false}},
	} {
		t.Run("filtering="+c.filtering, func(t *testing.T) {
			tp := newTopo(t)
			tp.startNAT("--preset", "full-cone", "--filtering", c.filtering)
			remote := udp(t, tp.WAN, srv1.String()+":3478")
			sources := []*net.UDPConn{remote, udp(t, tp.WAN, srv1.String()+":4000"), udp(t, tp.WAN, srv2.String()+":3478")}
			// The mappings: A's sockets on ports first.., ports preserved.
			var socks []*net.UDPConn
			for i := range mappings {
				a := udp(t, tp.A, ":"+strconv.Itoa(first+i))
				if _, err := a.WriteToUDPAddrPort([]byte("open"), netip.AddrPortFrom(srv1, 3478)); err != nil {
					t.Fatal(err)
				}
				_, from, err := recvFrom(remote, 2*time.Second)
				if err != nil || from != netip.AddrPortFrom(ext1, uint16(first+i)) {
					t.Fatalf("mapping %d: remote saw %v (%v), want %s:%d", i, from, err, ext1, first+i)
				}
				socks = append(socks, a)
			}
			before := runPackets(t, tp.Name)

			raw := rawSender(t, tp.WAN)
			syn := make([]byte, 64)
			sent := 0
			for si, s := range sources {
				src := netip.MustParseAddrPort(s.LocalAddr().String())
				for i, p := range ports {
					dst := netip.AddrPortFrom(ext1, uint16(p))
					if _, err := s.WriteToUDPAddrPort([]byte(fmt.Sprintf("%d %d", si, p)), dst); err != nil {
						t.Fatal(err)
					}
					n := header.BuildTCP(syn, header.IPv4Fields{Src: src.Addr(), Dst: ext1, Protocol: header.ProtoTCP, TTL: 64, ID: uint16(i + 1)},
						header.TCPFields{SrcPort: src.Port(), DstPort: uint16(p), Seq: 1, Flags: header.TCPSyn, Window: 1024}, nil)
					raw(syn[:n])
					sent += 2
					if i%32 == 31 {
						// A bounded rate: the TUN device's queue holds 500.
						time.Sleep(time.Millisecond)
					}
				}
			}

			// Each mapping's socket: exactly the permitted sources, once.
			wantForward := 0
			for i, a := range socks {
				var got []string
				for {
					msg, from, err := recvFrom(a, 500*time.Millisecond)
					if err != nil {
						break
					}
					got = append(got, from.String()+" "+msg)
				}
				var want []string
				for si, s := range sources {
					if c.permitted[si] {
						want = append(want, fmt.Sprintf("%s %d %d", s.LocalAddr(), si, first+i))
					}
				}
				wantForward += len(want)
				if strings.Join(got, ", ") != strings.Join(want, ", ") {
					t.Errorf("mapping %s:%d got [%s], want [%s]", ext1, first+i, strings.Join(got, ", "), strings.Join(want, ", "))
				}
			}
			moved := countersMoved(before, runPackets(t, tp.Name))
			delete(moved, "not-ipv4") // the inside kernel's IPv6 chatter on the TUN devices
			delete(moved, "ipv6-none")
			perSource := len(ports)
			want := map[string]uint64{
				"forward":         uint64(wantForward),
				"no-mapping":      uint64(len(sources) * (perSource - mappings)),
				"unsolicited-syn": uint64(len(sources) * perSource),
			}
			if f := len(sources)*mappings - wantForward; f > 0 {
				want["filtered"] = uint64(f)
			}
			var total uint64
			for _, v := range moved {
				total += v
			}
			if fmt.Sprint(moved) != fmt.Sprint(want) || total != uint64(sent) {
				t.Errorf("counters moved by %v (total %d), want %v (%d sent)", moved, total, want, sent)
			}
		})
	}
}
