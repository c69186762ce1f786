package table

// The behaviour settings: every knob of Config that people set by name,
// as `gonat run` and `gonat lab set` flags (--NAME) and as topology file
// keys. This table is the one place that names, parses, describes and
// reads them; the CLI, the topology parser, completion and the web view
// take their words from it. The names are a user contract: keep them.
//
// It lives beside Config because it is Config's text form, as
// ParseBehavior and String are its values' text form.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gonat/gonat/header"
)

// Setting names: the words of flags and topology keys.
const (
	SettingMapping               = "mapping"
	SettingFiltering             = "filtering"
	SettingPortAssignment        = "port-assignment"
	SettingPortOverloading       = "port-overloading"
	SettingPortRange             = "port-range"
	SettingLinuxLowPorts         = "linux-low-ports"
	SettingParity                = "parity"
	SettingPooling               = "pooling"
	SettingHairpin               = "hairpin"
	SettingUDPTimeout            = "udp-timeout"
	SettingUDPUnrepliedTimeout   = "udp-unreplied-timeout"
	SettingTCPEstablishedTimeout = "tcp-established-timeout"
	SettingTCPTransitoryTimeout  = "tcp-transitory-timeout"
	SettingICMPTimeout           = "icmp-timeout"
	SettingInboundRefresh        = "inbound-refresh"
	SettingSeed                  = "seed"
	SettingPortHold              = "port-hold"

	SettingLimitMappingsPerHost    = "limit-mappings-per-host"
	SettingLimitSessionsPerMapping = "limit-sessions-per-mapping"
	SettingLimitMappings           = "limit-mappings"
	SettingLimitSessions           = "limit-sessions"
	SettingICMPRate                = "icmp-rate"
	SettingICMPInterval            = "icmp-interval"
	SettingIPv6                    = "ipv6"
	SettingFirewall                = "firewall"
	SettingPMTUBlackhole           = "pmtu-blackhole"
	SettingNAT64Prefix             = "nat64-prefix"
)

// SettingKind is the type of a setting's value.
type SettingKind uint8

// The kinds of setting values.
const (
	// KindWord takes one of the setting's Words.
	KindWord SettingKind = iota
	// KindBool takes true or false; a bare --NAME flag means true, a
	// topology file takes a TOML boolean.
	KindBool
	// KindDuration takes a Go duration such as 30s, 5m or 2h.
	KindDuration
	// KindPortRange takes LO-HI.
	KindPortRange
	// KindInt takes an integer; a topology file takes a TOML integer.
	KindInt
	// KindPrefix takes an IP prefix such as 64:ff9b::/96.
	KindPrefix
)

// Setting is one behaviour setting.
type Setting struct {
	// Name is the flag (--NAME) and the topology file key.
	Name string
	// Kind is the type of its value.
	Kind SettingKind
	// Words are the values a KindWord setting takes (for completion):
	// long names first, then short forms. Shared: do not change them.
	Words []string
	// Help is the flag's usage line in --help; a word in back quotes
	// names the flag's argument, as package flag reads it.
	Help string
	// apply sets the setting on c from its text form; its error says
	// what was expected, without the setting's name.
	apply func(c *Config, text string) error
	// value is the setting's value in c, in a text form apply takes.
	value func(c *Config) string
}

