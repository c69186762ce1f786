package tests

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/ns"
)

// Source and destination validation and ICMP rate limits, end to end.
// Packets are injected and captured with packet sockets on the NAT's
// TUN devices: the namespaces' kernels neither fill in nor check what
// these tests need wrong (a zero source, a bad header checksum, a
// loopback destination leaving by the TUN).

// htons is a protocol number in network order, as packet sockets take it.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// natLink is the index of namespace n's one link besides loopback: the
// NAT's TUN device there.
func natLink(t *testing.T, n string) int {
	t.Helper()
	idx := 0
	err := ns.Do(n, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback == 0 {
				idx = i.Index
			}
		}
		return err
	})
	if err != nil || idx == 0 {
		t.Fatalf("the NAT's device in %s: %v", n, err)
	}
	return idx
}

// packetSocket is a packet socket (cooked: IP packets, no link header)
// on the NAT's device in namespace n, closed when the test ends. It
// receives what crosses the device with protocol proto (ETH_P_ALL: all);
// with 0 it only sends, so nothing queues on it unread.
func packetSocket(t *testing.T, n string, proto uint16) (fd, ifindex int) {
	t.Helper()
	ifindex = natLink(t, n)
	err := ns.Do(n, func() error {
		var err error
		fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(htons(proto)))
		if err != nil || proto == 0 {
			return err
		}
		return syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex})
	})
	if err != nil {
		t.Fatalf("packet socket in %s: %v", n, err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return fd, ifindex
}

// linkSender sends IP packets (v4 or v6, by their version) exactly as
// built into the NAT's device in namespace n, as if n's kernel had
// routed them there: no IP stack checks or fixes anything first (a raw
// IP socket would fill in the header checksum and total length).
func linkSender(t *testing.T, n string) func(pkt []byte) {
	fd, ifindex := packetSocket(t, n, 0)
	return func(pkt []byte) {
		t.Helper()
		proto := uint16(syscall.ETH_P_IP)
		if len(pkt) > 0 && pkt[0]>>4 == 6 {
			proto = syscall.ETH_P_IPV6
		}
		if err := syscall.Sendto(fd, pkt, 0, &syscall.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex}); err != nil {
			t.Fatalf("send %d bytes on the NAT's device in %s: %v", len(pkt), n, err)
		}
	}
}

// capture records the IPv4 packets crossing the NAT's device in
// namespace n until stop.
type capture struct {
	fd   int
	mu   sync.Mutex
	pkts [][]byte
	quit atomic.Bool
	done chan struct{}
}

func startCapture(t *testing.T, n string) *capture {
	fd, _ := packetSocket(t, n, syscall.ETH_P_ALL)
	tv := syscall.NsecToTimeval(int64(50 * time.Millisecond))
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	c := &capture{fd: fd, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 65536)
		for !c.quit.Load() {
			k, _, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil || k < header.IPv4MinSize || buf[0]>>4 != 4 {
				continue
			}
			c.mu.Lock()
			c.pkts = append(c.pkts, append([]byte(nil), buf[:k]...))
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.stop() })
	return c
}

// stop ends the capture and returns what it saw.
func (c *capture) stop() [][]byte {
	c.quit.Store(true)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pkts
}

// udpPacket builds a UDP packet with valid checksums.
func udpPacket(src, dst netip.AddrPort, ttl uint8, payload string) []byte {
	b := make([]byte, 1500)
	n := header.BuildUDP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), Protocol: header.ProtoUDP, TTL: ttl, ID: 7},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, []byte(payload))
	return b[:n]
}

// natCounters are the NAT's counters as lab status shows them.
type natCounters struct {
	Packets           map[string]uint64 // per verdict
	ICMPErrorsLimited uint64            `json:"icmp_errors_limited"`
}

// counters reads the NAT's counters (lab status).
func (tp *topo) counters() natCounters {
	t := tp.t
	t.Helper()
	out, err := exec.Command(gonatBin, "lab", "status", "--lab", tp.Name, "--json").CombinedOutput()
	var st struct {
		NATs []natCounters `json:"nats"`
	}
	if err != nil || json.Unmarshal(out, &st) != nil || len(st.NATs) != 1 {
		t.Fatalf("gonat lab status: %v\n%s", err, out)
	}
	return st.NATs[0]
}

// packetCounts is the NAT's packet count per verdict (lab status).
func (tp *topo) packetCounts() map[string]uint64 {
	tp.t.Helper()
	return tp.counters().Packets
}

// mappingInternals lists the inside endpoints of the NAT's mappings.
func (tp *topo) mappingInternals() []string {
	t := tp.t
	t.Helper()
	out, err := exec.Command(gonatBin, "table", "--lab", tp.Name, "--json").CombinedOutput()
	var rows []struct{ Internal string }
	if err != nil || json.Unmarshal(out, &rows) != nil {
		t.Fatalf("gonat table: %v\n%s", err, out)
	}
	var in []string
	for _, r := range rows {
		in = append(in, r.Internal)
	}
	return in
}

