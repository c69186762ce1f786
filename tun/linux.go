//go:build linux

package tun

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/songgao/water"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/gonat/gonat/ns"
)

// Config says where a TUN device is created and how its namespace routes
// through it.
type Config struct {
	Namespace string         // existing named namespace; "" means the current one
	Name      string         // interface name; may hold one %d for the kernel to fill ("gnat%d")
	MTU       int            // 0: DefaultMTU
	Addresses []netip.Prefix // addresses put on the device (host address + its network), IPv4 or IPv6
	// Routes are sent through the device; a zero-length prefix
	// (0.0.0.0/0, ::/0) is the namespace's default route of its family.
	// The device carries IPv6 only when an address or route is IPv6.
	Routes []netip.Prefix
	// Backend is BackendOffload, BackendWater, or "" (BackendAuto).
	Backend string
	// Queues is how many queues the device has (IFF_MULTI_QUEUE, offload
	// backend only): 0 or 1 is one. With more, Create returns a
	// MultiQueue; BackendAuto falling back to water makes one.
	Queues int
	// SteerByCPU, with Queues > 1, sends each packet the kernel routes
	// into the device to queue (CPU it was sent from) mod Queues rather
	// than by flow hash, so that a reader of queue q on CPU q handles
	// the packets sent on CPU q where they were sent (offload backend).
	// TCP segments still go by flow hash: a connection's segments leave
	// from several CPUs and must not be reordered between queues.
	SteerByCPU bool
	// Polled says the device will only be polled (Poller.TryRead, and a
	// Waiter to sleep), as nat's per-CPU and busy-poll readers do,
	// never Read (offload backend). Its descriptor then stays out of Go's
	// netpoller, whose epoll is edge-triggered: every packet the kernel
	// queued would wake a thread idling in it, for nothing, taking CPU
	// from the hosts (README, Performance). Read on it returns
	// ErrPolled when there is nothing to read.
	Polled bool
	// FallbackLog receives the one line BackendAuto writes when it falls
	// back to water: nil means os.Stderr; io.Discard silences it.
	FallbackLog io.Writer
}

// waterDevice is the first Linux backend: songgao/water, one packet per
// read/write syscall. water opens /dev/net/tun non-blocking, so the fd is
// in Go's netpoller and Close wakes a blocked Read.
type waterDevice struct {
	ifce *water.Interface
	name string
	mtu  int

	closeOnce sync.Once
	closeErr  error
}