// Apply sets the setting on c from its text form. The error names the
// setting and says what was expected.
func (s Setting) Apply(c *Config, text string) error {
	err := s.apply(c, text)
	if want, ok := err.(wantErr); ok {
		return fmt.Errorf("%s %q: want %s", s.Name, text, string(want))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	return nil
}

// Value returns the setting's value in c in the text form Apply takes.
func (s Setting) Value(c Config) string { return s.value(&c) }

// Default is the setting's value in DefaultConfig, as text.
func (s Setting) Default() string { return s.Value(DefaultConfig()) }

// wantErr is an apply error that only says what was wanted.
type wantErr string

func (e wantErr) Error() string { return "want " + string(e) }

// settings lists every behaviour setting, in the order --help shows them
// and ApplySettings applies them.
var settings = []Setting{
	behaviorSetting(SettingMapping, "eim adm apdm",
		"mapping `behaviour`: endpoint-independent|address-dependent|address-and-port-dependent (eim|adm|apdm)",
		func(c *Config) *Behavior { return &c.Mapping }),
	behaviorSetting(SettingFiltering, "eif adf apdf",
		"filtering `behaviour`: endpoint-independent|address-dependent|address-and-port-dependent (eif|adf|apdf)",
		func(c *Config) *Behavior { return &c.Filtering }),
	{
		Name: SettingPortAssignment, Kind: KindWord, Words: append([]string(nil), portAssignmentNames[:]...),
		Help: "external port choice: preserve|sequential|random",
		apply: func(c *Config, v string) error {
			pa, err := ParsePortAssignment(v)
			if err == nil {
				c.PortAssignment = pa
			}
			return err
		},
		value: func(c *Config) string { return c.PortAssignment.String() },
	},
	boolSetting(SettingPortOverloading,
		"share an external port between inside endpoints that talk to different remotes, as Linux does (true|false; needs eim mapping, apdf filtering and no hairpin)",
		func(c *Config) *bool { return &c.PortOverloading }),
	{
		Name: SettingPortRange, Kind: KindPortRange,
		Help:  "external ports for inside ports >= 1024: `LO-HI` (default 1024-65535)",
		apply: applyPortRange,
		value: func(c *Config) string { return fmt.Sprintf("%d-%d", c.PortLo, c.PortHi) },
	},
	boolSetting(SettingLinuxLowPorts, "split ports below 1024 as Linux does: 1-511 and 600-1023 (true|false)",
		func(c *Config) *bool { return &c.LinuxLowPorts }),
	boolSetting(SettingParity, "keep the inside port's parity (true|false)",
		func(c *Config) *bool { return &c.Parity }),
	{
		Name: SettingPooling, Kind: KindWord, Words: append([]string(nil), poolingNames[:]...),
		Help: "with several --external: paired (one external address per inside host) | arbitrary",
		apply: func(c *Config, v string) error {
			p, err := ParsePooling(v)
			if err == nil {
				c.Pooling = p
			}
			return err
		},
		value: func(c *Config) string { return c.Pooling.String() },
	},
	boolSetting(SettingHairpin, "hairpinning: inside hosts reach each other's external endpoints (true|false)",
		func(c *Config) *bool { return &c.Hairpin }),
	timeoutSetting(SettingUDPTimeout, "UDP mapping lifetime without outbound traffic (`duration`, default 5m)",
		func(c *Config) *time.Duration { return &c.UDPTimeout }),
	{
		Name: SettingUDPUnrepliedTimeout, Kind: KindDuration,
		Help: "UDP session lifetime while nothing has come back on it, as Linux's 30s (`duration`; 0, the default: udp-timeout from the first packet)",
		apply: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return wantErr("a duration >= 0 such as 30s (0: off, udp-timeout from the first packet)")
			}
			c.UDPUnrepliedTimeout = d
			return nil
		},
		value: func(c *Config) string { return c.UDPUnrepliedTimeout.String() },
	},
	timeoutSetting(SettingTCPEstablishedTimeout, "established TCP connection lifetime (`duration`, default 2h4m)",
		func(c *Config) *time.Duration { return &c.TCPEstablishedTimeout }),
	timeoutSetting(SettingTCPTransitoryTimeout, "TCP lifetime while opening or closing (`duration`, default 4m)",
		func(c *Config) *time.Duration { return &c.TCPTransitoryTimeout }),
	timeoutSetting(SettingICMPTimeout, "ICMP query (ping) mapping lifetime (`duration`, default 1m)",
		func(c *Config) *time.Duration { return &c.ICMPTimeout }),
	boolSetting(SettingInboundRefresh, "inbound packets refresh mappings too (true|false)",
		func(c *Config) *bool { return &c.InboundRefresh }),
	{
		Name: SettingSeed, Kind: KindInt,
		Help: "seed for random port choice and impairment, so runs repeat (`N`; default: drawn at random, shown in the ready line)",
		apply: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return wantErr("an integer")
			}
			c.Seed = n
			return nil
		},
		value: func(c *Config) string { return strconv.FormatInt(c.Seed, 10) },
	},
	{
		Name: SettingPortHold, Kind: KindDuration,
		Help: "how long a freed UDP port or ICMP identifier is kept from other inside hosts (`duration`, default 2m; 0: off)",
		apply: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return wantErr("a duration >= 0 such as 2m (0: off)")
			}
			c.PortHold = d
			return nil
		},
		value: func(c *Config) string { return c.PortHold.String() },
	},
	limitSetting(SettingLimitMappingsPerHost, "most mappings one inside host holds, all protocols (`N`, default 4096; 0: no limit)",
		func(c *Config) *int { return &c.LimitMappingsPerHost }),
	limitSetting(SettingLimitSessionsPerMapping, "most sessions (remote endpoints) one mapping holds (`N`, default 4096; 0: no limit)",
		func(c *Config) *int { return &c.LimitSessionsPerMapping }),
	limitSetting(SettingLimitMappings, "most mappings the NAT holds (`N`, default 131072; 0: no limit)",
		func(c *Config) *int { return &c.LimitMappings }),
	limitSetting(SettingLimitSessions, "most sessions the NAT holds, all mappings together (`N`, default 262144; 0: no limit)",
		func(c *Config) *int { return &c.LimitSessions }),
	{
		Name: SettingICMPRate, Kind: KindInt,
		Help: "ICMP errors the NAT sends per second in all, after a burst of 50 (`N`, default 1000 as Linux; 0: no limit)",
		apply: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return wantErr("an integer >= 0 (0: no limit)")
			}
			c.ICMPRate = n
			return nil
		},
		value: func(c *Config) string { return strconv.Itoa(c.ICMPRate) },
	},
	{
		Name: SettingICMPInterval, Kind: KindDuration,
		Help: "least time between ICMP errors to one destination, after a burst of 6 (`duration`, default 1s as Linux; 0: no limit)",
		apply: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return wantErr("a duration >= 0 such as 1s or 100ms (0: no limit)")
			}
			c.ICMPInterval = d
			return nil
		},
		value: func(c *Config) string { return c.ICMPInterval.String() },
	},
	{
		Name: SettingIPv6, Kind: KindWord, Words: append([]string(nil), ipv6ModeNames[:]...),
		Help: "what the NAT does with IPv6: none (unreachable, prohibited, to inside hosts) | blackhole (silently lost) | reject (unreachable, no route) | routed (forwarded through a stateful firewall) | nptv6 (prefix translation, RFC 6296) | nat66 (address and port translation, as IPv4's, to external6) | nat64 (IPv6-only inside, IPv4 reached through NAT64, RFC 6146)",
		apply: func(c *Config, v string) error {
			m, err := ParseIPv6Mode(v)
			if err == nil {
				c.IPv6 = m
			}
			return err
		},
		value: func(c *Config) string { return c.IPv6.String() },
	},
	{
		Name: SettingFirewall, Kind: KindWord, Words: FirewallProfiles(),
		Help: "packet filter on the outside boundary: none | block-udp (no UDP either way) | web-only (TCP to remote ports 80 and 443 only) | block-inbound-icmp, or `rules` such as \"deny udp out; allow tcp 80,443\" (allow|deny [udp|tcp|icmp] [PORTS] [in|out], ports are the remote's, first match decides, none: pass)",
		apply: func(c *Config, v string) error {
			f, err := ParseFirewall(v)
			if err == nil {
				c.Firewall = f
			}
			return err
		},
		value: func(c *Config) string { return c.Firewall.String() },
	},
	boolSetting(SettingPMTUBlackhole, "drop packets too big for the next link silently instead of answering with ICMP fragmentation needed or Packet Too Big, as a path MTU black hole does (true|false)",
		func(c *Config) *bool { return &c.PMTUBlackhole }),
	{
		Name: SettingNAT64Prefix, Kind: KindPrefix,
		Help: "with ipv6 nat64, the IPv6 `prefix` IPv4 addresses are embedded in (RFC 6052: /32, /40, /48, /56, /64 or /96; default the well-known 64:ff9b::/96)",
		apply: func(c *Config, v string) error {
			p, err := netip.ParsePrefix(v)
			if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
				return wantErr("an IPv6 prefix such as 64:ff9b::/96")
			}
			if _, err := header.NewNAT64Prefix(p); err != nil {
				return wantErr("a prefix of length 32, 40, 48, 56, 64 or 96, bits 64-71 zero (RFC 6052)")
			}
			c.NAT64Prefix = p.Masked()
			return nil
		},
		value: func(c *Config) string { return c.NAT64PrefixOrDefault().String() },
	},
}

