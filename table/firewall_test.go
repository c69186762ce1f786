package table

import (
	"strings"
	"testing"
)

func TestFirewallProfilesAndRules(t *testing.T) {
	type pkt struct {
		proto Protocol
		port  uint16
		out   bool
		pass  bool
	}
	cases := []struct {
		text, str string
		pkts      []pkt
	}{
		{"none", "none", []pkt{{UDP, 53, true, true}, {ICMP, 0, false, true}}},
		{"", "none", []pkt{{UDP, 53, true, true}}},
		{"block-udp", "block-udp", []pkt{{UDP, 3478, true, false}, {UDP, 3478, false, false}, {TCP, 443, true, true}, {ICMP, 0, true, true}}},
		{"web-only", "web-only", []pkt{{TCP, 443, true, true}, {TCP, 80, false, true}, {TCP, 22, true, false}, {UDP, 443, true, false}, {ICMP, 0, true, false}}},
		{"block-inbound-icmp", "block-inbound-icmp", []pkt{{ICMP, 0, true, true}, {ICMP, 0, false, false}, {UDP, 9, false, true}}},
		{"deny udp out; allow tcp 80,443", "deny udp out; allow tcp 80,443", []pkt{{UDP, 53, true, false}, {UDP, 53, false, true}, {TCP, 22, true, true}}},
		{" Allow TCP 1000-2000 OUT ;deny tcp", "allow tcp 1000-2000 out; deny tcp", []pkt{{TCP, 1500, true, true}, {TCP, 999, true, false}, {TCP, 1500, false, false}, {UDP, 1, true, true}}},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			f, err := ParseFirewall(c.text)
			if err != nil {
				t.Fatal(err)
			}
			if f.String() != c.str {
				t.Errorf("String() = %q, want %q", f.String(), c.str)
			}
			// The text form parses to the same rules.
			g, err := ParseFirewall(f.String())
			if err != nil || len(g.Rules()) != len(f.Rules()) {
				t.Errorf("round trip of %q: %v, %d rules, want %d", f.String(), err, len(g.Rules()), len(f.Rules()))
			}
			for _, p := range c.pkts {
				if got := f.Allows(p.proto, p.port, p.out); got != p.pass {
					t.Errorf("proto %d port %d out=%v: pass %v, want %v", p.proto, p.port, p.out, got, p.pass)
				}
			}
		})
	}
}

func TestFirewallErrors(t *testing.T) {
	for _, s := range []string{"block-tcp", "deny icmp 80", "deny udp 0", "deny udp 9-8", "deny udp 70000", "deny udp out in", "permit udp", "deny 80"} {
		var c Config
		err := ApplySetting(&c, SettingFirewall, s)
		if err == nil {
			t.Errorf("%q: accepted", s)
			continue
		}
		if !strings.HasPrefix(err.Error(), "firewall ") || !strings.Contains(err.Error(), "block-udp") {
			t.Errorf("%q: error %q should name the setting and what it takes", s, err)
		}
	}
}
