//go:build linux

package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/internal/procfd"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/tun/offload"
	"golang.org/x/sys/unix"
)

var nsSeq atomic.Int64

// testNS creates a namespace with a name unique to this run and test,
// removed when the test ends.
func testNS(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("gtun%x-%d", os.Getpid(), nsSeq.Add(1))
	if err := ns.Create(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Delete(name) })
	return name
}

var (
	hostAddr = netip.MustParsePrefix("10.0.0.2/24")
	peer     = netip.MustParseAddrPort("203.0.113.1:9")
)

func createIn(t *testing.T, n, backend string) Device {
	t.Helper()
	d, err := Create(Config{Namespace: n, Backend: backend, Addresses: []netip.Prefix{hostAddr},
		Routes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestBackendDispatch(t *testing.T) {
	privtest.Require(t)
	n := testNS(t)
	if _, err := Create(Config{Namespace: n, Backend: "bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown backend: %v", err)
	}
	for _, c := range []struct {
		backend string
		virtio  bool
	}{{BackendWater, false}, {BackendOffload, true}, {BackendAuto, true}, {"", true}} {
		d, err := Create(Config{Namespace: n, Backend: c.backend, Name: "gt%d"})
		if err != nil {
			t.Fatalf("%q: %v", c.backend, err)
		}
		if HasVirtioHdr(d) != c.virtio {
			t.Errorf("%q: virtio header %v, want %v (this kernel takes TUNSETOFFLOAD)", c.backend, HasVirtioHdr(d), c.virtio)
		}
		d.Close()
	}
}

// What a socket sends through an offload device arrives with its
// virtio-net header: a UDP datagram with a partial checksum (the folded
// pseudo-header sum) and the offsets of the UDP checksum.
func TestOffloadReadsPartialChecksum(t *testing.T) {
	privtest.Require(t)
	n := testNS(t)
	d := createIn(t, n, BackendOffload)
	c, err := ns.ListenPacket(n)("udp4", "10.0.0.2:5000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(peer)); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 16+65535), make([]byte, 16+65535)}
	sizes := make([]int, 2)
	for {
		k, err := d.Read(bufs, sizes, 16)
		if err != nil || k < 1 {
			t.Fatalf("read: %d %v", k, err)
		}
		pkt := bufs[0][16 : 16+sizes[0]]
		if pkt[0]>>4 != 4 || pkt[9] != 17 {
			continue // something else the namespace sent
		}
		var h offload.VirtioHdr
		h.Decode(bufs[0][16-offload.VirtioHdrLen:])
		if h.Flags != offload.VirtioNeedsCsum || h.GSOType != offload.GSONone || h.CsumStart != 20 || h.CsumOffset != 6 {
			t.Fatalf("header %+v", h)
		}
		// The field holds the pseudo-header sum: src, dst, proto, length.
		want := pseudo(pkt[12:16]) + pseudo(pkt[16:20]) + 17 + uint32(len(pkt)-20)
		want = want>>16 + want&0xffff
		if got := binary.BigEndian.Uint16(pkt[26:]); uint32(got) != want {
			t.Fatalf("partial checksum %#x, want %#x", got, want)
		}
		return
	}
}

func pseudo(a []byte) uint32 {
	return uint32(binary.BigEndian.Uint16(a)) + uint32(binary.BigEndian.Uint16(a[2:]))
}

// A packet written with a zero header is delivered as is; a packet
// written with a partial checksum is accepted as well.
func TestOffloadWrite(t *testing.T) {
	privtest.Require(t)
	n := testNS(t)
	d := createIn(t, n, BackendOffload)
	c, err := ns.ListenPacket(n)("udp4", "10.0.0.2:6000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, partial := range []bool{false, true} {
		buf := make([]byte, 16+64)
		pkt := buf[16:]
		msg := fmt.Sprintf("partial=%v", partial)
		l := udpPacket(pkt, peer, netip.MustParseAddrPort("10.0.0.2:6000"), msg)
		h := offload.VirtioHdr{}
		if partial {
			h = offload.VirtioHdr{Flags: offload.VirtioNeedsCsum, CsumStart: 20, CsumOffset: 6}
			s := pseudo(pkt[12:16]) + pseudo(pkt[16:20]) + 17 + uint32(l-20)
			s = s>>16 + s&0xffff
			binary.BigEndian.PutUint16(pkt[26:], uint16(s))
		}
		h.Encode(buf[16-offload.VirtioHdrLen:])
		if k, err := d.Write([][]byte{buf[:16+l]}, 16); k != 1 || err != nil {
			t.Fatalf("write: %d %v", k, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 100)
		m, from, err := c.ReadFrom(got)
		if err != nil || string(got[:m]) != msg || from.String() != peer.String() {
			t.Fatalf("got %q from %v: %v", got[:m], from, err)
		}
	}
}

// udpPacket writes an IPv4/UDP packet with valid checksums, TTL 64, into
// b and returns its length.
func udpPacket(b []byte, src, dst netip.AddrPort, payload string) int {
	return header.BuildUDP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), TTL: 64},
		header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}, []byte(payload))
}

// Close wakes a Read waiting in the netpoller, which returns ErrClosed.
func TestOffloadCloseUnblocksRead(t *testing.T) {
	privtest.Require(t)
	for _, backend := range []string{BackendOffload, BackendWater} {
		t.Run(backend, func(t *testing.T) {
			n := testNS(t)
			d, err := Create(Config{Namespace: n, Backend: backend})
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				bufs := [][]byte{make([]byte, 16+65535)}
				for {
					if _, err := d.Read(bufs, []int{0}, 16); err != nil {
						errc <- err
						return
					}
				}
			}()
			time.Sleep(50 * time.Millisecond) // let it block
			d.Close()
			select {
			case err := <-errc:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("read after close: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Read still blocked 5s after Close")
			}
		})
	}
}

