//go:build linux

package forward

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/tuntest"
)

// End-to-end through real TUN devices, with each backend: a host
// namespace behind the NAT, a public namespace with a server address,
// the router between them in this process, real kernel sockets at both
// ends. Bulk TCP and a UDP flood must arrive intact, counted and hashed.
// Needs root; under CI (CI=true) it fails instead of skipping.
func TestEndToEndBackends(t *testing.T) {
	privtest.Require(t)
	for _, backend := range []string{tun.BackendOffload, tun.BackendWater} {
		t.Run(backend, func(t *testing.T) {
			lan := startLab(t, backend, 0, 1)
			t.Run("tcp 100MB each way", func(t *testing.T) { tcpBulk(t, lan, 100<<20) })
			t.Run("udp flood", func(t *testing.T) { udpFlood(t, lan, 20000) })
			t.Run("udp gso", func(t *testing.T) { udpGSO(t, lan) })
		})
	}
}

// With ReadersBusyPoll one goroutine reads both devices without
// sleeping while traffic flows: the same traffic must arrive intact, and
// once it stops the loop must go to sleep in poll(2) rather than spin on.
func TestEndToEndBusyPoll(t *testing.T) {
	privtest.Require(t)
	lan := startLab(t, tun.BackendOffload, 100*time.Millisecond, 1)
	t.Run("tcp 20MB each way", func(t *testing.T) { tcpBulk(t, lan, 20<<20) })
	t.Run("udp flood", func(t *testing.T) { udpFlood(t, lan, 20000) })
	t.Run("sleeps when idle", func(t *testing.T) {
		time.Sleep(300 * time.Millisecond) // past the quiet time
		before := processCPU(t)
		time.Sleep(time.Second)
		// A spinning loop burns about a CPU-second a second; asleep it
		// burns next to nothing (asleep in poll(2) until a packet comes).
		if used := processCPU(t) - before; used > 400*time.Millisecond {
			t.Errorf("idle router used %v of CPU in 1s: still spinning", used)
		}
	})
}

// With ReadersPerCPU a thread pinned to each CPU reads that CPU's queue
// of both devices (steered by CPU): the same traffic as the backends'
// must arrive intact (lab reads so by default), and idle the threads
// must sleep in poll(2), not spin.
func TestEndToEndPerCPU(t *testing.T) {
	privtest.Require(t)
	lan := startLabWith(t, labOpts{backend: tun.BackendOffload, perCPU: true})
	t.Run("tcp 100MB each way", func(t *testing.T) { tcpBulk(t, lan, 100<<20) })
	t.Run("udp flood", func(t *testing.T) { udpFlood(t, lan, 20000) })
	t.Run("sleeps when idle", func(t *testing.T) {
		time.Sleep(100 * time.Millisecond)
		before := processCPU(t)
		time.Sleep(time.Second)
		if used := processCPU(t) - before; used > 300*time.Millisecond {
			t.Errorf("idle router used %v of CPU in 1s: a reader spins", used)
		}
	})
	var per []int64
	for _, q := range lan.queues[1] {
		per = append(per, q.packets.Load())
	}
	t.Logf("packets read per inside queue: %v", per)
}

// With two queues per device (IFF_MULTI_QUEUE) the router runs a reader
// per queue (or one busy-poll loop over all): parallel TCP connections,
// which the kernel spreads over the queues, must all arrive intact (a
// queue left unread would stall the connections hashed to it), and with
// a reader per queue more than one queue must have carried them.
func TestEndToEndMultiQueue(t *testing.T) {
	privtest.Require(t)
	for _, busyPoll := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run(fmt.Sprintf("busy-poll %v", busyPoll), func(t *testing.T) {
			lan := startLab(t, tun.BackendOffload, busyPoll, 2)
			// 16 connections: all on one of two queues by chance is 1 in
			// 2^15.
			t.Run("16 tcp connections", func(t *testing.T) {
				for i := range 16 {
					t.Run(fmt.Sprint(i), func(t *testing.T) {
						t.Parallel()
						tcpBulkOn(t, lan, 2<<20, uint16(9200+i))
					})
				}
			})
			for side, qs := range map[string][]*countedQueue{"inside": lan.queues[1], "outside": lan.queues[0]} {
				var per []int64
				used := 0
				for _, q := range qs {
					per = append(per, q.packets.Load())
					if q.packets.Load() > 0 {
						used++
					}
				}
				// The kernel steers a flow to the queue its packets were
				// last written on, so with one busy-poll reader (writing on
				// queue 0) the flows gather there.
				if used < 2 && busyPoll == 0 {
					t.Errorf("packets read per %s queue %v: the flows did not spread", side, per)
				}
				t.Logf("packets read per %s queue: %v", side, per)
			}
			t.Run("udp flood", func(t *testing.T) { udpFlood(t, lan, 20000) })
		})
	}
}