// IPv6Mode is what a NAT does with IPv6 packets. The engine acts on it;
// the table does not.
type IPv6Mode uint8

// The IPv6 modes.
const (
	// IPv6None: no IPv6 leaves the inside network. Inside hosts get an
	// ICMPv6 destination unreachable, administratively prohibited, as
	// from a router whose policy refuses IPv6; from outside it is
	// dropped. The default: a NAT of the lab has no IPv6 unless asked.
	IPv6None IPv6Mode = iota
	// IPv6Blackhole: IPv6 vanishes both ways, as on a network whose IPv6
	// is broken without telling anyone (the slow Happy Eyeballs case).
	IPv6Blackhole
	// IPv6Reject: inside hosts get an ICMPv6 destination unreachable, no
	// route, at once, as from a router with no IPv6 default route (the
	// fast-failure case); from outside dropped.
	IPv6Reject
	// IPv6Routed: forwarded untranslated through a stateful firewall
	// (RFC 6092), as a home router with IPv6 does.
	IPv6Routed
	// IPv6NPTv6: the inside prefix translated to an external one of the
	// same length, statelessly and checksum-neutrally (RFC 6296).
	IPv6NPTv6
	// IPv6NAT66: address and port translation as the IPv4 side's, with
	// its mapping, filtering, port and timeout settings, to the NAT's
	// first external IPv6 address.
	IPv6NAT66
	// IPv6NAT64: the inside network is IPv6-only and reaches IPv4 through
	// stateful NAT64 (RFC 6146), IPv4 addresses embedded in
	// Config.NAT64Prefix (RFC 6052), as on a mobile carrier's network.
	IPv6NAT64
)

