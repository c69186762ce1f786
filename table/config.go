package table

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gonat/gonat/header"
)

// Default timeouts and port range. The UDP and TCP values are the RFCs'
// recommendations: RFC 4787 REQ-5 (UDP >= 120 s, 300 s recommended),
// RFC 5382 REQ-5 (established >= 2 h 4 min, transitory >= 4 min),
// RFC 5508 REQ-2 (ICMP query >= 60 s).
const (
	DefaultUDPTimeout            = 300 * time.Second
	DefaultTCPEstablishedTimeout = 7440 * time.Second
	DefaultTCPTransitoryTimeout  = 240 * time.Second
	DefaultICMPTimeout           = 60 * time.Second
	DefaultPortLo                = 1024
	DefaultPortHi                = 65535
	// DefaultICMPRate and DefaultICMPInterval limit the ICMP errors a NAT
	// sends as Linux does by default (net.ipv4.icmp_msgs_per_sec 1000,
	// icmp_ratelimit 1000 ms): RFC 1812 §4.3.2.8.
	DefaultICMPRate     = 1000
	DefaultICMPInterval = time.Second
)

// Default limits on the table's size (RFC 6888 REQ-3/4: per-subscriber
// limits, so one inside host cannot starve the others). 4096 mappings
// per host leave the default port range to at least 15 hosts at their
// limit; 4096 sessions per mapping bound what spoofed SYNs from outside
// can add to one full-cone mapping; the totals bound memory (a mapping
// with its indexes takes some 300 bytes, a session some 200). With a
// narrower port range, lower the per-host limit too.
const (
	DefaultLimitMappingsPerHost    = 4096
	DefaultLimitSessionsPerMapping = 4096
	DefaultLimitMappings           = 131072
	DefaultLimitSessions           = 262144

	// DefaultPortHold is how long a freed UDP port or ICMP identifier
	// waits before another host may have it (RFC 6888 REQ-8: at least
	// 120 s).
	DefaultPortHold = 120 * time.Second
)

