//go:build linux

package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gonat/gonat/tun/offload"
)

// Backends for Config.Backend.
const (
	// BackendAuto (or "") is BackendOffload where the kernel accepts
	// TUNSETOFFLOAD, BackendWater elsewhere (with one line on
	// Config.FallbackLog).
	BackendAuto = "auto"
	// BackendOffload opens the device with IFF_VNET_HDR and TSO/USO and
	// checksum offload: reads return GSO super-packets of up to 64 KB
	// with partial checksums, and writes pass them on whole. It
	// implements VirtioDevice.
	BackendOffload = "offload"
	// BackendWater is songgao/water: one plain packet per syscall.
	BackendWater = "water"
)

// Backends lists the values Config.Backend accepts, for flags and docs.
func Backends() []string { return []string{BackendAuto, BackendOffload, BackendWater} }

// Offloads asked of the kernel (TUNSETOFFLOAD). The kernel then hands us
// TCP super-packets (TSO) and leaves checksums partial (CSUM); USO
// (Linux 6.2+) does the same for UDP sockets that use UDP_SEGMENT, and
// is dropped where the kernel refuses it.
const (
	offloadBase = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	offloadUSO  = unix.TUN_F_USO4 | unix.TUN_F_USO6
)

// offloadBatch is the most packets one Read returns. A TSO super-packet
// fills a 64 KB buffer, so the router's buffers for one device are
// offloadBatch*64 KB of address space (touched only as far as packets
// reach).
const offloadBatch = 16

// errNoOffload marks the failures that mean "this kernel has no TUN
// offload", after which BackendAuto uses water.
var errNoOffload = errors.New("TUN offload unsupported")

// offloadDevice is the IFF_VNET_HDR backend. The fd is non-blocking in an
// os.File, so it sits in Go's netpoller: a Read waiting for packets parks
// its goroutine, and Close wakes it. Read takes packets until the device
// has no more (EAGAIN) or the batch is full, within one poller wake-up.
// A Config.Polled device is not in the netpoller; only TryRead reads it.
type offloadDevice struct {
	file     *os.File
	rc       syscall.RawConn
	name     string
	mtu      int
	offloads int // TUN_F_* accepted by the kernel

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// The raw read and write callbacks get their arguments through
	// these fields, so no closure is allocated per call.
	readMu sync.Mutex
	rd     struct {
		bufs   [][]byte
		sizes  []int
		off    int
		n      int
		err    error
		nowait bool // TryRead: return on EAGAIN even with nothing read
		fn     func(fd uintptr) bool
	}
	fd      int      // for PollFd; valid until Close
	polled  bool     // Config.Polled: not in the netpoller, so Read cannot wait
	queues  []Device // with Config.Queues > 1, on the first queue: all of them
	writeMu sync.Mutex
	wr      struct {
		bufs    [][]byte
		off     int
		next    int
		written int
		err     error
		fn      func(fd uintptr) bool
	}
}

var (
	_ VirtioDevice = (*offloadDevice)(nil)
	_ Poller       = (*offloadDevice)(nil)
)

// autoState remembers what BackendAuto found out on this kernel.
var autoState struct {
	sync.Mutex
	decided, offload bool
}

// createBackend is Create for the backends of this file. handled is
// false when the water backend is to make the device: BackendWater, or
// BackendAuto on a kernel without TUN offload.
func createBackend(cfg Config) (d Device, handled bool, err error) {
	switch cfg.Backend {
	case BackendWater:
		return nil, false, nil
	case BackendOffload:
		d, err := createOffload(cfg)
		return d, true, err
	case "", BackendAuto:
	default:
		return nil, true, fmt.Errorf("unknown TUN backend %q (want offload, water or auto)", cfg.Backend)
	}
	autoState.Lock()
	defer autoState.Unlock()
	if autoState.decided && !autoState.offload {
		return nil, false, nil
	}
	d, err = createOffload(cfg)
	if errors.Is(err, errNoOffload) {
		autoState.decided, autoState.offload = true, false
		sayFallback(cfg, err)
		return nil, false, nil
	}
	if err == nil {
		autoState.decided, autoState.offload = true, true
	}
	return d, true, err
}

// sayFallback writes BackendAuto's one line about falling back to water,
// for the reason err, to cfg.FallbackLog.
func sayFallback(cfg Config, err error) {
	w := cfg.FallbackLog
	if w == nil {
		w = os.Stderr
	}
	queues := ""
	if cfg.Queues > 1 {
		queues = ", one queue per device"
	}
	fmt.Fprintf(w, "gonat: TUN offload unavailable (%v); using the water backend%s\n", err, queues)
}

