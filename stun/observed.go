package stun

import "github.com/gonat/gonat/table"

// Observed is what the probe concluded about one behaviour, in the
// vocabulary of table (the words gonat run's flags take): Value when
// Known; not Known when the tests that decide it did not complete or did
// not run.
type Observed[T interface {
	comparable
	String() string
}] struct {
	Value T
	Known bool
}

// Seen returns the Observed that is known to be v.
func Seen[T interface {
	comparable
	String() string
}](v T) Observed[T] {
	return Observed[T]{Value: v, Known: true}
}

// Is reports whether the probe concluded v.
func (o Observed[T]) Is(v T) bool { return o.Known && o.Value == v }

// String returns the value's name ("endpoint-independent", "preserve"),
// or "" when the probe could not tell.
func (o Observed[T]) String() string {
	if !o.Known {
		return ""
	}
	return o.Value.String()
}

// The behaviours Result reports.
type (
	// ObservedBehavior is a mapping or filtering behaviour (RFC 4787 §4.1, §5).
	ObservedBehavior = Observed[table.Behavior]
	// ObservedPorts is a port assignment behaviour (RFC 4787 §4.2.1).
	ObservedPorts = Observed[table.PortAssignment]
)