// Config is a NAT's behaviour as data. The zero timeouts and port range ends
// are filled with the defaults by New; Validate checks filled-in values.
type Config struct {
	// External is the pool of external IPv4 unicast addresses: at least one.
	External []netip.Addr
	// External6 holds the NAT's IPv6 addresses on its outside port, for
	// the IPv6 modes of the engine; the table itself translates IPv4 and
	// does not use them.
	External6 []netip.Addr
	// Mapping is the mapping behaviour for UDP and TCP (RFC 4787 §4.1).
	// ICMP query mappings are always endpoint-independent (RFC 5508 REQ-1).
	Mapping Behavior
	// Filtering is the filtering behaviour for UDP and TCP (RFC 4787 §5,
	// RFC 5382 REQ-3). ICMP replies are always filtered address-dependently.
	Filtering Behavior
	// PortAssignment chooses a new mapping's external port.
	PortAssignment PortAssignment
	// PortLo and PortHi bound the external ports given to internal ports
	// >= 1024 (default 1024-65535). Internal ports below 1024 map into
	// 1-1023 (RFC 4787 REQ-3a).
	PortLo, PortHi uint16
	// PortOverloading lets a new mapping take an external port that other
	// mappings hold, as long as none of them has a live session with the
	// same remote endpoint: the reply tuple stays unique, which is all
	// Linux's conntrack asks (RFC 7857 §3 calls it port overlapping). A
	// mapping that then talks to a remote that another holder of its port
	// already talks to gets a mapping of its own, on another port, for
	// that remote, as Linux does. Inbound packets go to the holder with a
	// live session for their sender. Needs endpoint-independent mapping
	// and address-and-port-dependent filtering; on in the linux preset.
	PortOverloading bool
	// LinuxLowPorts splits the ports below 1024 as Linux's NAT does
	// (nf_nat_l4proto_unique_tuple): internal ports 1-511 map into 1-511,
	// 512-1023 into 600-1023.
	LinuxLowPorts bool
	// Parity keeps the internal port's parity for UDP and TCP (RFC 4787 REQ-4).
	Parity bool
	// Pooling picks the external address of a new mapping (RFC 4787 REQ-2).
	Pooling Pooling
	// Hairpin is stored for the engine; the table does not act on it
	// (RFC 4787 REQ-9).
	Hairpin bool
	// UDPTimeout is how long a UDP mapping and each filter permission live
	// after their last refresh (RFC 4787 REQ-5). Values under 120 s break
	// that requirement but are accepted (tests use them).
	UDPTimeout time.Duration
	// UDPUnrepliedTimeout, if not 0, is how long a UDP session lives after
	// its last packet while no packet has come back on it, as Linux
	// conntrack's udp_timeout (30 s) does; from the first packet that
	// comes back, UDPTimeout applies (udp_timeout_stream, 120 s). 0:
	// UDPTimeout from the first packet. It is capped at UDPTimeout. The
	// mapping lives while any of its sessions does.
	UDPUnrepliedTimeout time.Duration
	// TCPEstablishedTimeout is the idle timeout of an established TCP
	// session (RFC 5382 REQ-5).
	TCPEstablishedTimeout time.Duration
	// TCPTransitoryTimeout is the idle timeout of a TCP session in any other
	// state: opening, closing, or reset (RFC 5382 REQ-5, RFC 7857 §2.2).
	TCPTransitoryTimeout time.Duration
	// ICMPTimeout is the idle timeout of an ICMP query mapping (RFC 5508 REQ-2).
	ICMPTimeout time.Duration
	// InboundRefresh makes accepted inbound UDP and ICMP packets refresh the
	// mapping (and the sender's permission) too (RFC 4787 REQ-6). TCP
	// sessions are timed by their state machine and refresh on packets in
	// either direction whatever this says.
	InboundRefresh bool
	// Seed makes random port assignment and arbitrary pooling reproducible.
	Seed int64

	// PortHold is how long a UDP port or ICMP identifier that a lapsed
	// mapping freed is kept from other internal addresses (RFC 6888
	// REQ-8); the address that held it may take it back at once, and
	// held ports give way when no other port is free. TCP ports are free
	// at once (REQ-8 a). 0: off. DefaultConfig sets DefaultPortHold.
	PortHold time.Duration

	// Limits on the table's size (RFC 6888 REQ-3/4); 0: no limit.
	// Mappings and sessions count until removed (lapsed ones are removed
	// before a limit refuses anything). A packet over a limit makes
	// nothing and evicts nothing: Outbound returns a LimitError, Inbound
	// a DropLimit verdict. DefaultConfig sets the Default ones.
	//
	// LimitMappingsPerHost bounds the mappings of one internal address,
	// all protocols together.
	LimitMappingsPerHost int
	// LimitSessionsPerMapping bounds the sessions (remote endpoints) of
	// one mapping.
	LimitSessionsPerMapping int
	// LimitMappings bounds the mappings of the table.
	LimitMappings int
	// LimitSessions bounds the sessions of all mappings together.
	LimitSessions int
	// ICMPRate is how many ICMP errors (Time Exceeded; 3/13 for an empty
	// port pool or a limit) the NAT
	// sends per second in all, after a burst of 50, as Linux's
	// icmp_msgs_per_sec and icmp_msgs_burst; 0: no limit. Stored for the
	// engine; the table does not act on it.
	ICMPRate int
	// ICMPInterval is the least time between ICMP errors to one
	// destination on average, after a burst of 6, as Linux's
	// icmp_ratelimit; 0: no limit. Stored for the engine.
	ICMPInterval time.Duration
	// IPv6 is what the NAT does with IPv6 packets (IPv6Mode): none by
	// default. Stored for the engine; the table translates IPv4 only.
	IPv6 IPv6Mode
	// Firewall filters packets at the outside boundary, on top of the NAT
	// behaviour: none by default. Stored for the engine.
	Firewall Firewall
	// PMTUBlackhole is stored for the engine: packets too big for the
	// next link (IPv4 with DF, any IPv6) are dropped without the ICMP
	// error that path MTU discovery needs (RFC 2923 section 2.1).
	PMTUBlackhole bool
	// NAT64Prefix is where IPv6 mode nat64 embeds IPv4 addresses (RFC
	// 6052); the zero prefix means the well-known 64:ff9b::/96. Stored
	// for the engine.
	NAT64Prefix netip.Prefix
}