// createOffload makes an offload device in cfg.Namespace and configures
// it as Create does.
func createOffload(cfg Config) (Device, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Name == "" {
		cfg.Name = "gnat%d"
	}
	queues := max(cfg.Queues, 1)
	var dev *offloadDevice
	setup := func() error {
		d, err := openOffload(cfg.Name, queues > 1, cfg.Polled)
		if err != nil {
			return err
		}
		d.mtu = cfg.MTU
		if queues > 1 {
			d.queues = []Device{d}
			for range queues - 1 {
				q, err := openOffload(d.name, true, cfg.Polled)
				if err != nil {
					d.Close()
					return fmt.Errorf("TUN device %s: queue %d: %w", d.name, len(d.queues), err)
				}
				q.mtu = d.mtu
				d.queues = append(d.queues, q)
			}
		}
		if err := configure(d.name, cfg); err != nil {
			d.Close()
			return err
		}
		if cfg.SteerByCPU && queues > 1 {
			if err := steerByCPU(d.fd); err != nil {
				d.Close()
				return fmt.Errorf("TUN device %s: %w", d.name, err)
			}
		}
		dev = d
		return nil
	}
	if err := inNamespace(cfg.Namespace, setup); err != nil {
		return nil, err
	}
	if dev.queues != nil {
		return multiQueueDevice{dev}, nil
	}
	return dev, nil
}

// multiQueueDevice is the first queue of a device with several; only it
// implements MultiQueue.
type multiQueueDevice struct{ *offloadDevice }

var _ MultiQueue = multiQueueDevice{}

// Queues implements MultiQueue.
func (d multiQueueDevice) Queues() []Device { return d.queues }

// openOffload opens /dev/net/tun in the calling thread's namespace and
// makes TUN device name (may hold %d) with a virtio-net header and
// offloads; polled keeps it out of the netpoller (Config.Polled).
func openOffload(name string, multiQueue, polled bool) (*offloadDevice, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("create TUN device: open /dev/net/tun: %w (gonat needs root or CAP_NET_ADMIN)", err)
		}
		return nil, fmt.Errorf("create TUN device: open /dev/net/tun: %w", err)
	}
	fail := func(err error) (*offloadDevice, error) {
		unix.Close(fd)
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fail(fmt.Errorf("create TUN device %q: %w", name, err))
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if multiQueue {
		flags |= unix.IFF_MULTI_QUEUE
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		switch {
		case errors.Is(err, unix.EPERM):
			return fail(fmt.Errorf("create TUN device: %w (gonat needs root or CAP_NET_ADMIN)", err))
		case errors.Is(err, unix.EINVAL):
			return fail(fmt.Errorf("%w: TUNSETIFF with IFF_VNET_HDR: %v", errNoOffload, err))
		}
		return fail(fmt.Errorf("create TUN device %q: %w", name, err))
	}
	// 10 is the kernel's default; set it anyway, so a kernel with
	// another default cannot shift every packet.
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, offload.VirtioHdrLen); err != nil {
		return fail(fmt.Errorf("%w: TUNSETVNETHDRSZ: %v", errNoOffload, err))
	}
	offloads := offloadBase | offloadUSO
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
		offloads = offloadBase // before Linux 6.2: no USO
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
			return fail(fmt.Errorf("%w: TUNSETOFFLOAD: %v", errNoOffload, err))
		}
	}
	// os.NewFile puts a descriptor that is non-blocking by then into the
	// netpoller, and leaves a blocking one out: a polled device is made
	// non-blocking only once wrapped.
	var f *os.File
	if polled {
		f = os.NewFile(uintptr(fd), "/dev/net/tun")
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		err = fmt.Errorf("TUN device %s: set non-blocking: %w", ifr.Name(), err)
		if f != nil {
			f.Close() // f owns fd now
			return nil, err
		}
		return fail(err)
	}
	if f == nil {
		f = os.NewFile(uintptr(fd), "/dev/net/tun")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	d := &offloadDevice{file: f, rc: rc, name: ifr.Name(), offloads: offloads, fd: fd, polled: polled}
	d.rd.fn = d.readRaw
	d.wr.fn = d.writeRaw
	return d, nil
}

