// Package experiment runs the studies gonat ships: the hole-punching
// matrix (two peers behind every pair of NAT types, in real namespaces)
// and the verification of a lab's NATs with the RFC 5780 probe.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/stun"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/traverse"
)

// NATType is one axis value of the matrix: a preset, or a mapping x
// filtering combination.
type NATType struct {
	Name     string            // "full-cone" or "eim/adf"
	Preset   string            // preset name, or ""
	Settings map[string]string // behaviour settings over the preset
	Mapping  table.Behavior
	Filter   table.Behavior
}

// ClassicTypes are the four RFC 3489 types, as presets.
func ClassicTypes() []NATType {
	var out []NATType
	for _, p := range []string{"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"} {
		c, _ := table.Preset(p)
		out = append(out, NATType{Name: p, Preset: p, Mapping: c.Mapping, Filter: c.Filtering})
	}
	return out
}

// AllCombinations are the nine RFC 4787 mapping x filtering pairs (port
// preservation, hairpin on).
func AllCombinations() []NATType {
	var out []NATType
	bs := []table.Behavior{table.EndpointIndependent, table.AddressDependent, table.AddressAndPortDependent}
	for _, m := range bs {
		for _, f := range bs {
			out = append(out, NATType{
				Name:     strings.ToLower(m.Short(false) + "/" + f.Short(true)),
				Settings: map[string]string{table.SettingMapping: m.String(), table.SettingFiltering: f.String()},
				Mapping:  m, Filter: f,
			})
		}
	}
	return out
}

// Expected says whether UDP hole punching without port prediction
// connects two peers behind NATs a and b: as an RFC 8445 agent sees it, or
// with permissive, as a peer that takes any packet from its partner as the
// connection. Each peer checks (punches) from the one socket whose mapping
// the rendezvous server saw (its server-reflexive endpoint, S) to the
// other's S. (Both NATs have one external address each, and the server's
// address is neither.)
//
// A check from a arrives at b's S. It passes b's filter if b filters
// nothing, or if b's own checks to a left through that same mapping (b
// maps endpoint-independently) and the filter admits a's source: any port
// of a's address (address-dependent), or exactly a's S, which is where a's
// check comes from only if a too maps endpoint-independently.
//
// b then answers to where the check came from. The mapping a checked from
// knows exactly one remote, b's S, so the answer passes a's filter unless a
// filters on address and port and b's answer leaves from a mapping other
// than S (b is not endpoint-independent). A permissive peer connects on
// any packet from its partner, so the peers connect if either one's check
// gets through and its answer comes back.
//
// An RFC 8445 agent accepts a response only from the address its check
// was sent to (§7.2.5.2.1), and each side needs a response to a check of
// its own. It also learns the source of a check it did not know as a
// peer-reflexive candidate and checks it back (§7.3.1.3, §7.3.1.4). The
// answerer's response to a check from source X leaves through its mapping
// towards X; it comes from the checked address D when that mapping is the
// one D was observed on:
//   - answerer EIM: it has one mapping; D is its S.
//   - answerer ADM: D is the peer-reflexive address of its own check to
//     the checker's NAT address, which is X's address: the same mapping.
//   - answerer APDM: only if X is exactly where the answerer's check that
//     revealed D went. An EIM checker's X is its S, which the answerer
//     checks; an ADM checker's X is its one mapping towards the answerer's
//     address, which the answerer learns from it and checks. An APDM
//     checker's X is its mapping towards D, new when D was learnt, so
//     never where the answerer's earlier check went: each answer and each
//     triggered check opens yet another mapping, and no pair ever becomes
//     valid in either direction.
//
// The filters met are those of the permissive exchange (a peer-reflexive
// check retraces a path a packet already took), so strictly the peers
// connect when permissively they do and the two mappings are not both
// address-and-port-dependent. The unit tests check this against a
// packet-level simulation of both kinds of agent for all 45 pairs.
func Expected(a, b NATType, permissive bool) bool {
	arrives := func(from, at NATType) bool {
		return at.Filter == table.EndpointIndependent ||
			(at.Mapping == table.EndpointIndependent &&
				(at.Filter == table.AddressDependent || from.Mapping == table.EndpointIndependent))
	}
	answered := func(checker, answerer NATType) bool {
		return checker.Filter != table.AddressAndPortDependent || answerer.Mapping == table.EndpointIndependent
	}
	loose := (arrives(a, b) && answered(a, b)) || (arrives(b, a) && answered(b, a))
	if permissive {
		return loose
	}
	return loose && (a.Mapping != table.AddressAndPortDependent || b.Mapping != table.AddressAndPortDependent)
}