// NAT64PrefixOrDefault is NAT64Prefix, or the well-known prefix when it
// is not set.
func (c *Config) NAT64PrefixOrDefault() netip.Prefix {
	if c.NAT64Prefix.IsValid() {
		return c.NAT64Prefix
	}
	return header.NAT64WellKnown
}

// DefaultConfig returns the recommended behaviour (RFC 4787 REQ-1, REQ-8 and
// friends): endpoint-independent mapping, address-and-port-dependent
// filtering, port preservation over 1024-65535, paired pooling, hairpinning,
// the default timeouts, outbound-only refresh. It is the
// "port-restricted-cone" preset. External is left empty.
func DefaultConfig() Config {
	return Config{
		Mapping:               EndpointIndependent,
		Filtering:             AddressAndPortDependent,
		PortAssignment:        Preserve,
		PortLo:                DefaultPortLo,
		PortHi:                DefaultPortHi,
		Pooling:               Paired,
		Hairpin:               true,
		UDPTimeout:            DefaultUDPTimeout,
		TCPEstablishedTimeout: DefaultTCPEstablishedTimeout,
		TCPTransitoryTimeout:  DefaultTCPTransitoryTimeout,
		ICMPTimeout:           DefaultICMPTimeout,

		PortHold: DefaultPortHold,

		LimitMappingsPerHost:    DefaultLimitMappingsPerHost,
		LimitSessionsPerMapping: DefaultLimitSessionsPerMapping,
		LimitMappings:           DefaultLimitMappings,
		LimitSessions:           DefaultLimitSessions,
		ICMPRate:                DefaultICMPRate,
		ICMPInterval:            DefaultICMPInterval,
	}
}

// presets are the named behaviours, each as its changes to
// DefaultConfig, with a description for --help. The RFC 3489 type names
// map to RFC 4787 terms as in RFC 4787 §3 and RFC 5780 §4.
var presets = []struct {
	name, help string
	set        func(c *Config)
}{
	{"full-cone", "EIM mapping, EIF filtering, port preserve, hairpin on",
		func(c *Config) { c.Filtering = EndpointIndependent }},
	{"restricted-cone", "EIM, ADF (address-dependent filtering)",
		func(c *Config) { c.Filtering = AddressDependent }},
	{"port-restricted-cone", "EIM, APDF (the default)",
		func(c *Config) {}},
	{"symmetric", "APDM, APDF, random ports",
		func(c *Config) {
			c.Mapping = AddressAndPortDependent
			c.PortAssignment = Random
		}},
	{"linux", "what Linux MASQUERADE does: EIM, APDF, preserve, no hairpin,\n" +
		"UDP 30s until answered then 120s, ICMP 30s, inbound packets\n" +
		"refresh, ports below 1024 split 1-511 / 600-1023, port\n" +
		"overloading (turn it off to change mapping or filtering)",
		func(c *Config) {
			c.Hairpin = false
			c.UDPTimeout = 120 * time.Second
			c.UDPUnrepliedTimeout = 30 * time.Second
			c.LinuxLowPorts = true
			c.PortOverloading = true
			c.ICMPTimeout = 30 * time.Second
			c.TCPEstablishedTimeout = 432000 * time.Second
			c.TCPTransitoryTimeout = 120 * time.Second
			c.InboundRefresh = true
		}},
}

