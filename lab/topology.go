package lab

// Topology files: a whole lab (NATs, possibly nested, the hosts behind
// them, and public hosts) described in one TOML file, decoded and checked
// completely before anything is created.
//
// The file's keys are a user contract:
//
//	name = "two-homes"            # lab name (default: the file name without extension)
//
//	[[nat]]
//	name     = "home1"            # required
//	preset   = "full-cone"        # optional, default port-restricted-cone
//	upstream = "cgnat"            # optional, default "public"
//	external = ["100.64.0.2"]     # required: a string or an array of strings
//	inside   = "10.0.1.0/24"      # required
//	inside6  = "fd00:1::/64"      # optional: IPv6 beside IPv4 (default none: IPv4 only)
//	external6 = "2001:db8::100"   # optional, with inside6: default the next free IPv6 address upstream
//	udp-timeout = "30s"           # any behaviour setting of table.Settings()
//	impair   = "delay=20ms"       # optional: its uplink, both ways (impair-in, impair-out: one way)
//	uplink-mtu = 1280             # optional: MTU of its uplink (68-65535; 1280 up with external6)
//
//	[[host]]
//	name    = "alice"             # required
//	network = "home1"             # required: a NAT's name or "public"
//	address = "10.0.1.2"          # optional: a string or an array of strings, IPv4 and IPv6
//	run     = ["gonat", "probe"]  # optional: argv, or a string run by /bin/sh -c
//	ready   = "udp:203.0.113.10:3478"  # optional: wait until the command serves (udp:, tcp:, log:TEXT)
//	impair  = "loss=10%"          # optional: its link, both ways (impair-in: what it receives, impair-out: what it sends)
//	mtu     = 1400                # optional: MTU of its link to its NAT (not for public hosts)
//
// Routing rules the checks enforce. Every NAT's inside network is a
// private range seen only by the hosts and nested NATs behind it, so two
// NATs that are not on one path to the public network (two homes behind
// one carrier NAT, or two homes on the public network) may use the same
// range: real homes do, and ICE tests need it. What the checks reject is
// what makes an address ambiguous: a NAT's inside network overlapping the
// inside network of a NAT on its own path to the public network, and a
// public address lying in any private range of the lab.
//
// IPv6 follows the same rules. The public network's IPv6 space is the
// documentation prefix 2001:db8::/32; NATs' external6 addresses are drawn
// from 2001:db8::/48 (public6Pool); an inside6 network lies in fd00::/8
// or in 2001:db8::/32 outside that /48 and outside 2001:db8:4000::/40
// (nptv6Pool): a NAT with ipv6 = "nptv6" translates its inside6 to the
// prefix around its external6, so it takes a /48 of that pool of its own
// (external6 ::1 of the next free one unless given), routed to it.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/table"
)

// Public is the name of the public network: the upstream of the outermost
// NATs and the network of public hosts. No node may take this name.
const Public = "public"

// DefaultPreset is the preset of a NAT whose file entry names none.
const DefaultPreset = "port-restricted-cone"

// Topology is a lab as a topology file describes it, checked and resolved:
// every host has its addresses and every NAT its behaviour.
type Topology struct {
	Name  string
	File  string     // path it was loaded from ("" if parsed from bytes without a name)
	NATs  []NATNode  // in file order
	Hosts []HostNode // in file order
	// Events are the [[event]] entries, in file order: network events
	// Up makes on their schedule (schedule.go).
	Events []EventNode
}

