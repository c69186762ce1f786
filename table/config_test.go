package table

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPresets(t *testing.T) {
	base := Config{
		Mapping:               EndpointIndependent,
		Filtering:             AddressAndPortDependent,
		PortAssignment:        Preserve,
		PortLo:                1024,
		PortHi:                65535,
		Pooling:               Paired,
		Hairpin:               true,
		UDPTimeout:            300 * time.Second,
		TCPEstablishedTimeout: 7440 * time.Second,
		TCPTransitoryTimeout:  240 * time.Second,
		ICMPTimeout:           60 * time.Second,

		PortHold: 120 * time.Second,

		LimitMappingsPerHost:    4096,
		LimitSessionsPerMapping: 4096,
		LimitMappings:           131072,
		LimitSessions:           262144,
		ICMPRate:                1000,
		ICMPInterval:            time.Second,
	}
	with := func(f func(c *Config)) Config {
		c := base
		f(&c)
		return c
	}
	want := map[string]Config{
		"full-cone":            with(func(c *Config) { c.Filtering = EndpointIndependent }),
		"restricted-cone":      with(func(c *Config) { c.Filtering = AddressDependent }),
		"port-restricted-cone": base,
		"symmetric": with(func(c *Config) {
			c.Mapping = AddressAndPortDependent
			c.PortAssignment = Random
		}),
		"linux": with(func(c *Config) {
			c.Hairpin = false
			c.UDPTimeout = 120 * time.Second
			c.UDPUnrepliedTimeout = 30 * time.Second
			c.LinuxLowPorts = true
			c.PortOverloading = true
			c.ICMPTimeout = 30 * time.Second
			c.TCPEstablishedTimeout = 432000 * time.Second
			c.TCPTransitoryTimeout = 120 * time.Second
			c.InboundRefresh = true
		}),
	}
	if got := PresetNames(); !slices.Equal(got, []string{"full-cone", "restricted-cone", "port-restricted-cone", "symmetric", "linux"}) {
		t.Errorf("PresetNames() = %v", got)
	}
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			got, err := Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want[name]) {
				t.Errorf("Preset(%q) =\n%+v\nwant\n%+v", name, got, want[name])
			}
			got.External = []netip.Addr{ext1}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if _, err := New(got); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
	t.Run("default is port-restricted-cone", func(t *testing.T) {
		if !reflect.DeepEqual(DefaultConfig(), base) {
			t.Errorf("DefaultConfig() = %+v, want %+v", DefaultConfig(), base)
		}
	})
	t.Run("unknown name lists the names", func(t *testing.T) {
		_, err := Preset("cone")
		if err == nil {
			t.Fatal("no error")
		}
		for _, n := range PresetNames() {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("error %q does not list %q", err, n)
			}
		}
	})
	t.Run("names ignore case", func(t *testing.T) {
		if _, err := Preset("Full-Cone"); err != nil {
			t.Error(err)
		}
	})
	t.Run("PresetNames is a copy", func(t *testing.T) {
		PresetNames()[0] = "x"
		if PresetNames()[0] != "full-cone" {
			t.Error("PresetNames shares its slice")
		}
	})
}