// PresetNames lists the names Preset accepts.
func PresetNames() []string {
	out := make([]string, len(presets))
	for i, p := range presets {
		out[i] = p.name
	}
	return out
}

// PresetHelp describes a preset for people, in lines of at most about
// 65 characters; "" for an unknown name.
func PresetHelp(name string) string {
	for _, p := range presets {
		if p.name == name {
			return p.help
		}
	}
	return ""
}

// Preset returns a named configuration with External left empty, the
// name compared ignoring case:
//
//	full-cone             EIM, EIF,  preserve, hairpin
//	restricted-cone       EIM, ADF,  preserve, hairpin
//	port-restricted-cone  EIM, APDF, preserve, hairpin
//	symmetric             APDM, APDF, random, hairpin
//	linux                 what Linux MASQUERADE does: EIM, APDF, preserve
//	                      (random on clash), no hairpin, UDP 30 s until a
//	                      packet comes back then 120 s (conntrack's udp_timeout
//	                      and udp_timeout_stream), ICMP 30 s, TCP established
//	                      5 days, transitory 120 s, both directions refresh,
//	                      ports below 1024 split 1-511 / 600-1023, a port
//	                      shared by internal endpoints that talk to
//	                      different remotes (port overloading)
//
// All use ports 1024-65535 and paired pooling.
func Preset(name string) (Config, error) {
	l := strings.ToLower(strings.TrimSpace(name))
	for _, p := range presets {
		if p.name == l {
			c := DefaultConfig()
			p.set(&c)
			return c, nil
		}
	}
	return Config{}, fmt.Errorf("preset %q: want one of %s", name, strings.Join(PresetNames(), ", "))
}

// WithPreset is c turned into preset p's type of NAT: every setting a
// preset governs (mapping, filtering, ports, hairpinning, timeouts,
// refresh, port hold) as p has it, and the settings that say where the
// NAT stands and what guards it rather than what type it is kept from c:
// its addresses and seed, its limits and ICMP rates, its IPv6 mode,
// firewall and path-MTU handling. A NAT switched to another type at run
// time keeps its IPv6 and its firewall.
func (c Config) WithPreset(p Config) Config {
	p.External, p.External6, p.Seed = c.External, c.External6, c.Seed
	p.LimitMappingsPerHost, p.LimitSessionsPerMapping = c.LimitMappingsPerHost, c.LimitSessionsPerMapping
	p.LimitMappings, p.LimitSessions = c.LimitMappings, c.LimitSessions
	p.ICMPRate, p.ICMPInterval = c.ICMPRate, c.ICMPInterval
	p.IPv6, p.NAT64Prefix, p.Firewall, p.PMTUBlackhole = c.IPv6, c.NAT64Prefix, c.Firewall, c.PMTUBlackhole
	return p
}

// withDefaults fills zero timeouts and zero port range ends.
func (c Config) withDefaults() Config {
	c.External = append([]netip.Addr(nil), c.External...)
	if c.PortLo == 0 {
		c.PortLo = DefaultPortLo
	}
	if c.PortHi == 0 {
		c.PortHi = DefaultPortHi
	}
	if c.UDPTimeout == 0 {
		c.UDPTimeout = DefaultUDPTimeout
	}
	if c.TCPEstablishedTimeout == 0 {
		c.TCPEstablishedTimeout = DefaultTCPEstablishedTimeout
	}
	if c.TCPTransitoryTimeout == 0 {
		c.TCPTransitoryTimeout = DefaultTCPTransitoryTimeout
	}
	if c.ICMPTimeout == 0 {
		c.ICMPTimeout = DefaultICMPTimeout
	}
	return c
}

// MaxExternal is the most external addresses a pool may hold (a mapping
// keeps its address's index in 16 bits).
const MaxExternal = 65535

