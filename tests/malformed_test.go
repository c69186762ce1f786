package tests

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/table"
)

// malformedCase is one packet of the set, sent into gonat's outside port
// or (outbound) into host A's inside port.
type malformedCase struct {
	name     string
	outbound bool
	b        []byte
	// invalid cases are malformed beyond doubt (a header cut short or
	// whose lengths or checksums are wrong): never forwarded, whatever
	// else may change in the engine.
	invalid bool
	// replies is how many packets the receiving kernel sends back through
	// gonat when it forwards this one: Parameter Problem for an option
	// whose length is wrong.
	replies int
}

// fixIP recomputes b's IPv4 header checksum over the IHL it states, when
// that fits.
func fixIP(b []byte) []byte {
	if len(b) >= 20 {
		ip := header.IPv4(b)
		if hl := ip.HeaderLen(); hl >= 20 && hl <= len(b) {
			ip.SetChecksum(0)
			ip.SetChecksum(ip.ComputeChecksum())
		}
	}
	return b
}

// cut keeps the first n bytes of b and makes the header say so.
func cut(b []byte, n int) []byte {
	b = append([]byte(nil), b[:n]...)
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	return fixIP(b)
}

// edit copies b, lets fn change it, and fixes the IPv4 checksum.
func edit(b []byte, fn func(b []byte)) []byte {
	b = append([]byte(nil), b...)
	fn(b)
	return fixIP(b)
}

// withOptions inserts IPv4 options (padded to 4 bytes) after b's header.
func withOptions(b []byte, opts ...byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	out := append(append(append([]byte(nil), b[:20]...), opts...), b[20:]...)
	out[0] = 0x40 | byte((20+len(opts))/4)
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	return fixIP(out)
}

// fixICMP recomputes the ICMP checksum of b (a 20-byte header).
func fixICMP(b []byte) []byte {
	binary.BigEndian.PutUint16(b[22:], 0)
	binary.BigEndian.PutUint16(b[22:], header.Checksum(b[20:], 0))
	return b
}