// Create makes a TUN device inside cfg.Namespace, puts its addresses and
// routes there, and brings it up. The device (and with it its addresses and
// routes) disappears when it is closed or the process exits.
func Create(cfg Config) (Device, error) {
	if d, handled, err := createBackend(cfg); handled {
		return d, err
	}
	// BackendAuto falling back to water falls back to one queue too (it
	// has said why); asked for by name, water cannot have more.
	if cfg.Queues > 1 && cfg.Backend == BackendWater {
		return nil, fmt.Errorf("TUN device with %d queues: the water backend has one; multi-queue needs the offload backend", cfg.Queues)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Name == "" {
		cfg.Name = "gnat%d"
	}
	var dev *waterDevice
	setup := func() error {
		ifce, err := water.New(water.Config{
			DeviceType:             water.TUN,
			PlatformSpecificParams: water.PlatformSpecificParams{Name: cfg.Name},
		})
		if err != nil {
			if errors.Is(err, fs.ErrPermission) || errors.Is(err, os.ErrPermission) {
				return fmt.Errorf("create TUN device: %w (gonat needs root or CAP_NET_ADMIN)", err)
			}
			return fmt.Errorf("create TUN device %q: %w", cfg.Name, err)
		}
		dev = &waterDevice{ifce: ifce, name: ifce.Name(), mtu: cfg.MTU}
		if err := configure(dev.name, cfg); err != nil {
			ifce.Close()
			return err
		}
		return nil
	}
	if err := inNamespace(cfg.Namespace, setup); err != nil {
		return nil, err
	}
	return dev, nil
}

// inNamespace runs fn in the named namespace, or right here for "": a
// TUN device belongs to the namespace of the thread that creates it.
func inNamespace(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	return ns.Do(name, fn)
}

// configure runs inside the device's namespace.
func configure(name string, cfg Config) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
		return fmt.Errorf("set MTU %d on %s: %w", cfg.MTU, name, err)
	}
	// A TUN's default txqueuelen (500) drops bursts the engine would
	// otherwise absorb; the kernel's veth default is 1000.
	_ = netlink.LinkSetTxQLen(link, 1000)
	if err := setIPv6(name, cfg.hasIPv6()); err != nil {
		return err
	}
	for _, p := range cfg.Addresses {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			// A TUN link has no neighbours to ask: duplicate address
			// detection would only hold the address tentative (unusable
			// as a source) for a second.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, a); err != nil {
			return fmt.Errorf("add address %s to %s: %w", p, name, err)
		}
	}
	// No qdisc (noqueue), set before the link comes up: a TUN device
	// never stops its queues (a full ring drops), so a qdisc never holds
	// a packet, and the sender's CPU hands each one to the device as it
	// did through an empty one. The default would be, on a multi-queue
	// device, a pfifo_fast of 3 x txqueuelen slots on each of the 256
	// transmit queues it is given: 6 MB cleared per device, most of the
	// time a lab of many NATs took to come up.
	root := &netlink.GenericQdisc{QdiscType: "noqueue",
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Parent: netlink.HANDLE_ROOT}}
	if err := netlink.QdiscReplace(root); err != nil {
		return fmt.Errorf("qdisc on %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	for _, r := range cfg.Routes {
		dst := &net.IPNet{IP: r.Masked().Addr().AsSlice(), Mask: net.CIDRMask(r.Bits(), r.Addr().BitLen())}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("add route %s via %s: %w", r, name, err)
		}
	}
	return nil
}

// hasIPv6 reports whether the device carries IPv6: an IPv6 address or
// route.
func (cfg Config) hasIPv6() bool {
	for _, ps := range [][]netip.Prefix{cfg.Addresses, cfg.Routes} {
		for _, p := range ps {
			if p.Addr().Is6() {
				return true
			}
		}
	}
	return false
}

// setIPv6 turns IPv6 on the device on or off, before it comes up; it
// runs in the device's namespace (the files are per namespace). Off, a
// port sends nothing gonat would have to drop. On, it still runs no
// neighbour discovery: no router advertisements accepted (so no router
// solicitations sent), no duplicate address detection, and no link-local
// address generated (routes name the device, not a next hop).
func setIPv6(name string, on bool) error {
	dir := "/proc/sys/net/ipv6/conf/" + name + "/"
	if !on {
		// Best effort: a kernel without IPv6 has no such file.
		_ = os.WriteFile(dir+"disable_ipv6", []byte("1"), 0o644)
		return nil
	}
	for _, kv := range [][2]string{{"accept_ra", "0"}, {"accept_dad", "0"}, {"addr_gen_mode", "1"}, {"disable_ipv6", "0"}} {
		if err := os.WriteFile(dir+kv[0], []byte(kv[1]), 0o644); err != nil {
			return fmt.Errorf("IPv6 on %s: %w", name, err)
		}
	}
	return nil
}

func (d *waterDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.ifce.Read(bufs[0][offset:])
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			return 0, ErrClosed
		}
		return 0, err
	}
	sizes[0] = n
	return 1, nil
}

func (d *waterDevice) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		if _, err := d.ifce.Write(b[offset:]); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return i, ErrClosed
			}
			return i, err
		}
	}
	return len(bufs), nil
}

func (d *waterDevice) BatchSize() int { return 1 }
func (d *waterDevice) MTU() int       { return d.mtu }
func (d *waterDevice) Name() string   { return d.name }

func (d *waterDevice) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.ifce.Close() })
	return d.closeErr
}