// countedQueue counts the packets read from one queue.
type countedQueue struct {
	tun.Device
	packets atomic.Int64
}

func (c *countedQueue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := c.Device.Read(bufs, sizes, offset)
	c.packets.Add(int64(n))
	return n, err
}

func (c *countedQueue) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := c.Device.(tun.Poller).TryRead(bufs, sizes, offset)
	c.packets.Add(int64(n))
	return n, err
}

func (c *countedQueue) PollFd() int     { return c.Device.(tun.Poller).PollFd() }
func (c *countedQueue) VirtioHdr() bool { return tun.HasVirtioHdr(c.Device) }
func (c *countedQueue) USO() bool       { return c.Device.(tun.VirtioDevice).USO() }

// processCPU is the CPU time (user + system) this process has used.
func processCPU(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type lab struct {
	inside, outside string
	router          *Router
	engine          *nat.Engine
	queues          [2][]*countedQueue // by port: the devices' queues, with queues > 1
}

var labSeq atomic.Int64

// startLab makes the two namespaces (a prefix unique to this process),
// the devices and the router; all of it goes when the test ends.
func startLab(t *testing.T, backend string, busyPoll time.Duration, queues int) *lab {
	t.Helper()
	return startLabWith(t, labOpts{backend: backend, busyPoll: busyPoll, queues: queues})
}

// labOpts is how startLabWith makes the devices and reads them.
type labOpts struct {
	backend  string
	busyPoll time.Duration
	queues   int
	perCPU   bool // a queue per CPU, steered by CPU; ReadersPerCPU
}

func startLabWith(t *testing.T, o labOpts) *lab {
	t.Helper()
	backend, busyPoll, queues := o.backend, o.busyPoll, o.queues
	if o.perCPU {
		queues = tun.CPUQueues()
	}
	p := fmt.Sprintf("gnat%x-%d", os.Getpid(), labSeq.Add(1))
	l := &lab{inside: p + "a", outside: p + "w"}
	for _, n := range []string{l.inside, l.outside} {
		if err := ns.Create(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Delete(n) })
	}
	if err := ns.AddLocalAddrs(l.outside, netip.PrefixFrom(srv1, 32)); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, "port-restricted-cone", hostA)
	mode := ReadMode{Readers: ReadersPerDevice}
	switch {
	case o.perCPU:
		mode.Readers = ReadersPerCPU
	case busyPoll > 0:
		mode = ReadMode{Readers: ReadersBusyPoll, Quiet: busyPoll}
	}
	// As lab.StartNAT makes them: polling readers' devices stay out of
	// the netpoller.
	polled := mode.Polled()
	out, err := tun.Create(tun.Config{Namespace: l.outside, Backend: backend, Queues: queues, SteerByCPU: o.perCPU, Polled: polled, Routes: []netip.Prefix{netip.PrefixFrom(ext, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := tun.Create(tun.Config{Namespace: l.inside, Backend: backend, Queues: queues, SteerByCPU: o.perCPU, Polled: polled, Addresses: []netip.Prefix{netip.PrefixFrom(hostA, 24)},
		Routes: []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0)}})
	if err != nil {
		out.Close()
		t.Fatal(err)
	}
	if want := backend == tun.BackendOffload; tun.HasVirtioHdr(in) != want {
		out.Close()
		in.Close()
		t.Fatalf("backend %s: virtio header %v", backend, tun.HasVirtioHdr(in))
	}
	devs := []tun.Device{out, in}
	if queues > 1 {
		for port, d := range devs {
			qs := tun.QueuesOf(d)
			if len(qs) != queues {
				out.Close()
				in.Close()
				t.Fatalf("port %d has %d queues, want %d", port, len(qs), queues)
			}
			counted := make([]tun.Device, len(qs))
			for i, q := range qs {
				c := &countedQueue{Device: q}
				l.queues[port] = append(l.queues[port], c)
				counted[i] = c
			}
			devs[port] = tuntest.NewQueueSet(counted...)
		}
	}
	l.engine = e
	l.router = &Router{Engine: e, Ports: devs, Logf: t.Logf, Mode: mode}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
		t.Logf("engine: forward=%d malformed=%d; write errors %d", e.Count(nat.Forward), e.Count(nat.DropMalformed), l.router.WriteErrors())
	})
	return l
}