// Host A sending with host B's address, or with an address off its
// port, gets nothing translated and no mapping (BCP 38); its own address
// still works.
func TestSpoofedInsideSourceDropped(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--preset", "full-cone")
	srv := udp(t, tp.WAN, netip.AddrPortFrom(srv1, 7000).String())
	send := linkSender(t, tp.A)
	dst := netip.AddrPortFrom(srv1, 7000)
	send(udpPacket(netip.AddrPortFrom(hostB, 6000), dst, 64, "as B"))
	send(udpPacket(netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), 6000), dst, 64, "off the port"))
	send(udpPacket(netip.AddrPortFrom(hostA, 6001), dst, 64, "as A"))
	msg, from, err := recvFrom(srv, 3*time.Second)
	if err != nil {
		t.Fatalf("A's own datagram did not arrive: %v", err)
	}
	if msg != "as A" {
		t.Fatalf("the server got %q from %s: a spoofed source was translated", msg, from)
	}
	if msg, from, err := recvFrom(srv, 300*time.Millisecond); err == nil {
		t.Fatalf("the server got %q from %s after A's own", msg, from)
	}
	if got := tp.packetCounts()["spoofed"]; got != 2 {
		t.Errorf("spoofed counted %d, want 2", got)
	}
	for _, in := range tp.mappingInternals() {
		if in != netip.AddrPortFrom(hostA, 6001).String() {
			t.Errorf("a mapping for %s", in)
		}
	}
}

// Under full cone, packets from martian sources to a live mapping never
// reach the inside host; a private source (a nested NAT's outside) does.
func TestMartianSourcesDropped(t *testing.T) {
	tp := newTopo(t)
	tp.startSTUN()
	tp.startNAT("--preset", "full-cone")
	a := udp(t, tp.A, ":5000")
	m := mapped(t, a, stunServer)
	cap := startCapture(t, tp.A)
	send := linkSender(t, tp.WAN)
	martians := []string{"0.0.0.0", "127.0.0.1", ext1.String(), hostB.String(), "240.0.0.1",
		"169.254.1.1", "255.255.255.255", "224.0.0.1"}
	for _, s := range martians {
		send(udpPacket(netip.AddrPortFrom(netip.MustParseAddr(s), 53), m, 64, "martian "+s))
	}
	send(udpPacket(netip.AddrPortFrom(netip.MustParseAddr("192.168.1.1"), 53), m, 64, "private"))
	msg, from, err := recvFrom(a, 3*time.Second)
	if err != nil || msg != "private" {
		t.Fatalf("A got %q from %s (%v); want only the datagram from 192.168.1.1", msg, from, err)
	}
	time.Sleep(100 * time.Millisecond) // let the capture catch up
	for _, p := range cap.stop() {
		if bytes.Contains(p, []byte("martian ")) {
			t.Errorf("A's device carried a martian: %s -> %s", header.IPv4(p).Src(), header.IPv4(p).Dst())
		}
	}
	if got := tp.packetCounts()["martian"]; got != uint64(len(martians)) {
		t.Errorf("martian counted %d, want %d", got, len(martians))
	}
}

// Packets from inside to loopback, broadcast, multicast and class E
// addresses do not leave the NAT.
func TestMartianDestinationsNotSent(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--preset", "full-cone")
	srv := udp(t, tp.WAN, netip.AddrPortFrom(srv1, 7000).String())
	cap := startCapture(t, tp.WAN)
	send := linkSender(t, tp.A)
	dsts := []string{"127.0.0.1", "255.255.255.255", "224.0.0.251", "240.0.0.1"}
	for _, d := range dsts {
		send(udpPacket(netip.AddrPortFrom(hostA, 5001), netip.AddrPortFrom(netip.MustParseAddr(d), 7000), 64, "to "+d))
	}
	send(udpPacket(netip.AddrPortFrom(hostA, 5001), netip.AddrPortFrom(srv1, 7000), 64, "to the server"))
	if msg, _, err := recvFrom(srv, 3*time.Second); err != nil || msg != "to the server" {
		t.Fatalf("server got %q (%v)", msg, err)
	}
	time.Sleep(100 * time.Millisecond)
	for _, p := range cap.stop() {
		if bytes.Contains(p, []byte("to ")) && !bytes.Contains(p, []byte("to the server")) {
			t.Errorf("sent out: %s -> %s", header.IPv4(p).Src(), header.IPv4(p).Dst())
		}
	}
	if got := tp.packetCounts()["martian"]; got != uint64(len(dsts)) {
		t.Errorf("martian counted %d, want %d", got, len(dsts))
	}
}