var ipv6ModeNames = [...]string{
	IPv6None: "none", IPv6Blackhole: "blackhole", IPv6Reject: "reject", IPv6Routed: "routed", IPv6NPTv6: "nptv6", IPv6NAT66: "nat66",
	IPv6NAT64: "nat64",
}

// ParseIPv6Mode parses an IPv6 mode's name.
func ParseIPv6Mode(s string) (IPv6Mode, error) {
	for i, n := range ipv6ModeNames {
		if strings.EqualFold(s, n) {
			return IPv6Mode(i), nil
		}
	}
	return 0, wantErr(strings.Join(ipv6ModeNames[:], ", "))
}

func (m IPv6Mode) String() string {
	if int(m) < len(ipv6ModeNames) {
		return ipv6ModeNames[m]
	}
	return "unknown"
}

// behaviorSetting is a mapping or filtering behaviour: the long names
// and the short forms given.
func behaviorSetting(name, short, help string, field func(*Config) *Behavior) Setting {
	var words []string
	for b := EndpointIndependent; b <= AddressAndPortDependent; b++ {
		words = append(words, b.String())
	}
	return Setting{
		Name: name, Kind: KindWord, Words: append(words, strings.Fields(short)...), Help: help,
		apply: func(c *Config, v string) error {
			b, err := ParseBehavior(v)
			if err == nil {
				*field(c) = b
			}
			return err
		},
		value: func(c *Config) string { return field(c).String() },
	}
}

func boolSetting(name, help string, field func(*Config) *bool) Setting {
	return Setting{
		Name: name, Kind: KindBool, Help: help,
		apply: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return wantErr("true or false")
			}
			*field(c) = b
			return nil
		},
		value: func(c *Config) string { return strconv.FormatBool(*field(c)) },
	}
}

// timeoutSetting is a duration that must be positive.
func timeoutSetting(name, help string, field func(*Config) *time.Duration) Setting {
	return Setting{
		Name: name, Kind: KindDuration, Help: help,
		apply: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return wantErr("a positive duration such as 30s, 5m or 2h")
			}
			*field(c) = d
			return nil
		},
		value: func(c *Config) string { return field(c).String() },
	}
}

// limitSetting is a count >= 0, 0 meaning no limit.
func limitSetting(name, help string, field func(*Config) *int) Setting {
	return Setting{
		Name: name, Kind: KindInt, Help: help,
		apply: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				return wantErr("an integer >= 0 (0: no limit)")
			}
			*field(c) = int(n)
			return nil
		},
		value: func(c *Config) string { return strconv.Itoa(*field(c)) },
	}
}

func applyPortRange(c *Config, v string) error {
	lo, hi, ok := strings.Cut(v, "-")
	l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if !ok || err1 != nil || err2 != nil || l == 0 || l > h {
		return wantErr("LO-HI with 1 <= LO <= HI <= 65535, e.g. 20000-29999")
	}
	c.PortLo, c.PortHi = uint16(l), uint16(h)
	return nil
}

// Settings lists every behaviour setting, in the order --help shows them
// and ApplySettings applies them.
func Settings() []Setting { return append([]Setting(nil), settings...) }

// SettingNames lists the settings' names, in the order of Settings.
func SettingNames() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.Name
	}
	return out
}

// LookupSetting returns the setting of that name.
func LookupSetting(name string) (Setting, bool) {
	for _, s := range settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

// ApplySetting sets one named setting on c from its text form. The error
// names the setting and says what was expected.
func ApplySetting(c *Config, name, text string) error {
	s, ok := LookupSetting(name)
	if !ok {
		return fmt.Errorf("unknown setting %q (known: %s)", name, strings.Join(SettingNames(), ", "))
	}
	return s.Apply(c, text)
}

// ApplySettings applies the given settings (by name, as text) to c in the
// order of Settings, so the same set always gives the same Config. It
// stops at the first error.
func ApplySettings(c *Config, given map[string]string) error {
	for name := range given {
		if _, ok := LookupSetting(name); !ok {
			return ApplySetting(c, name, given[name])
		}
	}
	for _, s := range settings {
		if v, ok := given[s.Name]; ok {
			if err := s.Apply(c, v); err != nil {
				return err
			}
		}
	}
	return nil
}
