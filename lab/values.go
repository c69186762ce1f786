package lab

// Decoding one TOML value of a topology file (a string, a list of
// addresses, an inside network, a behaviour setting) with a message
// that names what was wanted and what was given.

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gonat/gonat/table"
)

// describe names a decoded TOML value's type (and value) for messages.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "string " + strconv.Quote(x)
	case int64:
		return "integer " + strconv.FormatInt(x, 10)
	case float64:
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date/time"
	}
	return fmt.Sprintf("a %T", v)
}

// str returns m[key] when it is a string; ok is false when the key is
// absent or (reported) not a string.
func (p *parser) str(m map[string]any, key, who string, line int, example string) (string, bool) {
	v, ok := m[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		p.errorf(line, "%s: %s: want a string such as %q, got %s", who, key, example, describe(v))
		return "", false
	}
	return s, true
}

// Families an address list may hold.
const (
	only4 = iota
	only6
	both
)

// addrList decodes a string or an array of strings as addresses of the
// families fam allows, reporting each bad or repeated one. ok is false if
// any was bad.
func (p *parser) addrList(v any, who, key string, line int, example string, fam int) ([]netip.Addr, bool) {
	var items []any
	switch x := v.(type) {
	case string:
		items = []any{x}
	case []any:
		items = x
	default:
		p.errorf(line, "%s: %s: want an address such as %q or an array of them, got %s", who, key, example, describe(v))
		return nil, false
	}
	if len(items) == 0 {
		p.errorf(line, "%s: %s: empty array: want at least one address such as %q", who, key, example)
		return nil, false
	}
	ok := true
	var out []netip.Addr
	for _, it := range items {
		s, isStr := it.(string)
		if !isStr {
			p.errorf(line, "%s: %s: want address strings such as %q, got %s", who, key, example, describe(it))
			ok = false
			continue
		}
		var a netip.Addr
		var err error
		switch {
		case fam == only6:
			a, err = parseIPv6(s)
		case fam == both && strings.Contains(s, ":"):
			a, err = parseIPv6(s)
		default:
			a, err = parseIPv4(s, example, key)
		}
		if err != nil {
			p.errorf(line, "%s: %s %q: %v", who, key, s, err)
			ok = false
			continue
		}
		if slicesContains(out, a) {
			p.errorf(line, "%s: %s %s: given twice", who, key, a)
			continue
		}
		out = append(out, a)
	}
	return out, ok
}

func slicesContains(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}

// errExternal6 is why external takes no IPv6 address.
var errExternal6 = errors.New("an IPv6 address: give it with external6 (and the NAT an inside6 network)")

func parseIPv4(s, example, key string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if pf, perr := netip.ParsePrefix(s); perr == nil {
			if pf.Addr().Is6() && key == keyExternal {
				return netip.Addr{}, errExternal6
			}
			return netip.Addr{}, fmt.Errorf("want a plain address such as %s, without a /prefix length", example)
		}
		return netip.Addr{}, fmt.Errorf("want an IPv4 address such as %s", example)
	}
	if !a.Is4() {
		return netip.Addr{}, errExternal6
	}
	for _, r := range reserved {
		if r.p.Contains(a) {
			return netip.Addr{}, fmt.Errorf("in %s: want a unicast address such as %s", r.what, example)
		}
	}
	return a, nil
}

// parseIPv6 reads an IPv6 address of a lab: a unicast address in the
// documentation prefix or in fd00::/8 (where the address plan puts it in
// a network is checked later).
func parseIPv6(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if _, perr := netip.ParsePrefix(s); perr == nil {
			return netip.Addr{}, errors.New("want a plain address such as 2001:db8::10, without a /prefix length")
		}
		return netip.Addr{}, errors.New("want an IPv6 address such as 2001:db8::10")
	}
	switch {
	case a.Is4():
		return netip.Addr{}, errors.New("an IPv4 address: want an IPv6 one such as 2001:db8::10")
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("an IPv4-mapped address: give IPv4 as %s", a.Unmap())
	case a.Zone() != "":
		return netip.Addr{}, errors.New("has a zone: want a global address such as 2001:db8::10")
	case !doc6.Contains(a) && !ula6.Contains(a):
		return netip.Addr{}, fmt.Errorf("outside %s (documentation, public) and %s (unique local, inside)", doc6, ula6)
	}
	return a, nil
}

