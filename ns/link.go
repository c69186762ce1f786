package ns

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

func setLoopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// AddLocalAddrs puts addresses on the loopback device of the named
// namespace, so its kernel answers for them: how "public servers" get their
// addresses without any further link. (Loopback rather than a dummy
// device: dummy is a module some kernels, this CI's among them, lack.)
func AddLocalAddrs(nsName string, addrs ...netip.Prefix) error {
	return Do(nsName, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		for _, p := range addrs {
			if err := netlink.AddrReplace(lo, &netlink.Addr{IPNet: prefixToIPNet(p)}); err != nil {
				return fmt.Errorf("add address %s in %s: %w", p, nsName, err)
			}
		}
		return netlink.LinkSetUp(lo)
	})
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}
