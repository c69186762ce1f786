package experiment

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/stun"
	"github.com/gonat/gonat/table"
)

// VerifyTarget is one NAT to check: its configured behaviour, a
// namespace directly behind it to probe from, and the namespace its
// outside port is in (where a STUN server sees exactly this NAT's work).
type VerifyTarget struct {
	NAT        string
	Configured table.Config
	From       string // namespace of a host directly behind the NAT ("" if none)
	FromName   string // that host's name
	Outside    string // namespace of the NAT's outside port
}

// Check is one property, configured next to observed.
type Check struct {
	Property   string `json:"property"`
	Configured string `json:"configured"`
	Observed   string `json:"observed"`
	OK         bool   `json:"ok"`
}

// VerifyResult is the verdict for one NAT.
type VerifyResult struct {
	NAT     string  `json:"nat"`
	From    string  `json:"from,omitempty"`
	Checks  []Check `json:"checks,omitempty"`
	Skipped string  `json:"skipped,omitempty"`
	Err     string  `json:"error,omitempty"`
}

// OK reports whether every checked property matched.
func (r VerifyResult) OK() bool {
	if r.Err != "" {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Verify probes each target with the RFC 5780 probe against a STUN server
// started for the purpose on the NAT's outside, on two addresses (servers)
// put on that namespace's loopback for the duration: so a NAT behind
// another NAT is measured alone, not combined with its upstream.
func Verify(ctx context.Context, targets []VerifyTarget, servers [2]netip.Addr) []VerifyResult {
	var out []VerifyResult
	started := map[string]bool{}
	for _, tg := range targets {
		r := VerifyResult{NAT: tg.NAT, From: tg.FromName}
		if tg.From == "" {
			r.Skipped = "no host directly behind it to probe from"
			out = append(out, r)
			continue
		}
		if !started[tg.Outside] {
			stop, err := startProbeServer(ctx, tg.Outside, servers)
			if err != nil {
				r.Err = err.Error()
				out = append(out, r)
				continue
			}
			defer stop()
			started[tg.Outside] = true
		}
		r.Checks, r.Err = verifyOne(ctx, tg, servers)
		out = append(out, r)
	}
	return out
}

func startProbeServer(ctx context.Context, nsName string, servers [2]netip.Addr) (func(), error) {
	if err := ns.AddLocalAddrs(nsName, netip.PrefixFrom(servers[0], 32), netip.PrefixFrom(servers[1], 32)); err != nil {
		return nil, err
	}
	srv, err := stun.NewServer(stun.ServerConfig{Primary: servers[0], Alternate: servers[1], ListenPacket: ns.ListenPacket(nsName)})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	go srv.Serve(sctx)
	return func() {
		cancel()
		srv.Close()
		ns.DelLocalAddrs(nsName, netip.PrefixFrom(servers[0], 32), netip.PrefixFrom(servers[1], 32))
	}, nil
}

func verifyOne(ctx context.Context, tg VerifyTarget, servers [2]netip.Addr) ([]Check, string) {
	server := netip.AddrPortFrom(servers[0], stun.DefaultPort)
	listen := ns.ListenPacket(tg.From)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := stun.Probe(pctx, stun.ProbeConfig{Server: server, ListenPacket: listen, RTO: 100 * time.Millisecond, Retries: 3})
	if err != nil {
		return nil, err.Error()
	}
	return checks(tg.Configured, res), ""
}

// checks compares the configured behaviour with what the probe observed,
// as values: a property matches when the probe concluded the configured
// value. Port assignment is the probe's own verdict (see stun.Probe),
// unknown when it could not decide.
func checks(c table.Config, res stun.Result) []Check {
	cs := []Check{
		{Property: table.SettingMapping, Configured: c.Mapping.String(), Observed: orUnknown(res.Mapping.String()), OK: res.Mapping.Is(c.Mapping)},
		{Property: table.SettingFiltering, Configured: c.Filtering.String(), Observed: orUnknown(res.Filtering.String()), OK: res.Filtering.Is(c.Filtering)},
	}
	// The probe sees hairpinning only where its second socket's packet can
	// pass M1's filter: not when a non-EIM NAT also filters.
	if c.Mapping == table.EndpointIndependent || c.Filtering == table.EndpointIndependent {
		obs := "unknown"
		if res.Hairpin != nil {
			obs = strconv.FormatBool(*res.Hairpin)
		}
		cs = append(cs, Check{Property: table.SettingHairpin, Configured: strconv.FormatBool(c.Hairpin), Observed: obs,
			OK: res.Hairpin != nil && *res.Hairpin == c.Hairpin})
	}
	cs = append(cs, Check{Property: table.SettingPortAssignment, Configured: c.PortAssignment.String(),
		Observed: orUnknown(res.PortAssignment.String()), OK: res.PortAssignment.Is(c.PortAssignment)})
	return cs
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ErrMismatch reports that some NAT did not behave as configured.
var ErrMismatch = errors.New("observed behaviour differs from the configuration")
