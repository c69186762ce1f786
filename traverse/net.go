package traverse

import (
	"context"
	"net"
	"net/netip"
)

// Net is where sockets come from. DefaultNet opens them in the process's
// own network namespace; gonat passes one that opens them in another (see
// NetIn).
type Net interface {
	// ListenPacket opens a UDP socket, as net.ListenPacket.
	ListenPacket(network, address string) (net.PacketConn, error)
	// ListenTCP opens a TCP listener on address with SO_REUSEADDR and
	// SO_REUSEPORT set, so that DialTCP can bind the same local port.
	ListenTCP(ctx context.Context, address string) (net.Listener, error)
	// DialTCP connects from local to remote with SO_REUSEADDR and
	// SO_REUSEPORT set, so that it can share local's port with a listener
	// and with other connections.
	DialTCP(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error)
}

// DefaultNet returns the Net of the real net package in the current
// network namespace.
func DefaultNet() Net { return defaultNet{} }

type defaultNet struct{}

func (defaultNet) ListenPacket(network, address string) (net.PacketConn, error) {
	return net.ListenPacket(network, address)
}

func (defaultNet) ListenTCP(ctx context.Context, address string) (net.Listener, error) {
	lc := net.ListenConfig{Control: reuseControl}
	return lc.Listen(ctx, "tcp", address)
}

func (defaultNet) DialTCP(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Control: reuseControl}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(local)
	}
	return d.DialContext(ctx, "tcp", remote.String())
}

// NetIn returns a Net whose sockets base (DefaultNet when nil) opens inside
// run, which calls its argument and returns its error. Sockets keep the
// network namespace they were created in, so for a named namespace:
//
//	traverse.NetIn(func(fn func() error) error { return ns.Do(name, fn) }, nil)
//
// DialTCP runs the whole connect inside run.
func NetIn(run func(fn func() error) error, base Net) Net {
	if base == nil {
		base = DefaultNet()
	}
	return runNet{run: run, base: base}
}

type runNet struct {
	run  func(fn func() error) error
	base Net
}

func (n runNet) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.run(func() error {
		var err error
		c, err = n.base.ListenPacket(network, address)
		return err
	})
	return c, err
}

func (n runNet) ListenTCP(ctx context.Context, address string) (net.Listener, error) {
	var l net.Listener
	err := n.run(func() error {
		var err error
		l, err = n.base.ListenTCP(ctx, address)
		return err
	})
	return l, err
}

func (n runNet) DialTCP(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := n.run(func() error {
		var err error
		c, err = n.base.DialTCP(ctx, local, remote)
		return err
	})
	return c, err
}

// routeSource returns the local address the kernel would send from to reach
// dst, by connecting a throwaway UDP socket from n (no packet is sent). It
// returns the zero Addr when n's sockets are not kernel sockets.
func routeSource(n Net, dst netip.Addr) netip.Addr {
	network, wildcard := "udp4", "0.0.0.0:0"
	if !dst.Is4() {
		network, wildcard = "udp6", "[::]:0"
	}
	c, err := n.ListenPacket(network, wildcard)
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	return connectedSource(c, dst)
}