// NATNode is one [[nat]] entry.
type NATNode struct {
	Name     string
	Upstream string       // Public or another NAT's name (never "")
	External []netip.Addr // on the upstream network
	Inside   netip.Prefix // masked
	// Gateway is the NAT's own inside address: the first address of
	// Inside (x.x.x.1). It is never given to a host or to a nested NAT.
	Gateway netip.Addr
	// Inside6 is the NAT's IPv6 inside network (masked), or the zero
	// Prefix for an IPv4-only NAT; Gateway6 its first address (::1),
	// never given to a host.
	Inside6  netip.Prefix
	Gateway6 netip.Addr
	// External6 are its IPv6 addresses on the upstream network: given,
	// or with Inside6 the next free one (from 2001:db8::100 up on the
	// public network, from ::2 up in an upstream NAT's Inside6; for the
	// nptv6 mode ::1 of the next free /48 of 2001:db8:4000::/40).
	External6 []netip.Addr
	Preset    string            // a table.PresetNames() name; DefaultPreset when the file names none
	Settings  map[string]string // the behaviour settings given, by setting name, as text for table.ApplySetting
	Behavior  table.Config      // Behavior(Preset, Settings, External)
	// Impair is the impairment of its uplink: In what comes into the NAT
	// from upstream, Out what leaves it upstream (impair.go).
	Impair forward.PortImpair
	// UplinkMTU is the MTU of its uplink, the link beyond its outside
	// port (0: the device's default); mtu.go.
	UplinkMTU int
	// FreePorts is how many inside ports it keeps free for hosts that
	// move in (move.go), beyond one for each [[event]] move into it.
	FreePorts int
	Line      int // line of its [[nat]] header, for messages
}

// HostNode is one [[host]] entry.
type HostNode struct {
	Name    string
	Network string // Public or a NAT's name
	// Addresses are the addresses given, or one assigned: the next free
	// address of the NAT's inside network from .2 up (skipping the gateway,
	// other hosts' addresses and nested NATs' external addresses); for a
	// public host, the next free address of 203.0.113.0/24 from .10 up.
	// Each family on its own, given or assigned: behind a NAT with
	// Inside6, IPv6 is the next free address there from ::2 up; public
	// hosts have IPv6 only when they give it. IPv4 addresses come first.
	Addresses []netip.Addr
	Run       []string // command to start in the host's namespace; may be empty
	Ready     Ready    // when Up may consider Run serving; zero: once started
	// Impair is the impairment of its link, the NAT's inside port for it
	// or a public host's Wire: In what the host receives, Out what it
	// sends (impair.go).
	Impair forward.PortImpair
	// Wire says a public host's link to the core is a forward.Wire that
	// gonat impairs (impair given, "off" included), not a veth.
	Wire bool
	// Seed seeds a public host's Wire (0: a random one); a host behind a
	// NAT has its NAT's.
	Seed int64
	// MTU is the MTU of its link to its NAT (0: the device's default);
	// never set for a public host.
	MTU  int
	Line int // line of its [[host]] header, for messages
}

// Keys of a topology file.
const (
	keyName     = "name"
	keyNAT      = "nat"
	keyHost     = "host"
	keyPreset   = "preset"
	keyUpstream = "upstream"
	keyExternal = "external"
	keyInside   = "inside"
	keyInside6  = "inside6"
	keyExt6     = "external6"
	keyNetwork  = "network"
	keyAddress  = "address"
	keyRun      = "run"
	keyReady    = "ready"
)

const (
	maxNameLen  = 20
	maxProblems = 20
)

var (
	topKeys  = []string{keyName, keyNAT, keyHost, keyEvent}
	hostKeys = []string{keyName, keyNetwork, keyAddress, keyRun, keyReady, keyImpair, keyImpairIn, keyImpairOut, keyMTU, keySeed}
)

func natKeys() []string {
	return append(append([]string{keyName, keyPreset, keyUpstream, keyExternal, keyInside}, table.SettingNames()...), keyInside6, keyExt6, keyImpair, keyImpairIn, keyImpairOut, keyUplinkMTU, keyFreePorts)
}

