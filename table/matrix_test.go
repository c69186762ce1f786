package table

import (
	"net/netip"
	"testing"
	"time"
)

// comboName is the classic (RFC 3489) name of a mapping/filtering pair where
// there is one, else the RFC 4787 abbreviations.
func comboName(m, f Behavior) string {
	switch {
	case m == EndpointIndependent && f == EndpointIndependent:
		return "full-cone"
	case m == EndpointIndependent && f == AddressDependent:
		return "restricted-cone"
	case m == EndpointIndependent && f == AddressAndPortDependent:
		return "port-restricted-cone"
	case m == AddressAndPortDependent && f == AddressAndPortDependent:
		return "symmetric"
	}
	return m.Short(false) + "-" + f.Short(true)
}

// matrixStep is one packet of the behaviour matrix (natlab style). An
// outbound step records its mapping under label and says whether it must be
// new; an inbound step sends from src to the external endpoint of the mapping
// labelled to and says whether it must be accepted.
type matrixStep struct {
	name     string
	out      bool
	src, dst netip.AddrPort
	label    string
	wantNew  func(m Behavior) bool
	sameAs   string // outbound, not new: must reuse this label's mapping
	to       string
	accept   func(m, f Behavior) bool
	advance  time.Duration
	wantGone bool // inbound: DropNoMapping whatever the behaviour
}

// The RFC 5780 §4.3 mapping tests (M1, M2, M3) from A:5000, then the §4.4
// filtering tests (F2, F3) on a fresh port A:6000, then inbound checks on
// M1's mapping that depend on both behaviours.
var matrixSteps = []matrixStep{
	{name: "M1 to A1:P1", out: true, src: ep(hostA, 5000), dst: ep(srvA1, portP1), label: "M1",
		wantNew: func(Behavior) bool { return true }},
	{name: "M2 to A2:P1", out: true, src: ep(hostA, 5000), dst: ep(srvA2, portP1), label: "M2", sameAs: "M1",
		wantNew: func(m Behavior) bool { return m != EndpointIndependent }},
	{name: "M3 to A2:P2", out: true, src: ep(hostA, 5000), dst: ep(srvA2, portP2), label: "M3", sameAs: "M2",
		wantNew: func(m Behavior) bool { return m == AddressAndPortDependent }},

	{name: "fresh port to A1:P1", out: true, src: ep(hostA, 6000), dst: ep(srvA1, portP1), label: "F",
		wantNew: func(Behavior) bool { return true }},
	{name: "F1 reply from A1:P1", src: ep(srvA1, portP1), to: "F",
		accept: func(_, _ Behavior) bool { return true }},
	{name: "F3 from other port", src: ep(srvA1, portP2), to: "F",
		accept: func(_, f Behavior) bool { return f != AddressAndPortDependent }},
	{name: "F2 from other address and port", src: ep(srvA2, portP2), to: "F",
		accept: func(_, f Behavior) bool { return f == EndpointIndependent }},
	{name: "F from other address same port", src: ep(srvA2, portP1), to: "F",
		accept: func(_, f Behavior) bool { return f == EndpointIndependent }},
	{name: "F from a stranger", src: ep(other, 53), to: "F",
		accept: func(_, f Behavior) bool { return f == EndpointIndependent }},

	// M1's mapping has sessions to all three server endpoints only when it
	// is endpoint independent; otherwise M2 and M3 made their own.
	{name: "M1 from A2:P2", src: ep(srvA2, portP2), to: "M1",
		accept: func(m, f Behavior) bool { return m == EndpointIndependent || f == EndpointIndependent }},
	{name: "M1 from A2:other port", src: ep(srvA2, 3480), to: "M1",
		accept: func(m, f Behavior) bool {
			return f == EndpointIndependent || (m == EndpointIndependent && f == AddressDependent)
		}},
	{name: "M3 from A2:P1", src: ep(srvA2, portP1), to: "M3",
		accept: func(m, f Behavior) bool { return m != AddressAndPortDependent || f != AddressAndPortDependent }},

	// Permissions lapse with the mapping: after the UDP timeout nothing is
	// admitted whatever the filter.
	{name: "M1 after timeout", src: ep(srvA1, portP1), to: "M1", advance: 301 * time.Second, wantGone: true},
}

func TestBehaviorMatrix(t *testing.T) {
	behaviors := []Behavior{EndpointIndependent, AddressDependent, AddressAndPortDependent}
	for _, mb := range behaviors {
		for _, fb := range behaviors {
			t.Run(comboName(mb, fb), func(t *testing.T) {
				tab := newTable(t, func(c *Config) {
					c.Mapping, c.Filtering = mb, fb
				})
				now := t0
				maps := map[string]*Mapping{}
				for _, st := range matrixSteps {
					now = now.Add(st.advance)
					if st.out {
						want := st.wantNew(mb)
						name := st.name + map[bool]string{true: " new mapping", false: " reuses mapping"}[want]
						t.Run(name, func(t *testing.T) {
							m, created, err := tab.Outbound(UDP, st.src, st.dst, 0, now)
							if err != nil {
								t.Fatal(err)
							}
							if created != want {
								t.Errorf("created = %v, want %v", created, want)
							}
							if !want && st.sameAs != "" && m != maps[st.sameAs] {
								t.Errorf("mapping %v, want the one of %s (%v)", m.External(), st.sameAs, maps[st.sameAs].External())
							}
							if want {
								for l, o := range maps {
									if o.External() == m.External() {
										t.Errorf("new mapping reuses %s's external %v", l, m.External())
									}
								}
							}
							maps[st.label] = m
						})
						continue
					}
					want := Accept
					switch {
					case st.wantGone:
						want = DropNoMapping
					case !st.accept(mb, fb):
						want = DropFiltered
					}
					name := st.name + map[bool]string{true: " answered", false: " dropped"}[want == Accept]
					t.Run(name, func(t *testing.T) {
						target := maps[st.to]
						if target == nil {
							t.Fatalf("no mapping %s", st.to)
						}
						m, v := tab.Inbound(UDP, target.External(), st.src, 0, now)
						if v != want {
							t.Fatalf("verdict %s, want %s", v, want)
						}
						if v == Accept && m != target {
							t.Fatalf("accepted into %v, want %v", m, target)
						}
					})
				}
			})
		}
	}
}