// Outcome is one cell of the matrix.
type Outcome struct {
	A         string        `json:"a"`
	B         string        `json:"b"`
	Proto     string        `json:"proto"`
	Expected  bool          `json:"expected"`
	Connected bool          `json:"connected"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Reason    string        `json:"reason,omitempty"`
	Pair      string        `json:"pair,omitempty"` // which candidates connected
	Err       string        `json:"error,omitempty"`
}

// Agrees reports whether the outcome is the expected one.
func (o Outcome) Agrees() bool { return o.Err == "" && o.Connected == o.Expected }

// MatrixConfig runs a matrix.
type MatrixConfig struct {
	Types     []NATType
	TCP       bool
	Parallel  int           // labs at once (default 4)
	Timeout   time.Duration // per peer (default 5s)
	Progress  func(done, total int, o Outcome)
	GonatPath string
	// Permissive (UDP): the peers take any packet from the partner as the
	// connection. TCP connections are symmetric by nature: judged strictly.
	Permissive bool
	// IPv6, unless IPv6None, runs the matrix over IPv6 with every NAT in
	// this mode (one CheckIPv6Mode accepts); the expected table is that
	// of the NAT types as the mode makes them behave (As6).
	IPv6 table.IPv6Mode
}

// RunMatrix runs every unordered pair of cfg.Types (each with itself too),
// each in a lab of its own.
func RunMatrix(ctx context.Context, cfg MatrixConfig) ([]Outcome, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.IPv6 != table.IPv6None {
		if err := CheckIPv6Mode(cfg.IPv6); err != nil {
			return nil, err
		}
	}
	type pair struct{ a, b NATType }
	var pairs []pair
	for i := range cfg.Types {
		for j := i; j < len(cfg.Types); j++ {
			pairs = append(pairs, pair{cfg.Types[i], cfg.Types[j]})
		}
	}
	out := make([]Outcome, len(pairs))
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = Outcome{A: p.a.Name, B: p.b.Name, Err: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			o := runPair(ctx, p.a, p.b, cfg)
			out[i] = o
			mu.Lock()
			done++
			if cfg.Progress != nil {
				cfg.Progress(done, len(pairs), o)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}

var (
	serverAddr  = netip.MustParseAddr("203.0.113.10")
	serverAddr2 = netip.MustParseAddr("203.0.113.11")
	rvPort      = uint16(7000)
)

func natTOML(name string, t NATType, ext, inside string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[nat]]\nname = %q\nexternal = [%q]\ninside = %q\n", name, ext, inside)
	if t.Preset != "" {
		fmt.Fprintf(&b, "preset = %q\n", t.Preset)
	}
	for k, v := range t.Settings {
		fmt.Fprintf(&b, "%s = %q\n", k, v)
	}
	return b.String()
}

var labSeq struct {
	sync.Mutex
	n int
}

func runPair(ctx context.Context, a, b NATType, cfg MatrixConfig) Outcome {
	o := Outcome{A: a.Name, B: b.Name, Proto: "udp", Expected: Expected(As6(a, cfg.IPv6), As6(b, cfg.IPv6), cfg.Permissive && !cfg.TCP)}
	if cfg.TCP {
		o.Proto = "tcp"
	}
	fail := func(err error) Outcome { o.Err = err.Error(); return o }
	text := matrixTOML(a, b, cfg.IPv6)
	topo, err := lab.Parse([]byte(text), "matrix.toml")
	if err != nil {
		return fail(err)
	}
	labSeq.Lock()
	labSeq.n++
	name := fmt.Sprintf("mx%x-%d", pidTag(), labSeq.n)
	labSeq.Unlock()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := lab.Up(lctx, topo, lab.Options{Name: name, GonatPath: cfg.GonatPath})
	if err != nil {
		return fail(err)
	}
	defer l.Close()

	srvNS := l.Node("server").Namespace
	srv, srv2 := serverAddr, serverAddr2
	if cfg.IPv6 != table.IPv6None {
		srv, srv2 = server6, server6b
	}
	st, err := stun.NewServer(stun.ServerConfig{Primary: srv, Alternate: srv2, ListenPacket: ns.ListenPacket(srvNS)})
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	go st.Serve(lctx)
	in := func(n string) traverse.Net {
		return traverse.NetIn(func(fn func() error) error { return ns.Do(n, fn) }, nil)
	}
	rv, err := traverse.NewServer(traverse.ServerConfig{Listen: netip.AddrPortFrom(srv, rvPort), Net: in(srvNS)})
	if err != nil {
		return fail(err)
	}
	defer rv.Close()
	go rv.Serve(lctx)

	var wg sync.WaitGroup
	reps := make([]traverse.Report, 2)
	errs := make([]error, 2)
	for i, who := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = traverse.RunPeer(lctx, traverse.PeerConfig{
				Rendezvous: netip.AddrPortFrom(srv, rvPort), Name: who[0], Connect: who[1],
				TCP: cfg.TCP, Permissive: cfg.Permissive, Timeout: cfg.Timeout, Net: in(l.Node(who[0]).Namespace),
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	o.Connected = reps[0].Connected && reps[1].Connected && reps[0].MessageExchanged && reps[1].MessageExchanged
	o.Elapsed = max(reps[0].Elapsed, reps[1].Elapsed)
	if o.Connected {
		o.Pair = reps[0].Local.String() + " <-> " + reps[0].Remote.String()
	} else {
		o.Reason = firstNonEmpty(reps[0].Reason, reps[1].Reason, "no message exchanged")
	}
	return o
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
