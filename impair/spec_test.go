package impair

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
	}{
		{"", Spec{}},
		{"delay=50ms jitter=10ms loss=1% rate=10mbit queue=50ms", Spec{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01, Rate: 10e6, QueueTime: 50 * time.Millisecond}},
		{"rate=512kbit", Spec{Rate: 512e3, QueueTime: DefaultQueue}},
		{"rate=1.5gbit queue=100p", Spec{Rate: 1.5e9, QueuePackets: 100}},
		{"loss=gilbert:p=1%,r=25%", Spec{Gilbert: &Gilbert{P: 0.01, R: 0.25}}},
		{"duplicate=2% reorder=5% delay=10ms corrupt=0.1%", Spec{Duplicate: 0.02, Reorder: 0.05, Delay: 10 * time.Millisecond, Corrupt: 0.001}},
		{"family=ipv6 delay=300ms", Spec{Family: 6, Delay: 300 * time.Millisecond}},
		{"loss=5% family=ipv4", Spec{Family: 4, Loss: 0.05}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got.String() != tc.want.String() || (got.Gilbert == nil) != (tc.want.Gilbert == nil) {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.want)
		}
		again, err := Parse(got.String())
		if err != nil || again.String() != got.String() {
			t.Errorf("round trip of %q: %q, %v", got, again, err)
		}
	}
}

// TestParseErrors checks that each error names the key and what was expected.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"delay", "expected KEY=VALUE"},
		{"delay=fast", "delay=fast: expected a duration"},
		{"delay=-5ms", "delay=-5ms: expected a duration"},
		{"loss=10", "loss=10: expected a percentage"},
		{"loss=150%", "loss=150%: expected a percentage"},
		{"loss=gilbert:p=1%", "expected both p=P% and r=R%"},
		{"loss=gilbert:p=1%,r=0%", "r=0% never leaves"},
		{"loss=gilbert:q=1%", "expected p=P%,r=R%"},
		{"rate=10mbps", "rate=10mbps: expected a rate"},
		{"rate=0mbit", "rate=0mbit: expected a rate"},
		{"queue=50ms", "queue= bounds the rate queue: it needs rate="},
		{"rate=1mbit queue=0p", "queue=0p: expected a packet count"},
		{"reorder=5%", "reorder= sends packets ahead of delayed ones: it needs delay="},
		{"delay=5ms jitter=10ms", "expected jitter <= delay"},
		{"loss=1% loss=2%", "loss given twice"},
		{"speed=1", `unknown key "speed"`},
		{"family=inet6 delay=1ms", "family=inet6: expected ipv4 or ipv6"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestIsZero(t *testing.T) {
	if !MustParse("family=ipv6").IsZero() {
		t.Error("family= alone impairs nothing")
	}
	if !MustParse("").IsZero() || MustParse("loss=1%").IsZero() || MustParse("loss=0%").IsZero() != true {
		t.Error("IsZero wrong")
	}
}

// Matches: a family-less spec impairs both IP versions, family= only its own.
func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		spec   string
		v4, v6 bool
	}{{"delay=1ms", true, true}, {"family=ipv4 delay=1ms", true, false}, {"family=ipv6 delay=1ms", false, true}} {
		s := MustParse(tc.spec)
		if s.Matches(4) != tc.v4 || s.Matches(6) != tc.v6 {
			t.Errorf("%q: Matches(4) %t, Matches(6) %t; want %t, %t", tc.spec, s.Matches(4), s.Matches(6), tc.v4, tc.v6)
		}
	}
}
