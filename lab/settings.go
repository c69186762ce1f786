// Package lab builds the networks gonat runs in: NATs between network
// namespaces (what `gonat run` and `gonat demo` do), from command-line
// flags or topology files. The behaviour settings both take are
// table.Settings.
package lab

import (
	"net/netip"

	"github.com/gonat/gonat/table"
)

// Behavior builds a NAT behaviour: a preset (empty: the default,
// port-restricted cone) with settings (table.Settings, by name, as text)
// applied over it in a fixed order, so "preset symmetric, filtering eif"
// always means the same thing.
func Behavior(preset string, settings map[string]string, external []netip.Addr) (table.Config, error) {
	c := table.DefaultConfig()
	if preset != "" {
		p, err := table.Preset(preset)
		if err != nil {
			return table.Config{}, err
		}
		c = p
	}
	if err := table.ApplySettings(&c, settings); err != nil {
		return table.Config{}, err
	}
	c.External = append([]netip.Addr(nil), external...)
	if err := c.Validate(); err != nil {
		return table.Config{}, err
	}
	return c, nil
}