// A packet with a wrong IPv4 header checksum is dropped and counted, in
// both directions (RFC 1812 §5.2.2).
func TestBadHeaderChecksumDropped(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--preset", "full-cone")
	srv := udp(t, tp.WAN, netip.AddrPortFrom(srv1, 7000).String())
	capOut := startCapture(t, tp.WAN)
	sendA := linkSender(t, tp.A)
	bad := udpPacket(netip.AddrPortFrom(hostA, 5002), netip.AddrPortFrom(srv1, 7000), 64, "bad outbound")
	bad[11] ^= 0x01
	sendA(bad)
	sendA(udpPacket(netip.AddrPortFrom(hostA, 5002), netip.AddrPortFrom(srv1, 7000), 64, "good outbound"))
	msg, from, err := recvFrom(srv, 3*time.Second)
	if err != nil || msg != "good outbound" {
		t.Fatalf("server got %q (%v)", msg, err)
	}

	capIn := startCapture(t, tp.A)
	sendW := linkSender(t, tp.WAN)
	bad = udpPacket(netip.AddrPortFrom(srv1, 7000), from, 64, "bad inbound")
	bad[11] ^= 0x01
	sendW(bad)
	sendW(udpPacket(netip.AddrPortFrom(srv1, 7000), from, 64, "good inbound"))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		seen := false
		capIn.mu.Lock()
		for _, p := range capIn.pkts {
			seen = seen || bytes.Contains(p, []byte("good inbound"))
		}
		capIn.mu.Unlock()
		if seen {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	in, out := capIn.stop(), capOut.stop()
	// What the NAT sent on: outbound from its external address, inbound
	// to A (what the tests injected has the other addresses).
	for _, p := range out {
		if bytes.Contains(p, []byte("bad ")) && header.IPv4(p).Src() == ext1 {
			t.Errorf("sent out with a bad header checksum: %s -> %s", header.IPv4(p).Src(), header.IPv4(p).Dst())
		}
	}
	for _, p := range in {
		if bytes.Contains(p, []byte("bad ")) && header.IPv4(p).Dst() == hostA {
			t.Errorf("let in with a bad header checksum: %s -> %s", header.IPv4(p).Src(), header.IPv4(p).Dst())
		}
	}
	good := false
	for _, p := range in {
		good = good || bytes.Contains(p, []byte("good inbound"))
	}
	if !good {
		t.Errorf("the good inbound datagram did not reach A's device")
	}
	if got := tp.packetCounts()["bad-checksum"]; got != 2 {
		t.Errorf("bad-checksum counted %d, want 2", got)
	}
}

// A burst of 2000 TTL=1 probes to the external address in one second
// gets at most a burst plus a second's worth of Time Exceeded: by
// default 6 + 1 to one destination; with no per-destination limit and
// 100 a second in all, 50 + 100. Every probe counts ttl-exceeded; the
// errors held back are counted apart.
func TestICMPErrorsRateLimited(t *testing.T) {
	for _, tc := range []struct {
		name       string
		flags      []string
		min, burst int
		perSecond  float64
	}{
		{"default, per destination", nil, 1, 6, 1},
		{"in all", []string{"--icmp-interval", "0", "--icmp-rate", "100"}, 50, 50, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t)
			tp.startNAT(tc.flags...)
			var ic net.PacketConn
			err := ns.Do(tp.WAN, func() error {
				var err error
				ic, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
				return err
			})
			if err != nil {
				t.Fatalf("icmp socket: %v", err)
			}
			defer ic.Close()
			var got atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 1500)
				for {
					ic.SetReadDeadline(time.Now().Add(time.Second))
					k, _, err := ic.ReadFrom(buf)
					if err != nil {
						return
					}
					if k >= 8 && header.ICMPv4(buf[:k]).Type() == header.ICMPTimeExceeded {
						got.Add(1)
					}
				}
			}()
			send := rawSender(t, tp.WAN)
			probe := udpPacket(netip.AddrPortFrom(srv1, 4000), netip.AddrPortFrom(ext1, 33434), 1, "probe")
			const n = 2000
			start := time.Now()
			for i := range n {
				for time.Since(start) < time.Duration(i)*time.Second/n {
					time.Sleep(200 * time.Microsecond)
				}
				send(probe)
			}
			elapsed := time.Since(start).Seconds()
			<-done // a second with nothing more
			max := tc.burst + int(tc.perSecond*(elapsed+0.5)) + 1
			if g := int(got.Load()); g < tc.min || g > max {
				t.Errorf("%d Time Exceeded for %d probes in %.2fs; want %d to %d", g, n, elapsed, tc.min, max)
			}
			c := tp.counters()
			if c.Packets["ttl-exceeded"] != n {
				t.Errorf("ttl-exceeded %d, want every probe: %d", c.Packets["ttl-exceeded"], n)
			}
			// The NAT sent the rest: within the bound, and at least the
			// ones received.
			sent := n - int(c.ICMPErrorsLimited)
			if sent < int(got.Load()) || sent > max {
				t.Errorf("%d errors held back: %d sent for %d received; want %d to %d sent", c.ICMPErrorsLimited, sent, got.Load(), got.Load(), max)
			}
		})
	}
}