// A device with Queues > 1 is a MultiQueue: the kernel spreads the flows
// it sends over the queues, any queue takes writes, and closing the
// first queue removes the device (a name that can be made again, with
// one queue).
func TestOffloadMultiQueue(t *testing.T) {
	privtest.Require(t)
	n := testNS(t)
	if _, err := Create(Config{Namespace: n, Backend: BackendWater, Queues: 2}); err == nil || !strings.Contains(err.Error(), "offload") {
		t.Fatalf("water with 2 queues: %v, want an error naming the offload backend", err)
	}
	d, err := Create(Config{Namespace: n, Backend: BackendOffload, Name: "gmq0", Queues: 3, Addresses: []netip.Prefix{hostAddr},
		Routes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	qs := QueuesOf(d)
	if len(qs) != 3 {
		t.Fatalf("%d queues, want 3", len(qs))
	}
	for i, q := range qs {
		if !HasVirtioHdr(q) || !CanPoll(q) || q.Name() != "gmq0" {
			t.Fatalf("queue %d: virtio %v, poll %v, name %q", i, HasVirtioHdr(q), CanPoll(q), q.Name())
		}
	}

	// 64 flows: each arrives on one queue; between them they must use
	// more than one.
	const flows = 64
	var conns []net.PacketConn
	for i := range flows {
		c, err := ns.ListenPacket(n)("udp4", fmt.Sprintf("10.0.0.2:%d", 7000+i))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		if _, err := c.WriteTo([]byte("mq"), net.UDPAddrFromAddrPort(peer)); err != nil {
			t.Fatal(err)
		}
	}
	bufs := [][]byte{make([]byte, 16+65535)}
	sizes := []int{0}
	perQueue := make([]int, len(qs))
	seen := map[uint16]bool{}
	for deadline := time.Now().Add(5 * time.Second); len(seen) < flows && time.Now().Before(deadline); {
		got := false
		for i, q := range qs {
			k, err := q.(Poller).TryRead(bufs, sizes, 16)
			if err != nil {
				t.Fatal(err)
			}
			if k == 1 {
				got = true
				pkt := bufs[0][16 : 16+sizes[0]]
				if pkt[0]>>4 == 4 && pkt[9] == 17 && binary.BigEndian.Uint16(pkt[22:]) == peer.Port() {
					seen[binary.BigEndian.Uint16(pkt[20:])] = true
					perQueue[i]++
				}
			}
		}
		if !got {
			time.Sleep(time.Millisecond)
		}
	}
	if len(seen) != flows {
		t.Fatalf("read %d of %d flows from the queues (%v)", len(seen), flows, perQueue)
	}
	used := 0
	for _, c := range perQueue {
		if c > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("all %d flows came on one queue: %v", flows, perQueue)
	}
	t.Logf("datagrams per queue: %v", perQueue)

	// A write on the last queue is delivered.
	buf := make([]byte, 16+64)
	l := udpPacket(buf[16:], peer, netip.MustParseAddrPort("10.0.0.2:7000"), "via queue 2")
	if k, err := qs[2].Write([][]byte{buf[:16+l]}, 16); k != 1 || err != nil {
		t.Fatalf("write on queue 2: %d %v", k, err)
	}
	conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 64)
	if m, _, err := conns[0].ReadFrom(got); err != nil || string(got[:m]) != "via queue 2" {
		t.Fatalf("got %q: %v", got[:m], err)
	}

	d.Close()
	closed = true
	for i, q := range qs {
		if _, err := q.(Poller).TryRead(bufs, sizes, 16); !errors.Is(err, ErrClosed) {
			t.Errorf("queue %d after Close: %v, want ErrClosed", i, err)
		}
	}
	// A queue left open would keep the multi-queue device, and a
	// single-queue one of the same name could not be made.
	again, err := Create(Config{Namespace: n, Backend: BackendOffload, Name: "gmq0"})
	if err != nil {
		t.Fatalf("device not gone after closing its first queue: %v", err)
	}
	again.Close()
}

// With SteerByCPU, the UDP a thread on CPU c sends goes to queue c mod
// queues, every flow of it (with the kernel's flow hash, 32 flows from
// one CPU would spread over both queues), while TCP goes by flow hash
// (one connection's segments leave from several CPUs, and must not be
// split between queues): 32 connections opened from one CPU spread.
func TestOffloadSteerByCPU(t *testing.T) {
	privtest.Require(t)
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for c := 0; c < 1024 && len(cpus) < 2; c++ {
		if allowed.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		t.Skipf("needs 2 CPUs to steer between; this process may use %d", allowed.Count())
	}
	n := testNS(t)
	d, err := Create(Config{Namespace: n, Backend: BackendOffload, Name: "gsc0", Queues: 2, SteerByCPU: true,
		Addresses: []netip.Prefix{hostAddr}, Routes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	qs := QueuesOf(d)
	const flows = 32
	bufs := [][]byte{make([]byte, 16+65535)}
	sizes := []int{0}
	// onCPU runs f on a thread that may run on cpu alone.
	onCPU := func(cpu int, f func() error) error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var one unix.CPUSet
		one.Set(cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			return err
		}
		defer unix.SchedSetaffinity(0, &allowed)
		return f()
	}
	// count reads every queue until want packets of protocol proto to
	// the peer's port have come, by queue.
	count := func(proto byte, want int) []int {
		perQueue := make([]int, len(qs))
		for deadline := time.Now().Add(5 * time.Second); perQueue[0]+perQueue[1] < want && time.Now().Before(deadline); {
			got := false
			for i, q := range qs {
				k, err := q.(Poller).TryRead(bufs, sizes, 16)
				if err != nil {
					t.Fatal(err)
				}
				if pkt := bufs[0][16 : 16+sizes[0]]; k == 1 && pkt[0]>>4 == 4 && pkt[9] == proto && binary.BigEndian.Uint16(pkt[22:]) == peer.Port() {
					got = true
					perQueue[i]++
				}
			}
			if !got {
				time.Sleep(time.Millisecond)
			}
		}
		return perQueue
	}
	for round, cpu := range cpus {
		err := onCPU(cpu, func() error {
			for i := range flows {
				c, err := ns.ListenPacket(n)("udp4", fmt.Sprintf("10.0.0.2:%d", 9000+round*flows+i))
				if err != nil {
					return err
				}
				_, err = c.WriteTo([]byte("cpu"), net.UDPAddrFromAddrPort(peer))
				c.Close()
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if perQueue, want := count(17, flows), cpu%len(qs); perQueue[want] != flows {
			t.Errorf("UDP sent on CPU %d: datagrams per queue %v, want all %d on queue %d", cpu, perQueue, flows, want)
		}
	}
	// TCP: 32 SYNs, each a connection of its own, from one CPU. Nobody
	// answers; the sockets are closed at the end.
	fds := make([]int, flows)
	err = ns.Do(n, func() error {
		for i := range fds {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fds[i] = fd
		}
		return nil
	})
	defer func() {
		for _, fd := range fds {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	err = onCPU(cpus[0], func() error {
		for _, fd := range fds {
			// The SYN leaves in connect's own context, on this CPU.
			err := unix.Connect(fd, &unix.SockaddrInet4{Addr: peer.Addr().As4(), Port: int(peer.Port())})
			if err != nil && !errors.Is(err, unix.EINPROGRESS) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if perQueue := count(6, flows); perQueue[0] == 0 || perQueue[1] == 0 {
		t.Errorf("32 TCP connections opened on CPU %d: SYNs per queue %v, want them spread by flow hash", cpus[0], perQueue)
	}
}

// A Config.Polled device stays out of Go's netpoller (its epoll would
// wake an idle thread for every packet), yet TryRead, Waiter and Write
// work on it, and Read on it fails at once rather than wait forever.
func TestOffloadPolled(t *testing.T) {
	privtest.Require(t)
	n := testNS(t)
	plain := createIn(t, n, BackendOffload) // in the netpoller: the check below can see one
	d, err := Create(Config{Namespace: n, Backend: BackendOffload, Name: "gpoll0", Queues: 2, Polled: true,
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	polled := epollTargets(t)
	if fd := plain.(Poller).PollFd(); !polled[fd] {
		t.Fatalf("the plain device's fd %d is not in any epoll set (%v): the check cannot see the netpoller", fd, polled)
	}
	qs := QueuesOf(d)
	for i, q := range qs {
		if fd := q.(Poller).PollFd(); polled[fd] {
			t.Fatalf("queue %d of the polled device: fd %d is in the netpoller", i, fd)
		}
	}

	bufs := [][]byte{make([]byte, 16+65535)}
	sizes := []int{0}
	errc := make(chan error, 1)
	go func() {
		_, err := qs[0].Read(bufs, sizes, 16) // nothing sent yet
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrPolled) {
			t.Fatalf("Read on an empty polled device: %v, want ErrPolled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read on an empty polled device still waiting after 5s")
	}

	// A datagram routed into the device wakes a Waiter on its queues and
	// is read with TryRead.
	c, err := ns.ListenPacket(n)("udp4", "10.0.1.2:5000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("polled"), &net.UDPAddr{IP: net.IPv4(10, 0, 1, 9), Port: 9}); err != nil {
		t.Fatal(err)
	}
	ps := make([]Poller, len(qs))
	for i, q := range qs {
		ps[i] = q.(Poller)
	}
	w := NewWaiter(ps, -1)
	deadline := time.Now().Add(5 * time.Second)
	for found := false; !found; {
		if time.Now().After(deadline) {
			t.Fatal("the datagram never reached the polled device")
		}
		if _, err := w.Wait(time.Second); err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			k, err := p.TryRead(bufs, sizes, 16)
			if err != nil {
				t.Fatal(err)
			}
			if k == 1 && strings.HasSuffix(string(bufs[0][16:16+sizes[0]]), "polled") {
				found = true
			}
		}
	}

	// And a packet written to it is delivered.
	buf := make([]byte, 16+64)
	l := udpPacket(buf[16:], netip.MustParseAddrPort("10.0.1.9:9"), netip.MustParseAddrPort("10.0.1.2:5000"), "back")
	if k, err := qs[1].Write([][]byte{buf[:16+l]}, 16); k != 1 || err != nil {
		t.Fatalf("write: %d %v", k, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 100)
	if m, _, err := c.ReadFrom(got); err != nil || string(got[:m]) != "back" {
		t.Fatalf("got %q: %v", got[:m], err)
	}
}

// epollTargets returns the descriptors registered in any epoll instance
// of this process (the Go netpoller's among them).
func epollTargets(t *testing.T) map[int]bool {
	t.Helper()
	fds, err := procfd.Epolled(0)
	if err != nil {
		t.Fatal(err)
	}
	return fds
}

// BackendAuto's fallback line goes to the writer of the Config that
// fell back, not to one shared by every caller.
func TestFallbackLogPerConfig(t *testing.T) {
	var one, multi strings.Builder
	sayFallback(Config{FallbackLog: &one}, errNoOffload)
	sayFallback(Config{FallbackLog: &multi, Queues: 2}, errNoOffload)
	if got := one.String(); !strings.HasPrefix(got, "gonat: TUN offload unavailable (TUN offload unsupported); using the water backend\n") {
		t.Errorf("one queue: %q", got)
	}
	if got := multi.String(); !strings.Contains(got, "water backend, one queue per device\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("two queues: %q", got)
	}
}