func TestParseBehavior(t *testing.T) {
	tests := []struct {
		in   string
		want Behavior
	}{
		{"endpoint-independent", EndpointIndependent},
		{"address-dependent", AddressDependent},
		{"address-and-port-dependent", AddressAndPortDependent},
		{"eim", EndpointIndependent},
		{"eif", EndpointIndependent},
		{"adm", AddressDependent},
		{"adf", AddressDependent},
		{"apdm", AddressAndPortDependent},
		{"apdf", AddressAndPortDependent},
		{"EIM", EndpointIndependent},
		{"Address-And-Port-Dependent", AddressAndPortDependent},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBehavior(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseBehavior(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "cone", "eimx", "endpoint independent"} {
		t.Run("bad "+bad, func(t *testing.T) {
			_, err := ParseBehavior(bad)
			if err == nil {
				t.Fatal("no error")
			}
			for _, n := range []string{"endpoint-independent", "address-dependent", "address-and-port-dependent", "eim", "apdf"} {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error %q does not list %q", err, n)
				}
			}
		})
	}
	names := map[Behavior][3]string{
		EndpointIndependent:     {"endpoint-independent", "EIM", "EIF"},
		AddressDependent:        {"address-dependent", "ADM", "ADF"},
		AddressAndPortDependent: {"address-and-port-dependent", "APDM", "APDF"},
	}
	for b, n := range names {
		if b.String() != n[0] || b.Short(false) != n[1] || b.Short(true) != n[2] {
			t.Errorf("%d: String %q Short %q/%q, want %v", b, b.String(), b.Short(false), b.Short(true), n)
		}
		if back, err := ParseBehavior(b.String()); err != nil || back != b {
			t.Errorf("round trip of %v: %v, %v", b, back, err)
		}
	}
}

func TestParsePortAssignmentAndPooling(t *testing.T) {
	for _, p := range []PortAssignment{Preserve, Sequential, Random} {
		got, err := ParsePortAssignment(strings.ToUpper(p.String()))
		if err != nil || got != p {
			t.Errorf("ParsePortAssignment(%q) = %v, %v", p, got, err)
		}
	}
	if Preserve.String() != "preserve" || Sequential.String() != "sequential" || Random.String() != "random" {
		t.Error("PortAssignment names")
	}
	if _, err := ParsePortAssignment("rand"); err == nil || !strings.Contains(err.Error(), "preserve, sequential, random") {
		t.Errorf("bad port assignment: %v", err)
	}
	for _, p := range []Pooling{Paired, Arbitrary} {
		got, err := ParsePooling(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePooling(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := ParsePooling("pair"); err == nil || !strings.Contains(err.Error(), "paired, arbitrary") {
		t.Errorf("bad pooling: %v", err)
	}
}

func TestEnumStrings(t *testing.T) {
	for v, s := range map[Verdict]string{Accept: "accept", DropNoMapping: "no-mapping", DropFiltered: "filtered", DropUnsolicitedSYN: "unsolicited-syn"} {
		if v.String() != s {
			t.Errorf("Verdict %d = %q, want %q", v, v, s)
		}
	}
	for p, s := range map[Protocol]string{ICMP: "icmp", TCP: "tcp", UDP: "udp", 47: "proto(47)"} {
		if p.String() != s {
			t.Errorf("Protocol %d = %q, want %q", p, p, s)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		c := DefaultConfig()
		c.External = []netip.Addr{ext1, ext2}
		return c
	}
	tests := []struct {
		name string
		mod  func(c *Config)
		want string // substring of the error
	}{
		{"no external address", func(c *Config) { c.External = nil }, "external addresses: none given"},
		{"repeated external address", func(c *Config) { c.External = []netip.Addr{ext1, ext2, ext1} }, "external address 198.51.100.1 repeated"},
		{"ipv6 external address", func(c *Config) { c.External = []netip.Addr{netip.MustParseAddr("2001:db8::1")} }, "external address 2001:db8::1: want IPv4"},
		{"multicast external address", func(c *Config) { c.External = []netip.Addr{netip.MustParseAddr("224.0.0.1")} }, "external address 224.0.0.1: want a unicast"},
		{"unspecified external address", func(c *Config) { c.External = []netip.Addr{netip.IPv4Unspecified()} }, "external address 0.0.0.0: want a unicast"},
		{"invalid external address", func(c *Config) { c.External = []netip.Addr{{}} }, "external address (invalid)"},
		{"port range inverted", func(c *Config) { c.PortLo, c.PortHi = 5000, 4000 }, "port range 5000-4000: low end above high end"},
		{"port range below 1024", func(c *Config) { c.PortLo = 100 }, "port range 100-65535: low end must be >= 1024"},
		{"udp timeout zero", func(c *Config) { c.UDPTimeout = 0 }, "udp-timeout 0s: must be > 0"},
		{"tcp established timeout negative", func(c *Config) { c.TCPEstablishedTimeout = -time.Second }, "tcp-established-timeout -1s: must be > 0"},
		{"tcp transitory timeout zero", func(c *Config) { c.TCPTransitoryTimeout = 0 }, "tcp-transitory-timeout 0s"},
		{"icmp timeout zero", func(c *Config) { c.ICMPTimeout = 0 }, "icmp-timeout 0s"},
		{"mapping out of range", func(c *Config) { c.Mapping = 7 }, "mapping behavior(7)"},
		{"filtering out of range", func(c *Config) { c.Filtering = 9 }, "filtering behavior(9)"},
		{"port assignment out of range", func(c *Config) { c.PortAssignment = 3 }, "port-assignment"},
		{"pooling out of range", func(c *Config) { c.Pooling = 2 }, "pooling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("good config", func(t *testing.T) {
		c := good()
		c.UDPTimeout = time.Second // short timeouts are allowed
		c.PortLo, c.PortHi = 40000, 40000
		if err := c.Validate(); err != nil {
			t.Error(err)
		}
	})
	t.Run("all problems reported", func(t *testing.T) {
		c := good()
		c.External = nil
		c.UDPTimeout = 0
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "external") || !strings.Contains(err.Error(), "udp-timeout") {
			t.Errorf("Validate() = %v", err)
		}
	})
	t.Run("New fills defaults", func(t *testing.T) {
		tab, err := New(Config{External: []netip.Addr{ext1}})
		if err != nil {
			t.Fatal(err)
		}
		c := tab.Config()
		if c.PortLo != 1024 || c.PortHi != 65535 || c.UDPTimeout != 300*time.Second ||
			c.TCPEstablishedTimeout != 7440*time.Second || c.TCPTransitoryTimeout != 240*time.Second ||
			c.ICMPTimeout != 60*time.Second {
			t.Errorf("defaults not filled: %+v", c)
		}
		c.External[0] = ext2
		if tab.Config().External[0] != ext1 {
			t.Error("Config() shares External")
		}
	})
	t.Run("New rejects bad config", func(t *testing.T) {
		if _, err := New(Config{}); err == nil {
			t.Error("New(Config{}) succeeded")
		}
	})
}

// WithPreset takes each setting a preset governs from the preset and
// every other one from the NAT as it is. Every field of Config is named
// in one of the two lists, so a new setting must be placed.
func TestWithPreset(t *testing.T) {
	fromPreset := []string{"Mapping", "Filtering", "PortAssignment", "PortLo", "PortHi", "PortOverloading",
		"LinuxLowPorts", "Parity", "Pooling", "Hairpin", "UDPTimeout", "UDPUnrepliedTimeout",
		"TCPEstablishedTimeout", "TCPTransitoryTimeout", "ICMPTimeout", "InboundRefresh", "PortHold"}
	kept := []string{"External", "External6", "Seed", "LimitMappingsPerHost", "LimitSessionsPerMapping",
		"LimitMappings", "LimitSessions", "ICMPRate", "ICMPInterval", "IPv6", "NAT64Prefix", "Firewall", "PMTUBlackhole"}
	p, err := Preset("symmetric")
	if err != nil {
		t.Fatal(err)
	}
	// c differs from p in every field.
	c := p
	cv := reflect.ValueOf(&c).Elem()
	for i := range cv.NumField() {
		f := cv.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 7)
		case reflect.Uint8, reflect.Uint16:
			f.SetUint(f.Uint() + 1)
		}
	}
	c.External = []netip.Addr{netip.MustParseAddr("198.51.100.9")}
	c.External6 = []netip.Addr{netip.MustParseAddr("2001:db8::9")}
	c.NAT64Prefix = netip.MustParsePrefix("2001:db8:64::/96")
	if c.Firewall, err = ParseFirewall("block-udp"); err != nil {
		t.Fatal(err)
	}
	got := reflect.ValueOf(c.WithPreset(p))
	pv := reflect.ValueOf(p)
	seen := map[string]bool{}
	for _, names := range []struct {
		names []string
		want  reflect.Value
		from  string
	}{{fromPreset, pv, "the preset"}, {kept, cv, "the NAT"}} {
		for _, n := range names.names {
			seen[n] = true
			if g, w := got.FieldByName(n), names.want.FieldByName(n); !reflect.DeepEqual(g.Interface(), w.Interface()) {
				t.Errorf("%s: %v, want %v from %s", n, g, w, names.from)
			}
			if reflect.DeepEqual(pv.FieldByName(n).Interface(), cv.FieldByName(n).Interface()) {
				t.Errorf("%s: the test's NAT and preset agree, so it checks nothing", n)
			}
		}
	}
	for i := range pv.NumField() {
		if n := pv.Type().Field(i).Name; !seen[n] {
			t.Errorf("Config.%s is in neither list: does a preset govern it?", n)
		}
	}
}
