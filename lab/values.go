package lab

// Decoding one TOML value of a topology file (a string, a list of
// addresses, an inside network, a behaviour setting) with a message
// that names what was wanted and what was given.

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
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

// addrList decodes a string or an array of strings as IPv4 addresses,
// reporting each bad or repeated one. ok is false if any was bad.
func (p *parser) addrList(v any, who, key string, line int, example string) ([]netip.Addr, bool) {
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
		a, err := parseIPv4(s, example)
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

func parseIPv4(s, example string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if pf, perr := netip.ParsePrefix(s); perr == nil {
			if pf.Addr().Is6() {
				return netip.Addr{}, errors.New("IPv6 is not supported: lab networks are IPv4 only")
			}
			return netip.Addr{}, fmt.Errorf("want a plain address such as %s, without a /prefix length", example)
		}
		return netip.Addr{}, fmt.Errorf("want an IPv4 address such as %s", example)
	}
	if !a.Is4() {
		return netip.Addr{}, errors.New("IPv6 is not supported: lab networks are IPv4 only")
	}
	for _, r := range reserved {
		if r.p.Contains(a) {
			return netip.Addr{}, fmt.Errorf("in %s: want a unicast address such as %s", r.what, example)
		}
	}
	return a, nil
}

func parseInside(s string) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			if !a.Is4() {
				return netip.Prefix{}, errors.New("IPv6 is not supported: lab networks are IPv4 only")
			}
			return netip.Prefix{}, fmt.Errorf("want a network with its prefix length, e.g. %s", netip.PrefixFrom(a, 24).Masked())
		}
		return netip.Prefix{}, errors.New("want an IPv4 network such as 10.0.1.0/24")
	}
	if !pf.Addr().Is4() {
		return netip.Prefix{}, errors.New("IPv6 is not supported: lab networks are IPv4 only")
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
	default:
		want = "a string"
	}
	return "", fmt.Errorf("want %s, got %s", want, describe(v))
}
