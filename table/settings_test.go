package table

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// otherValue returns a text value of s that differs from its value in c.
func otherValue(t *testing.T, s Setting, c Config) string {
	t.Helper()
	cur := s.Value(c)
	var candidates []string
	switch s.Kind {
	case KindWord:
		candidates = s.Words
	case KindBool:
		candidates = []string{"true", "false"}
	case KindDuration:
		candidates = []string{"17s", "19s"}
	case KindPortRange:
		candidates = []string{"2000-3000", "4000-5000"}
	case KindInt:
		candidates = []string{"42", "43"}
	case KindPrefix:
		candidates = []string{"64:ff9b::/96", "2001:db8:64::/96"}
	}
	for _, v := range candidates {
		d := c
		if err := s.Apply(&d, v); err != nil {
			t.Fatalf("%s: Apply(%q): %v", s.Name, v, err)
		}
		if s.Value(d) != cur {
			return v
		}
	}
	t.Fatalf("%s: no value differs from %q", s.Name, cur)
	return ""
}

// Every field of Config but External and External6 (the addresses, given
// with --external and the topology) is some setting's: a field added
// to Config without a setting fails here.
func TestSettingsCoverConfig(t *testing.T) {
	base := DefaultConfig()
	covered := map[string]string{}
	for _, s := range Settings() {
		c := base
		s.Apply(&c, otherValue(t, s, base))
		changed := 0
		bv, cv := reflect.ValueOf(base), reflect.ValueOf(c)
		for i := 0; i < bv.NumField(); i++ {
			f := bv.Type().Field(i).Name
			if !reflect.DeepEqual(bv.Field(i).Interface(), cv.Field(i).Interface()) {
				changed++
				if prev, ok := covered[f]; ok {
					t.Errorf("Config.%s is set by both %s and %s", f, prev, s.Name)
				}
				covered[f] = s.Name
			}
		}
		if changed == 0 {
			t.Errorf("%s: changes no field of Config", s.Name)
		}
	}
	ct := reflect.TypeOf(Config{})
	for i := 0; i < ct.NumField(); i++ {
		if f := ct.Field(i).Name; f != "External" && f != "External6" && covered[f] == "" {
			t.Errorf("Config.%s has no setting: add one to settings (settings.go)", f)
		}
	}
}

// A setting's Value is text its Apply takes back, in every preset.
func TestSettingsRoundTrip(t *testing.T) {
	for _, name := range PresetNames() {
		p, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range Settings() {
			c := DefaultConfig()
			if err := s.Apply(&c, s.Value(p)); err != nil {
				t.Errorf("%s %s: Apply(Value) = %v", name, s.Name, err)
			}
			if got := s.Value(c); got != s.Value(p) {
				t.Errorf("%s %s: Apply(%q) gives %q", name, s.Name, s.Value(p), got)
			}
		}
	}
}

func TestSettingsDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings() {
		if s.Name == "" || s.Name != strings.ToLower(s.Name) || strings.ContainsAny(s.Name, " _=") {
			t.Errorf("setting %q: want a lowercase name of words joined by '-'", s.Name)
		}
		if seen[s.Name] {
			t.Errorf("setting %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if strings.TrimSpace(s.Help) == "" {
			t.Errorf("%s: no help", s.Name)
		}
		if (s.Kind == KindWord) != (len(s.Words) > 0) {
			t.Errorf("%s: kind %d with words %q: only word settings have words", s.Name, s.Kind, s.Words)
		}
		for _, w := range s.Words {
			c := DefaultConfig()
			if err := s.Apply(&c, w); err != nil {
				t.Errorf("%s: its word %q: %v", s.Name, w, err)
			}
		}
		if got, ok := LookupSetting(s.Name); !ok || got.Name != s.Name {
			t.Errorf("LookupSetting(%q) = %q, %v", s.Name, got.Name, ok)
		}
	}
	if strings.Join(SettingNames(), " ") != strings.Join(func() []string {
		var n []string
		for _, s := range Settings() {
			n = append(n, s.Name)
		}
		return n
	}(), " ") {
		t.Error("SettingNames is not in the order of Settings")
	}
}

