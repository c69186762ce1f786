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
	"strconv"
	"strings"
	"time"
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
)

// Setting is one behaviour setting.
type Setting struct {
	// Name is the flag (--NAME) and the topology file key.
	Name string
	// Kind is the type of its value.
	Kind SettingKind
	// Words are the values a KindWord setting takes (for completion):
	// long names first, then short forms.
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

var behaviorWords = func() (mapping, filtering []string) {
	long := []string{EndpointIndependent.String(), AddressDependent.String(), AddressAndPortDependent.String()}
	mapping = append(append([]string(nil), long...), "eim", "adm", "apdm")
	filtering = append(append([]string(nil), long...), "eif", "adf", "apdf")
	return mapping, filtering
}

// settings lists every behaviour setting, in the order --help shows them
// and Behavior-style builders apply them.
var settings = func() []Setting {
	mapWords, filterWords := behaviorWords()
	behavior := func(field func(*Config) *Behavior) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error {
				b, err := ParseBehavior(v)
				if err == nil {
					*field(c) = b
				}
				return err
			}, func(c *Config) string {
				return field(c).String()
			}
	}
	boolean := func(field func(*Config) *bool) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return wantErr("true or false")
				}
				*field(c) = b
				return nil
			}, func(c *Config) string {
				return strconv.FormatBool(*field(c))
			}
	}
	timeout := func(field func(*Config) *time.Duration) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return wantErr("a positive duration such as 30s, 5m or 2h")
				}
				*field(c) = d
				return nil
			}, func(c *Config) string {
				return field(c).String()
			}
	}
	s := func(name string, kind SettingKind, words []string, help string, apply func(*Config, string) error, value func(*Config) string) Setting {
		return Setting{Name: name, Kind: kind, Words: words, Help: help, apply: apply, value: value}
	}
	var out []Setting
	add := func(set Setting) { out = append(out, set) }

	ap, v := behavior(func(c *Config) *Behavior { return &c.Mapping })
	add(s(SettingMapping, KindWord, mapWords,
		"mapping `behaviour`: endpoint-independent|address-dependent|address-and-port-dependent (eim|adm|apdm)", ap, v))
	ap, v = behavior(func(c *Config) *Behavior { return &c.Filtering })
	add(s(SettingFiltering, KindWord, filterWords,
		"filtering `behaviour`: endpoint-independent|address-dependent|address-and-port-dependent (eif|adf|apdf)", ap, v))
	add(s(SettingPortAssignment, KindWord, append([]string(nil), portAssignmentNames[:]...),
		"external port choice: preserve|sequential|random",
		func(c *Config, v string) error {
			pa, err := ParsePortAssignment(v)
			if err == nil {
				c.PortAssignment = pa
			}
			return err
		}, func(c *Config) string { return c.PortAssignment.String() }))
	ap, v = boolean(func(c *Config) *bool { return &c.PortOverloading })
	add(s(SettingPortOverloading, KindBool, nil,
		"share an external port between inside endpoints that talk to different remotes, as Linux does (true|false; needs eim mapping, apdf filtering and no hairpin)", ap, v))
	add(s(SettingPortRange, KindPortRange, nil,
		"external ports for inside ports >= 1024: `LO-HI` (default 1024-65535)",
		func(c *Config, v string) error {
			lo, hi, ok := strings.Cut(v, "-")
			l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
			h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
			if !ok || err1 != nil || err2 != nil || l == 0 || l > h {
				return wantErr("LO-HI with 1 <= LO <= HI <= 65535, e.g. 20000-29999")
			}
			c.PortLo, c.PortHi = uint16(l), uint16(h)
			return nil
		}, func(c *Config) string { return fmt.Sprintf("%d-%d", c.PortLo, c.PortHi) }))
	ap, v = boolean(func(c *Config) *bool { return &c.LinuxLowPorts })
	add(s(SettingLinuxLowPorts, KindBool, nil,
		"split ports below 1024 as Linux does: 1-511 and 600-1023 (true|false)", ap, v))
	ap, v = boolean(func(c *Config) *bool { return &c.Parity })
	add(s(SettingParity, KindBool, nil, "keep the inside port's parity (true|false)", ap, v))
	add(s(SettingPooling, KindWord, append([]string(nil), poolingNames[:]...),
		"with several --external: paired (one external address per inside host) | arbitrary",
		func(c *Config, v string) error {
			p, err := ParsePooling(v)
			if err == nil {
				c.Pooling = p
			}
			return err
		}, func(c *Config) string { return c.Pooling.String() }))
	ap, v = boolean(func(c *Config) *bool { return &c.Hairpin })
	add(s(SettingHairpin, KindBool, nil,
		"hairpinning: inside hosts reach each other's external endpoints (true|false)", ap, v))
	ap, v = timeout(func(c *Config) *time.Duration { return &c.UDPTimeout })
	add(s(SettingUDPTimeout, KindDuration, nil,
		"UDP mapping lifetime without outbound traffic (`duration`, default 5m)", ap, v))
	add(s(SettingUDPUnrepliedTimeout, KindDuration, nil,
		"UDP session lifetime while nothing has come back on it, as Linux's 30s (`duration`; 0, the default: udp-timeout from the first packet)",
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return wantErr("a duration >= 0 such as 30s (0: off, udp-timeout from the first packet)")
			}
			c.UDPUnrepliedTimeout = d
			return nil
		}, func(c *Config) string { return c.UDPUnrepliedTimeout.String() }))
	ap, v = timeout(func(c *Config) *time.Duration { return &c.TCPEstablishedTimeout })
	add(s(SettingTCPEstablishedTimeout, KindDuration, nil,
		"established TCP connection lifetime (`duration`, default 2h4m)", ap, v))
	ap, v = timeout(func(c *Config) *time.Duration { return &c.TCPTransitoryTimeout })
	add(s(SettingTCPTransitoryTimeout, KindDuration, nil,
		"TCP lifetime while opening or closing (`duration`, default 4m)", ap, v))
	ap, v = timeout(func(c *Config) *time.Duration { return &c.ICMPTimeout })
	add(s(SettingICMPTimeout, KindDuration, nil,
		"ICMP query (ping) mapping lifetime (`duration`, default 1m)", ap, v))
	ap, v = boolean(func(c *Config) *bool { return &c.InboundRefresh })
	add(s(SettingInboundRefresh, KindBool, nil, "inbound packets refresh mappings too (true|false)", ap, v))
	add(s(SettingSeed, KindInt, nil,
		"seed for random port choice, so runs repeat (`N`; default: drawn at random, shown in the ready line)",
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return wantErr("an integer")
			}
			c.Seed = n
			return nil
		}, func(c *Config) string { return strconv.FormatInt(c.Seed, 10) }))
	return out
}()

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