// malformedSet builds the cases. sink is A's endpoint with a mapping at
// ext (UDP), quoted is the packet that mapping's host sent (after
// translation, as the server saw it).
func malformedSet(sink, ext netip.AddrPort, quoted []byte) []malformedCase {
	var cs []malformedCase
	add := func(name string, b []byte) { cs = append(cs, malformedCase{name: name, b: b}) }
	addOut := func(name string, b []byte) { cs = append(cs, malformedCase{name: name, outbound: true, b: b}) }
	// invalid marks the last case added as such.
	invalid := func() { cs[len(cs)-1].invalid = true }
	buf := func() []byte { return make([]byte, 1500) }

	b := buf()
	n := header.BuildUDP(b, header.IPv4Fields{Src: srv1, Dst: ext.Addr(), Protocol: header.ProtoUDP, TTL: 64, ID: 7},
		header.UDPFields{SrcPort: 3478, DstPort: ext.Port()}, []byte("malformed-set datagram"))
	udpIn := b[:n]
	add("valid udp", udpIn)
	// A TUN device takes no empty packet: from 1 byte.
	for i := 1; i < 28; i++ {
		add(fmt.Sprintf("udp truncated to %d bytes, header unchanged", i), append([]byte(nil), udpIn[:i]...))
		invalid()
	}
	for ihl := 0; ihl < 16; ihl++ {
		if ihl != 5 {
			add(fmt.Sprintf("ihl %d", ihl), edit(udpIn, func(b []byte) { b[0] = 0x40 | byte(ihl) }))
			if ihl < 5 {
				invalid()
			}
		}
	}
	for _, tl := range []int{0, 19, 20, 27, len(udpIn) - 1, len(udpIn) + 1, 65535} {
		add(fmt.Sprintf("total length %d of %d", tl, len(udpIn)), edit(udpIn, func(b []byte) { binary.BigEndian.PutUint16(b[2:], uint16(tl)) }))
		if tl != len(udpIn)-1 {
			invalid()
		}
	}
	bad := append([]byte(nil), udpIn...)
	bad[10] ^= 0xff
	add("bad header checksum", bad)
	add("version 6", edit(udpIn, func(b []byte) { b[0] = 0x65 }))
	invalid()
	add("version 0", edit(udpIn, func(b []byte) { b[0] = 0x05 }))
	invalid()
	add("trailing bytes after total length", append(append([]byte(nil), udpIn...), 1, 2, 3, 4))

	// Options.
	add("options: 4 NOPs", withOptions(udpIn, 1, 1, 1, 1))
	add("options: EOL", withOptions(udpIn, 0))
	add("options: record route", withOptions(udpIn, 7, 7, 4, 0, 0, 0, 0))
	add("options: loose source route", withOptions(udpIn, 131, 7, 4, 192, 0, 2, 1))
	add("options: timestamp", withOptions(udpIn, 68, 8, 5, 0, 0, 0, 0, 0))
	add("options: length 0", withOptions(udpIn, 7, 0, 4, 0))
	cs[len(cs)-1].replies = 1
	add("options: length past the header", withOptions(udpIn, 7, 40, 4, 0))
	cs[len(cs)-1].replies = 1
	add("options: 40 bytes of NOP", withOptions(udpIn, make40(1)...))

	// Fragments.
	frag := func(off uint16, mf, df bool, payload []byte) []byte {
		b := append(append([]byte(nil), udpIn[:20]...), payload...)
		v := off / 8
		if mf {
			v |= 0x2000
		}
		if df {
			v |= 0x4000
		}
		binary.BigEndian.PutUint16(b[6:], v)
		binary.BigEndian.PutUint16(b[4:], 0x4242)
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		return fixIP(b)
	}
	tr := udpIn[20:]
	add("first fragment, UDP header only", frag(0, true, false, tr[:8]))
	add("first fragment, 7 bytes (odd, MF)", frag(0, true, false, tr[:7]))
	add("first fragment, 4 bytes of UDP header", frag(0, true, false, tr[:4]))
	add("later fragment offset 8, no state", frag(8, false, false, tr[8:]))
	add("fragment offset 8, MF, odd length", frag(8, true, false, tr[8:13]))
	add("fragment at the last offset with MF", frag(8191*8, true, false, tr[:8]))
	add("fragment past 65535 bytes", frag(8190*8, false, false, make([]byte, 100)))
	add("DF and MF", frag(0, true, true, tr[:16]))
	add("1-byte last fragment", frag(16, false, false, tr[16:17]))
	add("overlapping fragment offset 0 again", frag(0, true, false, tr[:16]))

	// UDP header fields.
	udpEdit := func(name string, fn func(u []byte)) {
		add(name, edit(udpIn, func(b []byte) { fn(b[20:]) }))
	}
	// A UDP length under 8 or past the packet is malformed; one shorter
	// than the packet is padding, trimmed by the receiver.
	udpEdit("udp length 0", func(u []byte) { binary.BigEndian.PutUint16(u[4:], 0) })
	invalid()
	udpEdit("udp length 7", func(u []byte) { binary.BigEndian.PutUint16(u[4:], 7) })
	invalid()
	udpEdit("udp length past the packet", func(u []byte) { binary.BigEndian.PutUint16(u[4:], 1000) })
	invalid()
	udpEdit("udp length shorter than the packet", func(u []byte) { binary.BigEndian.PutUint16(u[4:], 10) })
	udpEdit("udp bad checksum", func(u []byte) { u[6] ^= 0x55 })
	udpEdit("udp checksum 0 (none)", func(u []byte) { u[6], u[7] = 0, 0 })
	udpEdit("udp source port 0", func(u []byte) { u[0], u[1] = 0, 0 })
	udpEdit("udp destination port 0", func(u []byte) { u[2], u[3] = 0, 0 })
	b = buf()
	n = header.BuildUDP(b, header.IPv4Fields{Src: srv1, Dst: ext.Addr(), Protocol: header.ProtoUDP, TTL: 64, ID: 7},
		header.UDPFields{SrcPort: 3478, DstPort: ext.Port()}, nil)
	add("udp empty payload", b[:n])

	// TCP, to a port with no TCP mapping.
	b = buf()
	n = header.BuildTCP(b, header.IPv4Fields{Src: srv1, Dst: ext.Addr(), Protocol: header.ProtoTCP, TTL: 64, ID: 8},
		header.TCPFields{SrcPort: 80, DstPort: 7000, Seq: 1, Ack: 1, Flags: header.TCPAck, Window: 1000}, []byte("tcp payload"))
	tcpIn := b[:n]
	for i := 20; i < 40; i += 2 {
		add(fmt.Sprintf("tcp header cut to %d bytes", i-20), cut(tcpIn, i))
		invalid()
	}
	for _, off := range []byte{0, 1, 4, 6, 15} {
		add(fmt.Sprintf("tcp data offset %d", off), edit(tcpIn, func(b []byte) { b[32] = off << 4 }))
		if off < 5 || off == 15 {
			invalid()
		}
	}
	for _, f := range []struct {
		name  string
		flags uint8
	}{{"syn+fin", header.TCPSyn | header.TCPFin}, {"no flags", 0}, {"rst", header.TCPRst}, {"syn", header.TCPSyn}, {"all flags", 0xff}} {
		add("tcp "+f.name, edit(tcpIn, func(b []byte) { b[33] = f.flags }))
	}
	add("tcp source port 0", edit(tcpIn, func(b []byte) { b[20], b[21] = 0, 0 }))
	add("tcp destination port 0", edit(tcpIn, func(b []byte) { b[22], b[23] = 0, 0 }))

	// ICMP.
	b = buf()
	n = header.BuildICMP(b, header.IPv4Fields{Src: srv1, Dst: ext.Addr(), Protocol: header.ProtoICMP, TTL: 64, ID: 9},
		header.ICMPFields{Type: header.ICMPEchoReply, Ident: 4321, Seq: 1}, []byte("echo"))
	echoIn := b[:n]
	for i := 20; i < 28; i++ {
		add(fmt.Sprintf("icmp cut to %d bytes", i-20), cut(echoIn, i))
		invalid()
	}
	add("icmp echo reply, no mapping", echoIn)
	add("icmp bad checksum", edit(echoIn, func(b []byte) { b[22] ^= 1 }))
	invalid()
	add("icmp type 42", fixICMP(edit(echoIn, func(b []byte) { b[20] = 42 })))
	add("icmp redirect", fixICMP(edit(echoIn, func(b []byte) { b[20] = header.ICMPRedirect })))
	add("icmp timestamp", fixICMP(edit(echoIn, func(b []byte) { b[20] = header.ICMPTimestamp })))

	b = buf()
	n = header.BuildICMPError(b, quoted, srv2, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable, 0)
	errIn := b[:n]
	add("icmp error quoting the mapping", errIn)
	lying := func(name string, fn func(q []byte), fixQuote bool) {
		add("icmp error, quote "+name, fixICMP(edit(errIn, func(b []byte) {
			q := b[28:]
			fn(q)
			if fixQuote {
				fixIP(q)
			}
		})))
	}
	lying("source port lies", func(q []byte) { q[20] ^= 0x10 }, true)
	lying("source address lies", func(q []byte) { q[15] ^= 1 }, true)
	lying("protocol says TCP", func(q []byte) { q[9] = header.ProtoTCP }, true)
	lying("protocol says ICMP", func(q []byte) { q[9] = header.ProtoICMP }, true)
	lying("IHL 15", func(q []byte) { q[0] = 0x4f }, true)
	lying("IHL 3", func(q []byte) { q[0] = 0x43 }, true)
	lying("total length 65535", func(q []byte) { binary.BigEndian.PutUint16(q[2:], 65535) }, true)
	lying("checksum wrong", func(q []byte) { q[10] ^= 1 }, false)
	invalid()
	lying("is a later fragment", func(q []byte) { binary.BigEndian.PutUint16(q[6:], 3) }, true)
	lying("destination port 0", func(q []byte) { q[22], q[23] = 0, 0 }, true)
	for _, qn := range []int{0, 8, 19, 20, 24, 27} {
		e := append([]byte(nil), errIn[:28+qn]...)
		binary.BigEndian.PutUint16(e[2:], uint16(len(e)))
		add(fmt.Sprintf("icmp error, quote cut to %d bytes", qn), fixICMP(fixIP(e)))
	}
	add("icmp error, bad icmp checksum", edit(errIn, func(b []byte) { b[22] ^= 1 }))
	invalid()
	// (header.BuildICMPError will not quote an error: built by hand.)
	ee := append(append([]byte(nil), errIn[:28]...), errIn[:36]...)
	binary.BigEndian.PutUint16(ee[2:], uint16(len(ee)))
	add("icmp error quoting an icmp error", fixICMP(fixIP(ee)))
	add("icmp error, outer destination another address", fixICMP(edit(errIn, func(b []byte) { b[19] ^= 2 })))

	// Other protocols, TTLs.
	for _, p := range []uint8{0, 47, 132, 255} {
		add(fmt.Sprintf("protocol %d", p), edit(udpIn, func(b []byte) { b[9] = p }))
	}
	add("ttl 0", edit(udpIn, func(b []byte) { b[8] = 0 }))
	add("ttl 1", edit(udpIn, func(b []byte) { b[8] = 1 }))
	add("to another external address", edit(udpIn, func(b []byte) { b[19] ^= 8 }))

	// Outbound, from host A's port, to an address nothing answers for
	// (the public namespace does not forward): no reply comes back.
	b = buf()
	n = header.BuildUDP(b, header.IPv4Fields{Src: sink.Addr(), Dst: netip.MustParseAddr("203.0.113.99"), Protocol: header.ProtoUDP, TTL: 64, ID: 10},
		header.UDPFields{SrcPort: sink.Port(), DstPort: 9}, []byte("outbound case"))
	udpOut := b[:n]
	addOut("outbound valid udp", udpOut)
	for _, i := range []int{1, 19, 20, 27} {
		addOut(fmt.Sprintf("outbound truncated to %d bytes", i), append([]byte(nil), udpOut[:i]...))
		invalid()
	}
	addOut("outbound ihl 15", edit(udpOut, func(b []byte) { b[0] = 0x4f }))
	addOut("outbound total length past the end", edit(udpOut, func(b []byte) { binary.BigEndian.PutUint16(b[2:], 1400) }))
	invalid()
	addOut("outbound bad header checksum", func() []byte { c := append([]byte(nil), udpOut...); c[10] ^= 0xff; return c }())
	addOut("outbound source port 0", edit(udpOut, func(b []byte) { b[20], b[21] = 0, 0 }))
	addOut("outbound destination port 0", edit(udpOut, func(b []byte) { b[22], b[23] = 0, 0 }))
	addOut("outbound from another inside address", edit(udpOut, func(b []byte) { b[15] = 9 }))
	addOut("outbound from an outside address", edit(udpOut, func(b []byte) { copy(b[12:16], []byte{192, 0, 2, 1}) }))
	addOut("outbound to the gateway", edit(udpOut, func(b []byte) { copy(b[16:20], gateway.AsSlice()) }))
	addOut("outbound ttl 1", edit(udpOut, func(b []byte) { b[8] = 1 }))
	addOut("outbound first fragment, 4 bytes", frag(0, true, false, tr[:4]))
	return cs
}

