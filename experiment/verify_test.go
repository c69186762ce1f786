package experiment

import (
	"testing"

	"github.com/gonat/gonat/stun"
	"github.com/gonat/gonat/table"
)

// The port-assignment check reports the probe's own verdict, and an
// undecided probe (a sample without an answer) is unknown, never a match.
func TestChecksPortAssignment(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name       string
		configured table.PortAssignment
		observed   stun.ObservedPorts
		want       string
		ok         bool
	}{
		{"preserve", table.Preserve, stun.Seen(table.Preserve), "preserve", true},
		{"sequential", table.Sequential, stun.Seen(table.Sequential), "sequential", true},
		{"random seen as sequential", table.Random, stun.Seen(table.Sequential), "sequential", false},
		{"undecided", table.Preserve, stun.ObservedPorts{}, "unknown", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := table.Preset("full-cone")
			if err != nil {
				t.Fatal(err)
			}
			c.PortAssignment = tc.configured
			res := stun.Result{Mapping: stun.Seen(table.EndpointIndependent), Filtering: stun.Seen(table.EndpointIndependent), Hairpin: &yes, PortAssignment: tc.observed}
			var got *Check
			cs := checks(c, res)
			for i := range cs {
				if cs[i].Property == "port-assignment" {
					got = &cs[i]
				}
			}
			if got == nil {
				t.Fatalf("no port-assignment check in %+v", cs)
			}
			if got.Configured != tc.configured.String() || got.Observed != tc.want || got.OK != tc.ok {
				t.Fatalf("got %+v, want observed %q ok %v", *got, tc.want, tc.ok)
			}
		})
	}
}
