//go:build !linux

package traverse

import (
	"net"
	"net/netip"
	"syscall"
)

// reuseControl is a no-op off Linux: TCP punching needs SO_REUSEPORT with
// Linux semantics.
func reuseControl(_, _ string, _ syscall.RawConn) error { return nil }

func connectedSource(net.PacketConn, netip.Addr) netip.Addr { return netip.Addr{} }
