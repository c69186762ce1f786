package observe

import (
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
)

// Mapping is the one view of a live mapping that leaves the process: the
// control socket's table, `gonat table` (text and --json) and the web
// view's snapshot all carry it. Its JSON field names are a contract that
// users script against (docs/control.md lists them); they share their
// names with the fields of an Event and the labels of the metrics.
type Mapping struct {
	NAT      string `json:"nat"`
	Proto    string `json:"proto"`    // udp, tcp, icmp
	Internal string `json:"internal"` // inside endpoint, e.g. 10.0.1.2:5000
	External string `json:"external"` // external endpoint, e.g. 198.51.100.1:40001
	// Remotes are the remote endpoints the filter admits; a TCP one
	// carries its state: "203.0.113.10:80 (ESTABLISHED)".
	Remotes []string `json:"remotes"`
	// RemotesTotal is set where Remotes is cut (the web view's
	// snapshot): how many remotes the mapping has.
	RemotesTotal int    `json:"remotes_total,omitempty"`
	ExpiresIn    int64  `json:"expires_in"` // seconds left, rounded; 0 once due
	Age          string `json:"age"`        // since creation, rounded to seconds, e.g. "1m5s"
	PacketsOut   uint64 `json:"packets_out"`
	PacketsIn    uint64 `json:"packets_in"`
	BytesOut     uint64 `json:"bytes_out"`
	BytesIn      uint64 `json:"bytes_in"`
}

// MappingOf is the view of engine mapping m of NAT natName at time now.
func MappingOf(natName string, m nat.MappingInfo, now time.Time) Mapping {
	v := Mapping{NAT: natName, Proto: m.Proto.String(), Internal: m.Internal.String(), External: m.External.String(),
		ExpiresIn:  int64(max(m.Expires.Sub(now), 0).Round(time.Second) / time.Second),
		Age:        now.Sub(m.Created).Round(time.Second).String(),
		PacketsOut: m.PacketsOut, PacketsIn: m.PacketsIn, BytesOut: m.BytesOut, BytesIn: m.BytesIn}
	for _, s := range m.Remotes {
		r := s.Remote.String()
		if m.Proto == table.TCP && s.State != "" {
			r += " (" + s.State + ")"
		}
		v.Remotes = append(v.Remotes, r)
	}
	return v
}

// Mappings lists the live mappings of engine e, the NAT natName, as
// views at time now.
func Mappings(natName string, e *nat.Engine, now time.Time) []Mapping {
	var out []Mapping
	e.Mappings(now, func(m nat.MappingInfo) { out = append(out, MappingOf(natName, m, now)) })
	return out
}