// stream is a deterministic byte stream: n bytes from a seeded ChaCha8,
// hashed as they are produced.
type stream struct {
	rng  *rand.ChaCha8
	left int64
	sum  io.Writer
}

func (s *stream) Read(b []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), s.left)]
	s.rng.Read(b)
	s.sum.Write(b)
	s.left -= int64(len(b))
	return len(b), nil
}

func seed(n byte) [32]byte { return [32]byte{n, 'g', 'o', 'n', 'a', 't'} }

// tcpBulk sends size bytes from the host to the server and size bytes
// back on one connection, and compares counts and SHA-256 sums.
func tcpBulk(t *testing.T, l *lab, size int64) { tcpBulkOn(t, l, size, 9100) }

// tcpBulkOn is tcpBulk with the server on port.
func tcpBulkOn(t *testing.T, l *lab, size int64, port uint16) {
	lis, err := ns.Listen(l.outside, "tcp4", netip.AddrPortFrom(srv1, port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	type result struct {
		n    int64
		sum  []byte
		from string
		err  error
	}
	srv := make(chan result, 1)
	srvSent := sha256.New()
	go func() {
		c, err := lis.Accept()
		if err != nil {
			srv <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Minute)) // a hang guard, not a speed test
		h := sha256.New()
		n, err := io.CopyN(h, c, size)
		r := result{n: n, sum: h.Sum(nil), from: c.RemoteAddr().String(), err: err}
		if err == nil {
			_, r.err = io.Copy(c, &stream{rng: rand.NewChaCha8(seed(2)), left: size, sum: srvSent})
		}
		srv <- r
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ns.DialContext(ctx, l.inside, nil, "tcp4", netip.AddrPortFrom(srv1, port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	start := time.Now()
	sent := sha256.New()
	if _, err := io.Copy(c, &stream{rng: rand.NewChaCha8(seed(1)), left: size, sum: sent}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	h := sha256.New()
	n, err := io.CopyN(h, c, size)
	if err != nil || n != size {
		t.Fatalf("download: %d of %d bytes: %v", n, size, err)
	}
	r := <-srv
	if r.err != nil || r.n != size || string(r.sum) != string(sent.Sum(nil)) {
		t.Fatalf("upload arrived: %d of %d bytes, sums match %v, err %v", r.n, size, string(r.sum) == string(sent.Sum(nil)), r.err)
	}
	if string(h.Sum(nil)) != string(srvSent.Sum(nil)) {
		t.Fatal("download: the sums differ")
	}
	if host, _, _ := net.SplitHostPort(r.from); host != ext.String() {
		t.Errorf("server saw %s, want %s", r.from, ext)
	}
	t.Logf("%d MB each way in %v", size>>20, time.Since(start).Round(time.Millisecond))
}

// datagram i: its index, then pseudo-random bytes (16 to 1400 in all).
func datagram(buf []byte, i int) []byte {
	var s [32]byte
	binary.BigEndian.PutUint32(s[:], uint32(i))
	rng := rand.NewChaCha8(s)
	n := 16 + int(rng.Uint64()%1385)
	b := buf[:n]
	binary.BigEndian.PutUint32(b, uint32(i))
	rng.Read(b[4:])
	return b
}

// udpFlood sends count datagrams out and count back, in windows of 256
// (a TUN device drops what its queue cannot hold, and a flood through
// any router loses packets that way; the window keeps the test about
// integrity, not queue sizes), and checks each one arrives once, whole.
func udpFlood(t *testing.T, l *lab, count int) {
	host, err := ns.ListenPacket(l.inside)("udp4", netip.AddrPortFrom(hostA, 7000).String())
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	server, err := ns.ListenPacket(l.outside)("udp4", netip.AddrPortFrom(srv1, 7001).String())
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for _, c := range []net.PacketConn{host, server} {
		bigBuffers(t, c)
	}
	// Outbound: the server sees the external endpoint.
	from := floodOneWay(t, host, server, net.UDPAddrFromAddrPort(netip.AddrPortFrom(srv1, 7001)), count)
	if from.Addr() != ext {
		t.Fatalf("server saw %s", from)
	}
	// Inbound: back to that endpoint, through the mapping.
	floodOneWay(t, server, host, net.UDPAddrFromAddrPort(from), count)
}

func bigBuffers(t *testing.T, c net.PacketConn) {
	rc, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	})
}

func floodOneWay(t *testing.T, src, dst net.PacketConn, to net.Addr, count int) netip.AddrPort {
	t.Helper()
	var got atomic.Int64
	seen := make([]bool, count)
	var from netip.AddrPort
	var bad []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf, want := make([]byte, 2000), make([]byte, 2000)
		dst.SetReadDeadline(time.Now().Add(2 * time.Minute)) // hang guard
		for got.Load() < int64(count) {
			n, a, err := dst.ReadFrom(buf)
			if err != nil {
				bad = append(bad, err.Error())
				return
			}
			from = a.(*net.UDPAddr).AddrPort()
			i := int(binary.BigEndian.Uint32(buf))
			if n < 4 || i >= count || seen[i] || string(buf[:n]) != string(datagram(want, i)) {
				bad = append(bad, fmt.Sprintf("datagram %d (%d bytes) damaged or repeated", i, n))
				return
			}
			seen[i] = true
			got.Add(1)
		}
	}()
	buf := make([]byte, 2000)
	for i := 0; i < count; i++ {
		if _, err := src.WriteTo(datagram(buf, i), to); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i%256 == 255 || i == count-1 {
			deadline := time.Now().Add(10 * time.Second) // hang guard
			for got.Load() <= int64(i) && time.Now().Before(deadline) && len(bad) == 0 {
				time.Sleep(100 * time.Microsecond)
			}
			if got.Load() <= int64(i) {
				break
			}
		}
	}
	dst.SetReadDeadline(time.Now()) // end the reader if anything is missing
	wg.Wait()
	if len(bad) > 0 || got.Load() != int64(count) {
		t.Fatalf("%d of %d datagrams arrived whole; %v", got.Load(), count, bad)
	}
	return from
}

// udpGSO sends with UDP_SEGMENT (one send, many datagrams): with the
// offload backend the NAT gets UDP super-packets (USO, Linux 6.2+) and
// passes them on whole; the receiver must still see each datagram.
func udpGSO(t *testing.T, l *lab) {
	const segSize, perSend, sends = 1200, 40, 25
	host, err := ns.ListenPacket(l.inside)("udp4", netip.AddrPortFrom(hostA, 7100).String())
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	server, err := ns.ListenPacket(l.outside)("udp4", netip.AddrPortFrom(srv1, 7101).String())
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	bigBuffers(t, server)
	rc, _ := host.(*net.UDPConn).SyscallConn()
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, segSize) })
	if serr != nil {
		t.Skipf("UDP_SEGMENT: %v", serr)
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(srv1, 7101))
	before := l.engine.Count(nat.Forward)
	want := make(map[[32]byte]bool)
	for s := range sends {
		b := make([]byte, segSize*perSend)
		rng := rand.NewChaCha8(seed(byte(10 + s)))
		rng.Read(b)
		for k := 0; k < perSend; k++ {
			want[sha256.Sum256(b[k*segSize:(k+1)*segSize])] = true
		}
		if _, err := host.WriteTo(b, to); err != nil {
			if errno, ok := err.(*net.OpError); ok && errno.Err == syscall.EIO {
				t.Skipf("UDP_SEGMENT send: %v", err)
			}
			t.Fatalf("send: %v", err)
		}
		buf := make([]byte, 65536)
		server.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
		for k := 0; k < perSend; k++ {
			n, _, err := server.ReadFrom(buf)
			if err != nil {
				t.Fatalf("send %d: %d of %d datagrams: %v", s, k, perSend, err)
			}
			sum := sha256.Sum256(buf[:n])
			if n != segSize || !want[sum] {
				t.Fatalf("send %d: a damaged or repeated datagram of %d bytes", s, n)
			}
			delete(want, sum)
		}
	}
	if len(want) != 0 {
		t.Fatalf("%d datagrams missing", len(want))
	}
	// With USO, fewer packets than datagrams crossed the NAT.
	t.Logf("%d datagrams crossed the NAT as %d packets", sends*perSend, l.engine.Count(nat.Forward)-before)
}