func make40(v byte) []byte {
	b := make([]byte, 40)
	for i := range b {
		b[i] = v
	}
	return b
}

// The malformed-packet set of issue 19's audit, written straight onto
// gonat's TUN devices while a UDP and a TCP flow run through it: the
// flows lose nothing, and for every verdict the counters move by exactly
// what an engine with the same configuration and mappings says of the
// set (plus the flows' own packets for forward): each packet is dropped
// or forwarded as its verdict says, and the counters add up.
func TestMalformedSetLiveFlows(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--preset", "full-cone")
	echoUDP := udp(t, tp.WAN, srv1.String()+":3478")
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echoUDP.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echoUDP.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	ln, err := ns.Listen(tp.WAN, "tcp4", srv1.String()+":80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					c.Write(buf[:n])
				}
			}()
		}
	}()

	// The live flows' endpoints, the sink's mapping for the cases, and
	// what the sink's first datagram looked like outside (for quotes).
	live := udp(t, tp.A, ":5000")
	sink := udp(t, tp.A, ":6000")
	if _, err := sink.WriteToUDPAddrPort([]byte("open"), netip.AddrPortFrom(srv1, 3478)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := recvFrom(sink, 2*time.Second); err != nil {
		t.Fatalf("sink mapping: %v", err)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: hostA.AsSlice(), Port: 5001}, Timeout: 2 * time.Second}
	var tc net.Conn
	if err := ns.Do(tp.A, func() (err error) { tc, err = d.Dial("tcp4", srv1.String()+":80"); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	tcpr := bufio.NewReader(tc)

	ext := netip.AddrPortFrom(ext1, 6000) // ports preserved under full-cone
	qb := make([]byte, 1500)
	qn := header.BuildUDP(qb, header.IPv4Fields{Src: ext1, Dst: srv1, Protocol: header.ProtoUDP, TTL: 63, ID: 1},
		header.UDPFields{SrcPort: 6000, DstPort: 3478}, []byte("open"))
	cases := malformedSet(netip.AddrPortFrom(hostA, 6000), ext, qb[:qn])

	// The reference: an engine like gonat's, with the same mappings.
	c, _ := table.Preset("full-cone")
	c.External = []netip.Addr{ext1}
	var inside []nat.InsidePort
	for _, h := range []netip.Addr{hostA, hostB, hostC} {
		inside = append(inside, nat.InsidePort{Hosts: []netip.Prefix{netip.PrefixFrom(h, 24)}, Gateway: gateway})
	}
	ref, err := nat.New(nat.Config{Table: c, Inside: inside})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// refSend processes one packet as the router does: fragments held for
	// their first go out (and count) once it has.
	refSend := func(in nat.Port, b []byte) nat.Verdict {
		v := ref.Process(in, append([]byte(nil), b...), make([]byte, 1500), now).Verdict
		for held := make([]byte, 1500); ; {
			if _, _, ok := ref.NextHeld(held); !ok {
				return v
			}
		}
	}
	// refCounts is the reference's counters: fragments it held and let go
	// when their first came count there too.
	refCounts := func() map[string]uint64 {
		m := map[string]uint64{}
		for _, v := range nat.Verdicts() {
			if n := ref.Count(v); n > 0 {
				m[v.String()] = n
			}
		}
		return m
	}
	for _, p := range []struct {
		in  nat.Port
		src netip.AddrPort
	}{{1, netip.AddrPortFrom(hostA, 6000)}, {1, netip.AddrPortFrom(hostA, 5000)}} {
		b := make([]byte, 1500)
		n := header.BuildUDP(b, header.IPv4Fields{Src: p.src.Addr(), Dst: srv1, Protocol: header.ProtoUDP, TTL: 64}, header.UDPFields{SrcPort: p.src.Port(), DstPort: 3478}, nil)
		if v := refSend(p.in, b[:n]); v != nat.Forward {
			t.Fatalf("reference mapping: %v", v)
		}
	}

	// One round of each flow opens it; then the counters are read with
	// the flows quiet.
	var udpRounds, tcpRounds, udpLost atomic.Int64
	round := func(i int) error {
		msg := fmt.Sprintf("live %d\n", i)
		live.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := live.WriteToUDPAddrPort([]byte(msg), netip.AddrPortFrom(srv1, 3478)); err != nil {
			return err
		}
		if got, _, err := recvFrom(live, time.Second); err != nil || got != msg {
			udpLost.Add(1)
		} else {
			udpRounds.Add(1)
		}
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := tc.Write([]byte(msg)); err != nil {
			return err
		}
		if got, err := tcpr.ReadString('\n'); err != nil || got != msg {
			return fmt.Errorf("tcp echo %q, %v; want %q", got, err, msg)
		}
		tcpRounds.Add(1)
		return nil
	}
	if err := round(0); err != nil {
		t.Fatal(err)
	}
	quiet := func() (map[string]uint64, *unix.TCPInfo) {
		time.Sleep(500 * time.Millisecond) // delayed ACKs
		raw, _ := tc.(*net.TCPConn).SyscallConn()
		var info *unix.TCPInfo
		raw.Control(func(fd uintptr) { info, _ = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
		return runPackets(t, tp.Name), info
	}
	before, info0 := quiet()
	udpRounds.Store(0)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	flowErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := round(i); err != nil {
				flowErr <- err
				return
			}
		}
	}()
	outside, insideA := linkSender(t, tp.WAN), linkSender(t, tp.A)
	ref0 := refCounts()
	replies := 0
	for _, c := range cases {
		in, send := nat.Outside, outside
		if c.outbound {
			in, send = 1, insideA
		}
		v := refSend(in, c.b)
		if v == nat.Forward {
			replies += c.replies
			if c.invalid {
				t.Errorf("case %q forwarded", c.name)
			}
		}
		send(c.b)
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	select {
	case err := <-flowErr:
		t.Fatalf("live TCP flow: %v", err)
	default:
	}
	after, info1 := quiet()

	if udpLost.Load() != 0 || udpRounds.Load() == 0 {
		t.Errorf("live UDP flow: %d of %d datagrams lost", udpLost.Load(), udpLost.Load()+udpRounds.Load())
	}
	if info0 == nil || info1 == nil {
		t.Fatal("no TCP_INFO")
	}
	if r := info1.Total_retrans - info0.Total_retrans; r != 0 {
		t.Errorf("live TCP flow: %d segments retransmitted", r)
	}
	segs := uint64(info1.Segs_out-info0.Segs_out) + uint64(info1.Segs_in-info0.Segs_in)
	want := countersMoved(ref0, refCounts())
	want["forward"] += uint64(replies) + 2*uint64(udpRounds.Load()) + segs
	moved := countersMoved(before, after)
	if fmt.Sprint(moved) != fmt.Sprint(want) {
		t.Errorf("%d cases, %d UDP and %d TCP rounds (%d segments): counters moved by\n%v\nwant\n%v",
			len(cases), udpRounds.Load(), tcpRounds.Load(), segs, moved, want)
	}
	t.Logf("%d cases; verdicts %v", len(cases), want)
}
