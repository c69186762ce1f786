package table

import (
	"fmt"
	"strconv"
	"strings"
)

// Firewall is a NAT's packet filter on its outside boundary, on top of
// its NAT behaviour: a list of rules, the first that matches a packet
// deciding, a packet no rule matches passing. The engine acts on it
// (outbound before translation, inbound after the mapping lookup); the
// table only stores it.
//
// Its text form is a profile name or a rule list. A rule is
//
//	allow|deny [udp|tcp|icmp] [PORTS] [in|out]
//
// with rules separated by ";". PORTS (udp and tcp only) is a comma list
// of ports and LO-HI ranges, always the remote (outside) endpoint's
// port: the destination going out, the source coming in, so one rule
// covers both ways of a flow. A rule without a protocol matches every
// protocol, one without a direction both directions. The profiles are
// rule lists with names:
//
//	none                no rules
//	block-udp           deny udp            (only TCP and ICMP pass)
//	web-only            allow tcp 80,443; deny   (TCP to ports 80 and 443 only)
//	block-inbound-icmp  deny icmp in
type Firewall struct {
	text  string // as given, normalised; "" is none
	rules []FirewallRule
}

// FirewallRule is one rule of a Firewall.
type FirewallRule struct {
	Allow bool
	// Proto is the protocol the rule matches, 0 for any.
	Proto Protocol
	// Ports are the remote ports it matches, none for any.
	Ports []PortSpan
	// In and Out are the directions it matches.
	In, Out bool
}

// PortSpan is a range of ports, both ends included.
type PortSpan struct{ Lo, Hi uint16 }

// firewallProfiles are the named rule lists.
var firewallProfiles = [...][2]string{
	{"none", ""},
	{"block-udp", "deny udp"},
	{"web-only", "allow tcp 80,443; deny"},
	{"block-inbound-icmp", "deny icmp in"},
}

// FirewallProfiles lists the profile names, for completion and help.
func FirewallProfiles() []string {
	out := make([]string, len(firewallProfiles))
	for i, p := range firewallProfiles {
		out[i] = p[0]
	}
	return out
}

const firewallWant = "none, block-udp, web-only, block-inbound-icmp, or rules such as \"deny udp out; allow tcp 80,443\" (allow|deny [udp|tcp|icmp] [PORTS] [in|out], separated by ;)"

// ParseFirewall parses a profile name or a rule list.
func ParseFirewall(s string) (Firewall, error) {
	s = strings.TrimSpace(s)
	src := s
	for _, p := range firewallProfiles {
		if strings.EqualFold(s, p[0]) {
			s, src = p[1], p[0]
			break
		}
	}
	if src == "none" {
		return Firewall{}, nil
	}
	var f Firewall
	var norm []string
	for _, part := range strings.Split(s, ";") {
		words := strings.Fields(strings.ToLower(part))
		if len(words) == 0 {
			continue
		}
		r, err := parseFirewallRule(words)
		if err != nil {
			return Firewall{}, wantErr(fmt.Sprintf("%s; rule %q: %v", firewallWant, strings.TrimSpace(part), err))
		}
		f.rules = append(f.rules, r)
		norm = append(norm, strings.Join(words, " "))
	}
	if len(f.rules) == 0 {
		return Firewall{}, nil
	}
	f.text = src
	if f.text == s {
		f.text = strings.Join(norm, "; ")
	}
	return f, nil
}

func parseFirewallRule(w []string) (FirewallRule, error) {
	var r FirewallRule
	switch w[0] {
	case "allow":
		r.Allow = true
	case "deny":
	default:
		return r, fmt.Errorf("starts with %q, not allow or deny", w[0])
	}
	w = w[1:]
	if len(w) > 0 {
		switch w[0] {
		case "udp":
			r.Proto, w = UDP, w[1:]
		case "tcp":
			r.Proto, w = TCP, w[1:]
		case "icmp":
			r.Proto, w = ICMP, w[1:]
		}
	}
	if len(w) > 0 && w[0] != "in" && w[0] != "out" {
		if r.Proto != UDP && r.Proto != TCP {
			return r, fmt.Errorf("%q: ports need udp or tcp before them", w[0])
		}
		for _, p := range strings.Split(w[0], ",") {
			lo, hi, isRange := strings.Cut(p, "-")
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.ParseUint(lo, 10, 16)
			h, err2 := strconv.ParseUint(hi, 10, 16)
			if err1 != nil || err2 != nil || l == 0 || l > h {
				return r, fmt.Errorf("%q is not a port or LO-HI range of 1-65535", p)
			}
			r.Ports = append(r.Ports, PortSpan{uint16(l), uint16(h)})
		}
		w = w[1:]
	}
	r.In, r.Out = true, true
	if len(w) > 0 {
		switch w[0] {
		case "in":
			r.Out = false
		case "out":
			r.In = false
		}
		w = w[1:]
	}
	if len(w) > 0 {
		return r, fmt.Errorf("%q left over", strings.Join(w, " "))
	}
	return r, nil
}

// String is the firewall's text form: its profile name, or its rules.
func (f Firewall) String() string {
	if f.text == "" {
		return "none"
	}
	return f.text
}

// IsZero says the firewall has no rules: every packet passes.
func (f *Firewall) IsZero() bool { return len(f.rules) == 0 }

// Rules returns the firewall's rules, in order.
func (f *Firewall) Rules() []FirewallRule { return append([]FirewallRule(nil), f.rules...) }

// Allows says whether a packet of protocol proto with remote port port
// passes, going out (out) or coming in. ICMP packets have port 0.
func (f *Firewall) Allows(proto Protocol, port uint16, out bool) bool {
	for i := range f.rules {
		r := &f.rules[i]
		if out && !r.Out || !out && !r.In || r.Proto != 0 && r.Proto != proto {
			continue
		}
		if len(r.Ports) > 0 {
			hit := false
			for _, s := range r.Ports {
				if port >= s.Lo && port <= s.Hi {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
		}
		return r.Allow
	}
	return true
}