// The IPv6 ranges of a lab: public addresses from the documentation
// prefix, inside networks from it or from the unique local range.
var (
	doc6 = netip.MustParsePrefix("2001:db8::/32")
	ula6 = netip.MustParsePrefix("fd00::/8")
)

// parseInside6 reads a NAT's inside6 network.
func parseInside6(s string) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil && a.Is6() {
			return netip.Prefix{}, fmt.Errorf("want a network with its prefix length, e.g. %s", netip.PrefixFrom(a, 64).Masked())
		}
		return netip.Prefix{}, errors.New("want an IPv6 network such as fd00:1::/64")
	}
	switch {
	case !pf.Addr().Is6() || pf.Addr().Is4In6():
		return netip.Prefix{}, errors.New("want an IPv6 network such as fd00:1::/64 (the IPv4 one is inside)")
	case pf.Addr().Zone() != "":
		return netip.Prefix{}, errors.New("has a zone: want a network such as fd00:1::/64")
	case pf.Masked() != pf:
		return netip.Prefix{}, fmt.Errorf("has host bits set: want the network address %s (the NAT itself takes %s)", pf.Masked(), pf.Masked().Addr().Next())
	case pf.Bits() < 48 || pf.Bits() > 124:
		return netip.Prefix{}, errors.New("want a prefix length from /48 to /124, e.g. /64")
	case pf.Overlaps(public6Pool):
		return netip.Prefix{}, fmt.Errorf("overlaps %s, the public network's IPv6 space", public6Pool)
	case pf.Overlaps(nptv6Pool):
		return netip.Prefix{}, fmt.Errorf("overlaps %s, the external prefixes of nptv6 NATs", nptv6Pool)
	case !doc6.Overlaps(pf) && !ula6.Overlaps(pf):
		return netip.Prefix{}, fmt.Errorf("outside %s and %s: want a range such as fd00:1::/64", ula6, doc6)
	}
	return pf, nil
}

func parseInside(s string) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			if !a.Is4() {
				return netip.Prefix{}, errors.New("an IPv6 address: IPv6 networks go in inside6; want an IPv4 network such as 10.0.1.0/24")
			}
			return netip.Prefix{}, fmt.Errorf("want a network with its prefix length, e.g. %s", netip.PrefixFrom(a, 24).Masked())
		}
		return netip.Prefix{}, errors.New("want an IPv4 network such as 10.0.1.0/24")
	}
	if !pf.Addr().Is4() {
		return netip.Prefix{}, errors.New("an IPv6 network: give it with inside6; inside is the IPv4 network")
	}
	if m := pf.Masked(); m != pf {
		return netip.Prefix{}, fmt.Errorf("has host bits set: want the network address %s (the NAT itself takes %s)", m, m.Addr().Next())
	}
	if pf.Bits() > 30 {
		return netip.Prefix{}, errors.New("too small: want /30 or shorter (the NAT takes .1, hosts start at .2)")
	}
	for _, r := range reserved {
		if r.p.Overlaps(pf) {
			return netip.Prefix{}, fmt.Errorf("overlaps %s: want a private range such as 10.0.1.0/24", r.what)
		}
	}
	return pf, nil
}

// settingText turns a setting's TOML value into the text its Apply takes:
// strings always; booleans for the on/off settings, integers for seed.
func settingText(set table.Setting, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if set.Kind == table.KindBool {
			return strconv.FormatBool(x), nil
		}
	case int64:
		if set.Kind == table.KindInt {
			return strconv.FormatInt(x, 10), nil
		}
	}
	var want string
	switch set.Kind {
	case table.KindBool:
		want = "true or false"
	case table.KindInt:
		want = "an integer"
	case table.KindDuration:
		want = `a duration string such as "30s", "5m" or "2h"`
	case table.KindPortRange:
		want = `a string "LO-HI" such as "20000-29999"`
	case table.KindPrefix:
		want = `a prefix string such as "64:ff9b::/96"`
	default:
		want = "a string"
	}
	return "", fmt.Errorf("want %s, got %s", want, describe(v))
}
