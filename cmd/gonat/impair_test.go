package main

import (
	"strings"
	"testing"
)

// --impair sets both ways of the outside link; --impair-in and
// --impair-out add to it, their keys over its.
func TestOutsideImpair(t *testing.T) {
	pi, err := outsideImpair("delay=50ms loss=1%", "loss=5%", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := pi[0].In.String(); got != "delay=50ms loss=5%" {
		t.Errorf("in: %q", got)
	}
	if got := pi[0].Out.String(); got != "delay=50ms loss=1%" {
		t.Errorf("out: %q", got)
	}
	if pi, err := outsideImpair("", "", ""); pi != nil || err != nil {
		t.Errorf("no flags: %v, %v", pi, err)
	}
	if pi, _ := outsideImpair("", "", "rate=1mbit"); !pi[0].In.IsZero() || pi[0].Out.Rate != 1e6 {
		t.Errorf("out only: %+v", pi[0])
	}
	if _, err := outsideImpair("", "lose=1%", ""); err == nil || !strings.Contains(err.Error(), `--impair-in "lose=1%"`) || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("error %v, want the flag and the key named", err)
	}
}
