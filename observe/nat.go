package observe

// NAT is what `lab status` and the web view both say of a NAT: its name,
// its behaviour in the settings' words and its packets by verdict. Each
// embeds it beside what only it shows (the status: the seed and a count
// of mappings; the web view: a page of the mappings themselves), so the
// two agree on these fields' names and meanings by construction.
type NAT struct {
	Name           string `json:"name"`
	Mapping        string `json:"mapping"`         // endpoint-independent | address-dependent | address-and-port-dependent
	Filtering      string `json:"filtering"`       // the same, for filtering
	PortAssignment string `json:"port_assignment"` // preserve | sequential | random
	Hairpin        bool   `json:"hairpin"`
	// Packets counts packets per verdict and drop reason: forward,
	// filtered, no-mapping, impair-loss, ...
	Packets map[string]uint64 `json:"packets"`
}
