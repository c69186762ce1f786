package ns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
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

// Sysctl writes a /proc/sys value inside the named namespace (net.* keys
// are per namespace), e.g. Sysctl(n, "net/ipv4/ip_forward", "1").
func Sysctl(nsName, key, value string) error {
	return Do(nsName, func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
}

// VethPeer links namespace a (device nameA) to namespace b (device nameB)
// with a veth pair and brings both ends up.
func VethPeer(a, nameA, b, nameB string) error {
	hb, err := netns.GetFromName(b)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, b)
	}
	defer hb.Close()
	err = Do(a, func() error {
		la := netlink.NewLinkAttrs()
		la.Name = nameA
		v := &netlink.Veth{LinkAttrs: la, PeerName: nameB, PeerNamespace: netlink.NsFd(int(hb))}
		if err := netlink.LinkAdd(v); err != nil {
			return fmt.Errorf("veth %s/%s - %s/%s: %w", a, nameA, b, nameB, err)
		}
		return netlink.LinkSetUp(v)
	})
	if err != nil {
		return err
	}
	return Do(b, func() error {
		l, err := netlink.LinkByName(nameB)
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
}

// AddAddr puts an address on a device in the named namespace; an IPv6
// one without duplicate address detection.
func AddAddr(nsName, dev string, p netip.Prefix) error {
	return Do(nsName, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		a := &netlink.Addr{IPNet: prefixToIPNet(p)}
		if p.Addr().Is6() {
			// Usable at once: the lab hands out its addresses itself, so
			// duplicate address detection would only delay them.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(l, a); err != nil {
			return fmt.Errorf("address %s on %s in %s: %w", p, dev, nsName, err)
		}
		return nil
	})
}

// AddRoute routes dst through dev in the named namespace; with a valid
// gw, through that next hop, reachable on dev even if no prefix covers
// it (onlink).
func AddRoute(nsName, dev string, dst netip.Prefix, gw netip.Addr) error {
	return Do(nsName, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixToIPNet(dst)}
		if gw.IsValid() {
			r.Gw = gw.AsSlice()
			r.Flags = int(netlink.FLAG_ONLINK)
		} else {
			r.Scope = netlink.SCOPE_LINK
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s in %s: %w", dst, dev, nsName, err)
		}
		return nil
	})
}

// DelLocalAddrs removes addresses AddLocalAddrs put on loopback.
func DelLocalAddrs(nsName string, addrs ...netip.Prefix) error {
	return Do(nsName, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		for _, p := range addrs {
			netlink.AddrDel(lo, &netlink.Addr{IPNet: prefixToIPNet(p)})
		}
		return nil
	})
}

// DelRoute removes the route to dst through dev that AddRoute made in
// the named namespace; a route that is not there is no error.
func DelRoute(nsName, dev string, dst netip.Prefix) error {
	return Do(nsName, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixToIPNet(dst)}
		if err := netlink.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("route %s via %s in %s: %w", dst, dev, nsName, err)
		}
		return nil
	})
}

// MoveLink moves device dev of namespace from into namespace to, renamed
// name on the way (a device is renamed only while down, so it goes down
// first). Its addresses and routes stay behind: in to it arrives down,
// with none.
func MoveLink(from, dev, to, name string) error {
	target, err := netns.GetFromName(to)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, to)
	}
	defer target.Close()
	return Do(from, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", dev, from, err)
		}
		if err := netlink.LinkSetDown(l); err != nil {
			return fmt.Errorf("down %s in %s: %w", dev, from, err)
		}
		if name != dev {
			if err := netlink.LinkSetName(l, name); err != nil {
				return fmt.Errorf("rename %s to %s in %s: %w", dev, name, from, err)
			}
		}
		if err := netlink.LinkSetNsFd(l, int(target)); err != nil {
			return fmt.Errorf("move %s from %s to %s: %w", name, from, to, err)
		}
		return nil
	})
}

// LinkUp brings device dev of the named namespace up, IPv4 only (its
// IPv6 off: nothing gonat would have to drop leaves it).
func LinkUp(nsName, dev string) error {
	return Do(nsName, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", dev, nsName, err)
		}
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte("1"), 0o644)
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("up %s in %s: %w", dev, nsName, err)
		}
		return nil
	})
}