// Validate checks the configuration as given (New fills zero timeouts and
// port range ends first). Every error names the setting and what was
// expected; all problems are reported, joined.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.External) == 0 {
		add("external addresses: none given, want at least one IPv4 unicast address")
	}
	if len(c.External) > MaxExternal {
		add("external addresses: %d given, want at most %d", len(c.External), MaxExternal)
	}
	seen := make(map[netip.Addr]bool, len(c.External))
	for _, a := range c.External {
		switch {
		case !a.IsValid():
			add("external address (invalid): want an IPv4 unicast address")
			continue
		case !a.Is4():
			add("external address %s: want IPv4 (IPv6 is not supported)", a)
		case a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			add("external address %s: want a unicast address", a)
		}
		if seen[a] {
			add("external address %s repeated", a)
		}
		seen[a] = true
	}
	if c.Mapping > AddressAndPortDependent {
		add("mapping %s: want endpoint-independent, address-dependent or address-and-port-dependent", c.Mapping)
	}
	if c.Filtering > AddressAndPortDependent {
		add("filtering %s: want endpoint-independent, address-dependent or address-and-port-dependent", c.Filtering)
	}
	if c.ICMPRate < 0 {
		add("icmp-rate %d: want 0 (no limit) or more", c.ICMPRate)
	}
	if c.ICMPInterval < 0 {
		add("icmp-interval %s: want 0 (no limit) or more", c.ICMPInterval)
	}
	if c.PortAssignment > Random {
		add("port-assignment %s: want preserve, sequential or random", c.PortAssignment)
	}
	if c.Pooling > Arbitrary {
		add("pooling %s: want paired or arbitrary", c.Pooling)
	}
	switch {
	case c.PortLo > c.PortHi:
		add("port range %d-%d: low end above high end", c.PortLo, c.PortHi)
	case c.PortLo < 1024:
		add("port range %d-%d: low end must be >= 1024 (ports below 1024 map into 1-1023)", c.PortLo, c.PortHi)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{SettingUDPTimeout, c.UDPTimeout},
		{SettingTCPEstablishedTimeout, c.TCPEstablishedTimeout},
		{SettingTCPTransitoryTimeout, c.TCPTransitoryTimeout},
		{SettingICMPTimeout, c.ICMPTimeout},
	} {
		if d.v <= 0 {
			add("%s %v: must be > 0", d.name, d.v)
		}
	}
	if c.PortOverloading && (c.Mapping != EndpointIndependent || c.Filtering != AddressAndPortDependent) {
		add("port-overloading: needs endpoint-independent mapping and address-and-port-dependent filtering (mapping %s, filtering %s given); set port-overloading=false for other behaviours", c.Mapping, c.Filtering)
	}
	if c.PortOverloading && c.Hairpin {
		// Two inside hosts sharing an external endpoint could not be told
		// apart when one sends to the other's (their shared) endpoint.
		add("port-overloading: cannot be combined with hairpinning; set hairpin=false or port-overloading=false")
	}
	if c.NAT64Prefix.IsValid() {
		if _, err := header.NewNAT64Prefix(c.NAT64Prefix); err != nil {
			add("%s: want a prefix of length 32, 40, 48, 56, 64 or 96", err)
		}
	}
	if c.UDPUnrepliedTimeout < 0 {
		add("udp-unreplied-timeout %v: must be >= 0 (0: off)", c.UDPUnrepliedTimeout)
	}
	if c.PortHold < 0 {
		add("port-hold %v: must be >= 0 (0: off)", c.PortHold)
	}
	for _, l := range []struct {
		name string
		v    int
	}{
		{SettingLimitMappingsPerHost, c.LimitMappingsPerHost},
		{SettingLimitSessionsPerMapping, c.LimitSessionsPerMapping},
		{SettingLimitMappings, c.LimitMappings},
		{SettingLimitSessions, c.LimitSessions},
	} {
		if l.v < 0 {
			add("%s %d: must be >= 0 (0: no limit)", l.name, l.v)
		}
	}
	return errors.Join(errs...)
}
