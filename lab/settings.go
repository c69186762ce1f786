// Package lab builds the networks gonat runs in: NATs between network
// namespaces (what `gonat run` and `gonat demo` do), and the settings
// vocabulary shared by command-line flags and topology files.
package lab

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gonat/gonat/table"
)

// Setting names: the same words are `gonat run` flags (--NAME) and
// topology file keys. They are a user contract: keep them.
const (
	SetMapping               = "mapping"
	SetFiltering             = "filtering"
	SetPortAssignment        = "port-assignment"
	SetPortRange             = "port-range"
	SetLinuxLowPorts         = "linux-low-ports"
	SetPortOverloading       = "port-overloading"
	SetParity                = "parity"
	SetPooling               = "pooling"
	SetHairpin               = "hairpin"
	SetUDPTimeout            = "udp-timeout"
	SetUDPUnrepliedTimeout   = "udp-unreplied-timeout"
	SetTCPEstablishedTimeout = "tcp-established-timeout"
	SetTCPTransitoryTimeout  = "tcp-transitory-timeout"
	SetICMPTimeout           = "icmp-timeout"
	SetInboundRefresh        = "inbound-refresh"
	SetSeed                  = "seed"
)

// SettingNames lists every behaviour setting, in the order --help shows them.
func SettingNames() []string {
	return []string{SetMapping, SetFiltering, SetPortAssignment, SetPortOverloading, SetPortRange, SetLinuxLowPorts, SetParity, SetPooling,
		SetHairpin, SetUDPTimeout, SetUDPUnrepliedTimeout, SetTCPEstablishedTimeout, SetTCPTransitoryTimeout, SetICMPTimeout,
		SetInboundRefresh, SetSeed}
}

// IsBoolSetting reports whether a setting takes true or false (a bare
// --NAME flag means true).
func IsBoolSetting(name string) bool {
	switch name {
	case SetHairpin, SetParity, SetInboundRefresh, SetLinuxLowPorts, SetPortOverloading:
		return true
	}
	return false
}

// Behavior builds a NAT behaviour: a preset (empty: the default,
// port-restricted cone) with settings applied over it in a fixed order,
// so "preset symmetric, filtering eif" always means the same thing.
func Behavior(preset string, settings map[string]string, external []netip.Addr) (table.Config, error) {
	c := table.DefaultConfig()
	if preset != "" {
		p, err := table.Preset(preset)
		if err != nil {
			return table.Config{}, err
		}
		c = p
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	order := map[string]int{}
	for i, n := range SettingNames() {
		order[n] = i
	}
	sort.Slice(keys, func(i, j int) bool { return order[keys[i]] < order[keys[j]] })
	for _, k := range keys {
		if err := ApplySetting(&c, k, settings[k]); err != nil {
			return table.Config{}, err
		}
	}
	c.External = append([]netip.Addr(nil), external...)
	if err := c.Validate(); err != nil {
		return table.Config{}, err
	}
	return c, nil
}

// ApplySetting sets one named behaviour setting from its text form. The
// error names the setting and says what was expected.
func ApplySetting(c *table.Config, name, value string) error {
	bad := func(want string) error {
		return fmt.Errorf("%s %q: want %s", name, value, want)
	}
	switch name {
	case SetMapping, SetFiltering:
		b, err := table.ParseBehavior(value)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if name == SetMapping {
			c.Mapping = b
		} else {
			c.Filtering = b
		}
	case SetPortAssignment:
		pa, err := table.ParsePortAssignment(value)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c.PortAssignment = pa
	case SetPooling:
		pl, err := table.ParsePooling(value)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c.Pooling = pl
	case SetPortRange:
		lo, hi, ok := strings.Cut(value, "-")
		l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		if !ok || err1 != nil || err2 != nil || l == 0 || l > h {
			return bad("LO-HI with 1 <= LO <= HI <= 65535, e.g. 20000-29999")
		}
		c.PortLo, c.PortHi = uint16(l), uint16(h)
	case SetHairpin, SetParity, SetInboundRefresh, SetLinuxLowPorts, SetPortOverloading:
		v, err := strconv.ParseBool(value)
		if err != nil {
			return bad("true or false")
		}
		switch name {
		case SetHairpin:
			c.Hairpin = v
		case SetParity:
			c.Parity = v
		case SetLinuxLowPorts:
			c.LinuxLowPorts = v
		case SetPortOverloading:
			c.PortOverloading = v
		default:
			c.InboundRefresh = v
		}
	case SetUDPUnrepliedTimeout:
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return bad("a duration >= 0 such as 30s (0: off, udp-timeout from the first packet)")
		}
		c.UDPUnrepliedTimeout = d
	case SetUDPTimeout, SetTCPEstablishedTimeout, SetTCPTransitoryTimeout, SetICMPTimeout:
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return bad("a positive duration such as 30s, 5m or 2h")
		}
		switch name {
		case SetUDPTimeout:
			c.UDPTimeout = d
		case SetTCPEstablishedTimeout:
			c.TCPEstablishedTimeout = d
		case SetTCPTransitoryTimeout:
			c.TCPTransitoryTimeout = d
		default:
			c.ICMPTimeout = d
		}
	case SetSeed:
		s, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return bad("an integer")
		}
		c.Seed = s
	default:
		return fmt.Errorf("unknown setting %q (known: %s)", name, strings.Join(SettingNames(), ", "))
	}
	return nil
}
