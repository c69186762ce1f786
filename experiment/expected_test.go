package experiment

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/gonat/gonat/table"
)

// A packet-level simulation of two peers behind two NATs, written apart
// from Expected: concrete ports, each NAT's mappings and the remotes each
// mapping has sent to, checks repeated in rounds so that a packet dropped
// before the receiver's own NAT opened is sent again.

type simNAT struct {
	ext      netip.Addr
	mapping  table.Behavior
	filter   table.Behavior
	next     uint16
	byKey    map[netip.AddrPort]uint16 // mapping key -> external port
	sentFrom map[uint16][]netip.AddrPort
}

func newSimNAT(ext string, t NATType, firstPort uint16) *simNAT {
	return &simNAT{ext: netip.MustParseAddr(ext), mapping: t.Mapping, filter: t.Filter, next: firstPort,
		byKey: map[netip.AddrPort]uint16{}, sentFrom: map[uint16][]netip.AddrPort{}}
}

// out is the source a packet to dst leaves with.
func (n *simNAT) out(dst netip.AddrPort) netip.AddrPort {
	key := dst
	switch n.mapping {
	case table.EndpointIndependent:
		key = netip.AddrPort{}
	case table.AddressDependent:
		key = netip.AddrPortFrom(dst.Addr(), 0)
	}
	port, ok := n.byKey[key]
	if !ok {
		port = n.next
		n.next += 7
		n.byKey[key] = port
	}
	n.sentFrom[port] = append(n.sentFrom[port], dst)
	return netip.AddrPortFrom(n.ext, port)
}

// in reports whether a packet from src to external port passes.
func (n *simNAT) in(port uint16, src netip.AddrPort) bool {
	sent, ok := n.sentFrom[port]
	if !ok {
		return false
	}
	for _, d := range sent {
		switch n.filter {
		case table.EndpointIndependent:
			return true
		case table.AddressDependent:
			if d.Addr() == src.Addr() {
				return true
			}
		default:
			if d == src {
				return true
			}
		}
	}
	return false
}

type simPacket struct {
	kind     string // check, response, hello, hello-ack
	from, to int    // agent index
	dst      netip.AddrPort
	check    netip.AddrPort // response: where the check it answers was sent
}

// simMaxPrflx bounds the peer-reflexive candidates an agent checks, as a
// peer does: behind an APDM NAT each triggered check comes back from yet
// another new mapping.
const simMaxPrflx = 16

type simAgent struct {
	nat        *simNAT
	targets    []netip.AddrPort // where checks go
	connected  bool
	remote     netip.AddrPort
	gotHello   bool
	helloAcked bool
}

func (a *simAgent) isTarget(x netip.AddrPort) bool {
	for _, t := range a.targets {
		if t == x {
			return true
		}
	}
	return false
}

// simulate runs two agents behind NATs of types ta and tb and reports
// whether both connected and exchanged a message. Strict agents accept a
// response only from where their check went, learn peer-reflexive
// candidates from checks and check them back; permissive ones take any
// packet from the peer as the connection.
func simulate(ta, tb NATType, permissive bool) bool {
	server := netip.MustParseAddrPort("203.0.113.10:7000")
	agents := [2]*simAgent{
		{nat: newSimNAT("198.51.100.1", ta, 20000)},
		{nat: newSimNAT("198.51.100.2", tb, 30000)},
	}
	srflx := [2]netip.AddrPort{agents[0].nat.out(server), agents[1].nat.out(server)}
	agents[0].targets = []netip.AddrPort{srflx[1]}
	agents[1].targets = []netip.AddrPort{srflx[0]}

	var queue []simPacket
	send := func(kind string, from int, dst netip.AddrPort) {
		queue = append(queue, simPacket{kind: kind, from: from, to: 1 - from, dst: dst})
	}
	respond := func(from int, dst, check netip.AddrPort) {
		queue = append(queue, simPacket{kind: "response", from: from, to: 1 - from, dst: dst, check: check})
	}
	deliver := func(p simPacket) {
		src := agents[p.from].nat.out(p.dst)
		rx := agents[p.to]
		if p.dst.Addr() != rx.nat.ext || !rx.nat.in(p.dst.Port(), src) {
			return
		}
		if permissive && !rx.connected {
			rx.connected, rx.remote = true, src
		}
		switch p.kind {
		case "check":
			respond(p.to, src, p.dst)
			if !permissive && !rx.isTarget(src) && len(rx.targets) < 1+simMaxPrflx {
				rx.targets = append(rx.targets, src) // peer-reflexive
				send("check", p.to, src)             // triggered check
			}
		case "response":
			if !permissive && !rx.connected && src == p.check {
				rx.connected, rx.remote = true, src
			}
		case "hello":
			if rx.connected {
				rx.gotHello = true
				send("hello-ack", p.to, src)
			}
		case "hello-ack":
			if rx.connected {
				rx.helloAcked = true
			}
		}
	}
	for range 12 {
		for i, a := range agents {
			if !a.connected || !permissive {
				for _, t := range a.targets {
					send("check", i, t)
				}
			}
			if a.connected && !a.helloAcked {
				send("hello", i, a.remote)
			}
		}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			deliver(p)
		}
	}
	return agents[0].gotHello && agents[0].helloAcked && agents[1].gotHello && agents[1].helloAcked
}

func TestExpectedMatchesSimulation(t *testing.T) {
	types := AllCombinations()
	for _, permissive := range []bool{false, true} {
		for i, a := range types {
			for _, b := range types[i:] {
				t.Run(fmt.Sprintf("%s x %s permissive=%v", a.Name, b.Name, permissive), func(t *testing.T) {
					sim := simulate(a, b, permissive)
					if sim != simulate(b, a, permissive) {
						t.Errorf("simulation not symmetric")
					}
					if got := Expected(a, b, permissive); got != sim {
						t.Errorf("Expected = %v, simulation %v", got, sim)
					}
				})
			}
		}
	}
}