// ValidName checks a lab, NAT or host name: lowercase letters, digits and
// '-', starting with a letter or digit, at most 20 characters, and not
// "public". Names never hold '.': namespaces are named LAB.NODE.
func ValidName(s string) error {
	if s == "" {
		return errors.New(`"": empty; want lowercase letters, digits and '-', e.g. "home1"`)
	}
	if s == Public {
		return fmt.Errorf("%q is reserved for the public network", s)
	}
	if strings.Contains(s, ".") {
		return fmt.Errorf("%q: no '.' allowed (namespaces are named LAB.NODE)", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return fmt.Errorf("%q: want lowercase letters, digits and '-', starting with a letter or digit ([a-z0-9][a-z0-9-]*)", s)
		}
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%q is %d characters long: at most %d", s, len(s), maxNameLen)
	}
	return nil
}

// Load reads and parses a topology file.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse decodes and validates a topology file's text; file names it in
// messages and gives the default lab name. The topology returned is fully
// resolved (addresses assigned, behaviours built). The error reports every
// problem found (up to 20), one line each, as "FILE:LINE: what".
func Parse(data []byte, file string) (*Topology, error) {
	p := &parser{file: file}
	t := p.parse(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	return t, nil
}

// SetName renames the lab (what a --name flag does).
func (t *Topology) SetName(name string) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("lab name %w", err)
	}
	t.Name = name
	return nil
}

// HasIPv6 reports whether the lab carries IPv6: a NAT with inside6 or a
// host with an IPv6 address.
func (t *Topology) HasIPv6() bool {
	for _, n := range t.NATs {
		if n.Inside6.IsValid() {
			return true
		}
	}
	for _, h := range t.Hosts {
		if _, v6 := families(h.Addresses); v6 {
			return true
		}
	}
	return false
}

// Namespace is the network namespace name of a node (or of Public): LAB.NODE.
func (t *Topology) Namespace(node string) string { return t.Name + "." + node }

// Namespaces lists the namespaces Up creates, in its order: the public
// core, the uplink of every NAT behind another NAT, where free inside
// ports wait (move.go), every host.
func (t *Topology) Namespaces() []string {
	out := []string{t.Namespace(Public)}
	for _, n := range t.NATs {
		if n.Upstream != Public {
			out = append(out, t.Namespace(n.Name))
		}
	}
	if t.hasFreePorts() {
		out = append(out, freeNamespace(t.Name))
	}
	for _, h := range t.Hosts {
		out = append(out, t.Namespace(h.Name))
	}
	return out
}

// NAT returns the NAT named name, or nil.
func (t *Topology) NAT(name string) *NATNode {
	for i := range t.NATs {
		if t.NATs[i].Name == name {
			return &t.NATs[i]
		}
	}
	return nil
}

// Host returns the host named name, or nil.
func (t *Topology) Host(name string) *HostNode {
	for i := range t.Hosts {
		if t.Hosts[i].Name == name {
			return &t.Hosts[i]
		}
	}
	return nil
}

// Order returns the NATs so that each comes after its upstream: outermost
// first, each followed by the NATs behind it (depth first, file order
// among siblings).
func (t *Topology) Order() []*NATNode {
	children := map[string][]int{}
	for i := range t.NATs {
		children[t.NATs[i].Upstream] = append(children[t.NATs[i].Upstream], i)
	}
	out := make([]*NATNode, 0, len(t.NATs))
	done := make([]bool, len(t.NATs))
	var visit func(parent string)
	visit = func(parent string) {
		for _, i := range children[parent] {
			if done[i] {
				continue
			}
			done[i] = true
			out = append(out, &t.NATs[i])
			visit(t.NATs[i].Name)
		}
	}
	visit(Public)
	return out
}

// Path returns the chain of NATs from the named one up to the public
// network: the NAT itself first, the outermost last. It is nil for an
// unknown name.
func (t *Topology) Path(nat string) []*NATNode {
	var out []*NATNode
	for n := t.NAT(nat); n != nil && len(out) <= len(t.NATs); n = t.NAT(n.Upstream) {
		out = append(out, n)
		if n.Upstream == Public {
			break
		}
	}
	return out
}
