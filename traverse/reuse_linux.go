//go:build linux

package traverse

import (
	"net"
	"net/netip"
	"syscall"
)

// reuseControl sets SO_REUSEADDR and SO_REUSEPORT on a socket before bind.
func reuseControl(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// connectedSource connects the UDP socket c to dst:9 (discard; nothing is
// sent) and reads back the source address routing chose.
func connectedSource(c net.PacketConn, dst netip.Addr) netip.Addr {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return netip.Addr{}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return netip.Addr{}
	}
	var src netip.Addr
	_ = rc.Control(func(fd uintptr) {
		var sa syscall.Sockaddr
		if dst.Is4() {
			sa = &syscall.SockaddrInet4{Port: 9, Addr: dst.As4()}
		} else {
			sa = &syscall.SockaddrInet6{Port: 9, Addr: dst.As16()}
		}
		if syscall.Connect(int(fd), sa) != nil {
			return
		}
		got, err := syscall.Getsockname(int(fd))
		if err != nil {
			return
		}
		switch a := got.(type) {
		case *syscall.SockaddrInet4:
			src = netip.AddrFrom4(a.Addr)
		case *syscall.SockaddrInet6:
			src = netip.AddrFrom16(a.Addr)
		}
	})
	return src
}