// The messages name the setting and what it wants: the CLI prints them
// after "--", topology errors after the NAT's name.
func TestApplySettingErrors(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"mapping", "foo", `mapping: behavior "foo": want one of endpoint-independent, address-dependent, address-and-port-dependent (or eim, adm, apdm, eif, adf, apdf)`},
		{"port-assignment", "y", `port-assignment: port assignment "y": want one of preserve, sequential, random`},
		{"pooling", "x", `pooling: pooling "x": want one of paired, arbitrary`},
		{"port-range", "5-1", `port-range "5-1": want LO-HI with 1 <= LO <= HI <= 65535, e.g. 20000-29999`},
		{"hairpin", "maybe", `hairpin "maybe": want true or false`},
		{"udp-timeout", "0s", `udp-timeout "0s": want a positive duration such as 30s, 5m or 2h`},
		{"udp-unreplied-timeout", "-1s", `udp-unreplied-timeout "-1s": want a duration >= 0 such as 30s (0: off, udp-timeout from the first packet)`},
		{"seed", "x", `seed "x": want an integer`},
		{"colour", "red", `unknown setting "colour" (known: ` + strings.Join(SettingNames(), ", ") + `)`},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		err := ApplySetting(&c, tc.name, tc.value)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ApplySetting(%s, %q) = %v\nwant %s", tc.name, tc.value, err, tc.want)
		}
	}
}

// ApplySettings applies in the table's order, whatever the map's.
func TestApplySettingsOrder(t *testing.T) {
	given := map[string]string{}
	want := DefaultConfig()
	for i, s := range Settings() {
		v := otherValue(t, s, want)
		if s.Kind == KindInt {
			v = strconv.Itoa(100 + i)
		}
		given[s.Name] = v
		if err := s.Apply(&want, v); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		c := DefaultConfig()
		if err := ApplySettings(&c, given); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("ApplySettings gave %+v, want %+v", c, want)
		}
	}
	c := DefaultConfig()
	if err := ApplySettings(&c, map[string]string{"hairpin": "false", "colour": "red"}); err == nil || !strings.Contains(err.Error(), `unknown setting "colour"`) {
		t.Errorf("unknown setting: %v", err)
	}
}

// Every preset has a description, and Preset knows every name listed.
func TestPresetsDescribed(t *testing.T) {
	for _, name := range PresetNames() {
		if PresetHelp(name) == "" {
			t.Errorf("preset %s: no help", name)
		}
		if _, err := Preset(strings.ToUpper(name)); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if PresetHelp("bogus") != "" {
		t.Error("PresetHelp describes an unknown preset")
	}
}

// The ipv6 setting takes each mode by name, is none by default, and
// refuses other words naming the ones it takes.
func TestIPv6Setting(t *testing.T) {
	if m := DefaultConfig().IPv6; m != IPv6None {
		t.Fatalf("default IPv6 mode %v, want none", m)
	}
	for _, m := range []IPv6Mode{IPv6None, IPv6Blackhole, IPv6Reject, IPv6Routed, IPv6NPTv6, IPv6NAT64} {
		c := DefaultConfig()
		if err := ApplySetting(&c, SettingIPv6, m.String()); err != nil || c.IPv6 != m {
			t.Errorf("ipv6 %s: got %v, %v", m, c.IPv6, err)
		}
	}
	c := DefaultConfig()
	err := ApplySetting(&c, SettingIPv6, "nat46")
	if err == nil || !strings.Contains(err.Error(), "routed") || !strings.Contains(err.Error(), "ipv6") {
		t.Fatalf("ipv6 nat46: %v", err)
	}
}

// The nat64-prefix setting defaults to the well-known prefix and takes
// the RFC 6052 lengths only, saying so.
func TestNAT64PrefixSetting(t *testing.T) {
	c := DefaultConfig()
	if s, _ := LookupSetting(SettingNAT64Prefix); s.Value(c) != "64:ff9b::/96" {
		t.Fatalf("default %q", s.Value(c))
	}
	if err := ApplySetting(&c, SettingNAT64Prefix, "2001:db8:64::/48"); err != nil || c.NAT64PrefixOrDefault().String() != "2001:db8:64::/48" {
		t.Fatalf("/48: %v, %v", c.NAT64Prefix, err)
	}
	for _, bad := range []string{"2001:db8::/33", "192.0.2.0/24", "64:ff9b::"} {
		if err := ApplySetting(&c, SettingNAT64Prefix, bad); err == nil || !strings.Contains(err.Error(), "nat64-prefix") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