// Read implements Device. Packet i's virtio-net header lands in
// bufs[i][offset-offload.VirtioHdrLen:offset] (offset must leave room for it),
// the packet in bufs[i][offset:], which must hold 65535 bytes for a
// super-packet to fit.
func (d *offloadDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return d.read(bufs, sizes, offset, false)
}

// TryRead implements Poller: Read that returns (0, nil) at once when no
// packet is waiting.
func (d *offloadDevice) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	return d.read(bufs, sizes, offset, true)
}

// PollFd implements Poller.
func (d *offloadDevice) PollFd() int { return d.fd }

func (d *offloadDevice) read(bufs [][]byte, sizes []int, offset int, nowait bool) (int, error) {
	if offset < offload.VirtioHdrLen {
		return 0, fmt.Errorf("tun: read offset %d leaves no room for the %d-byte virtio-net header", offset, offload.VirtioHdrLen)
	}
	d.readMu.Lock()
	defer d.readMu.Unlock()
	r := &d.rd
	r.bufs, r.sizes, r.off, r.n, r.err, r.nowait = bufs, sizes, offset, 0, nil, nowait
	err := d.rc.Read(r.fn)
	n, rerr := r.n, r.err
	r.bufs, r.sizes = nil, nil
	if err != nil {
		if d.closed.Load() {
			return 0, ErrClosed
		}
		if d.polled && !nowait {
			return 0, ErrPolled // the poller's "waiting for unsupported file type"
		}
		return 0, err
	}
	if n == 0 && rerr != nil {
		if d.closed.Load() {
			return 0, ErrClosed
		}
		return 0, rerr
	}
	return n, nil
}

// readRaw runs with the fd ready or not: it reads packets until the
// batch is full or the device is empty, and asks the poller to wait
// (returns false) only when it got nothing yet.
func (d *offloadDevice) readRaw(fd uintptr) bool {
	r := &d.rd
	for r.n < len(r.bufs) {
		n, err := unix.Read(int(fd), r.bufs[r.n][r.off-offload.VirtioHdrLen:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return r.n > 0 || r.nowait
		case err != nil:
			r.err = err
			return true
		case n < offload.VirtioHdrLen:
			continue // cannot happen: the kernel always writes the header
		}
		r.sizes[r.n] = n - offload.VirtioHdrLen
		r.n++
	}
	return true
}

// Write implements Device: each bufs[i][offset-offload.VirtioHdrLen:] is one
// virtio-net header and its packet. A packet the kernel refuses does not
// stop the rest; Write returns how many were taken and the first error.
func (d *offloadDevice) Write(bufs [][]byte, offset int) (int, error) {
	if offset < offload.VirtioHdrLen {
		return 0, fmt.Errorf("tun: write offset %d leaves no room for the %d-byte virtio-net header", offset, offload.VirtioHdrLen)
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	w := &d.wr
	w.bufs, w.off, w.next, w.written, w.err = bufs, offset, 0, 0, nil
	err := d.rc.Write(w.fn)
	n, werr := w.written, w.err
	w.bufs = nil
	if err != nil {
		if d.closed.Load() {
			return n, ErrClosed
		}
		return n, err
	}
	return n, werr
}

func (d *offloadDevice) writeRaw(fd uintptr) bool {
	w := &d.wr
	for w.next < len(w.bufs) {
		_, err := unix.Write(int(fd), w.bufs[w.next][w.off-offload.VirtioHdrLen:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN && !d.polled:
			return false // wait in the netpoller; a polled device cannot
		case err == nil:
			w.written++
		case w.err == nil:
			w.err = err
		}
		w.next++
	}
	return true
}

// VirtioHdr implements VirtioDevice.
func (d *offloadDevice) VirtioHdr() bool { return true }

// USO implements VirtioDevice: the kernel took TUN_F_USO4.
func (d *offloadDevice) USO() bool { return d.offloads&unix.TUN_F_USO4 != 0 }

func (d *offloadDevice) BatchSize() int { return offloadBatch }
func (d *offloadDevice) MTU() int       { return d.mtu }
func (d *offloadDevice) Name() string   { return d.name }

// Close implements Device: a Read waiting in the poller returns
// ErrClosed, and the device goes with the fd.
func (d *offloadDevice) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.closeErr = d.file.Close()
		for _, q := range d.queues[min(1, len(d.queues)):] {
			q.Close()
		}
	})
	return d.closeErr
}
