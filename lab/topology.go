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
//	udp-timeout = "30s"           # any behaviour setting of SettingNames()
//
//	[[host]]
//	name    = "alice"             # required
//	network = "home1"             # required: a NAT's name or "public"
//	address = "10.0.1.2"          # optional: a string or an array of strings
//	run     = ["gonat", "probe"]  # optional: argv, or a string run by /bin/sh -c
//	ready   = "udp:203.0.113.10:3478"  # optional: wait until the command serves (udp:, tcp:, log:TEXT)
//
// Routing rules the checks enforce. Every NAT's inside network is a
// private range seen only by the hosts and nested NATs behind it, so two
// NATs that are not on one path to the public network (two homes behind
// one carrier NAT, or two homes on the public network) may use the same
// range: real homes do, and ICE tests need it. What the checks reject is
// what makes an address ambiguous: a NAT's inside network overlapping the
// inside network of a NAT on its own path to the public network, and a
// public address lying in any private range of the lab.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"

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
}

// NATNode is one [[nat]] entry.
type NATNode struct {
	Name     string
	Upstream string       // Public or another NAT's name (never "")
	External []netip.Addr // on the upstream network
	Inside   netip.Prefix // masked
	// Gateway is the NAT's own inside address: the first address of
	// Inside (x.x.x.1). It is never given to a host or to a nested NAT.
	Gateway  netip.Addr
	Preset   string            // a table.PresetNames() name; DefaultPreset when the file names none
	Settings map[string]string // the behaviour settings given, by setting name, as text for ApplySetting
	Behavior table.Config      // Behavior(Preset, Settings, External)
	Line     int               // line of its [[nat]] header, for messages
}

// HostNode is one [[host]] entry.
type HostNode struct {
	Name    string
	Network string // Public or a NAT's name
	// Addresses are the addresses given, or one assigned: the next free
	// address of the NAT's inside network from .2 up (skipping the gateway,
	// other hosts' addresses and nested NATs' external addresses); for a
	// public host, the next free address of 203.0.113.0/24 from .10 up.
	Addresses []netip.Addr
	Run       []string // command to start in the host's namespace; may be empty
	Ready     Ready    // when Up may consider Run serving; zero: once started
	Line      int      // line of its [[host]] header, for messages
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
	topKeys  = []string{keyName, keyNAT, keyHost}
	hostKeys = []string{keyName, keyNetwork, keyAddress, keyRun, keyReady}
)

func natKeys() []string {
	return append([]string{keyName, keyPreset, keyUpstream, keyExternal, keyInside}, SettingNames()...)
}

// keyAliases are words people reach for instead of a known key, per table.
var keyAliases = map[string]map[string]string{
	"": {"lab": keyName, "nats": keyNAT, "hosts": keyHost},
	keyNAT: {
		"type": keyPreset, "kind": keyPreset, "nat-type": keyPreset, "behavior": keyPreset, "behaviour": keyPreset,
		"parent": keyUpstream, "outside": keyUpstream, "via": keyUpstream, "behind": keyUpstream, "network": keyUpstream,
		"public": keyExternal, "address": keyExternal, "addresses": keyExternal, "externals": keyExternal,
		"subnet": keyInside, "lan": keyInside, "prefix": keyInside, "internal": keyInside, "private": keyInside,
	},
	keyHost: {
		"ip": keyAddress, "ips": keyAddress, "addr": keyAddress, "addresses": keyAddress,
		"nat": keyNetwork, "behind": keyNetwork, "subnet": keyNetwork, "upstream": keyNetwork,
		"command": keyRun, "cmd": keyRun, "exec": keyRun, "args": keyRun,
		"wait": keyReady, "wait-for": keyReady, "readiness": keyReady, "healthcheck": keyReady,
	},
}

// publicPool is where public hosts without an address get one: from
// publicFirst (203.0.113.10, TEST-NET-3 of RFC 5737) upward.
var (
	publicPool  = netip.MustParsePrefix("203.0.113.0/24")
	publicFirst = netip.MustParseAddr("203.0.113.10")
)

// reserved are the ranges no lab address or network may touch.
var reserved = []struct {
	p    netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "0.0.0.0/8 (\"this network\")"},
	{netip.MustParsePrefix("127.0.0.0/8"), "127.0.0.0/8 (loopback)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "169.254.0.0/16 (link-local, used by the lab's own links)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "224.0.0.0/4 (multicast)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "240.0.0.0/4 (reserved, broadcast)"},
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

// Namespace is the network namespace name of a node (or of Public): LAB.NODE.
func (t *Topology) Namespace(node string) string { return t.Name + "." + node }

// Namespaces lists the namespaces Up creates, in its order: the public
// core, the uplink of every NAT behind another NAT, every host.
func (t *Topology) Namespaces() []string {
	out := []string{t.Namespace(Public)}
	for _, n := range t.NATs {
		if n.Upstream != Public {
			out = append(out, t.Namespace(n.Name))
		}
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

// Summary describes a NAT's behaviour in one phrase, e.g.
// "preset full-cone: EIM/EIF, preserve, hairpin on", with the settings
// given over the preset in parentheses.
func (n *NATNode) Summary() string {
	var b strings.Builder
	b.WriteString("preset ")
	b.WriteString(n.Preset)
	if len(n.Settings) > 0 {
		b.WriteString(" (")
		first := true
		for _, k := range SettingNames() {
			if v, ok := n.Settings[k]; ok {
				if !first {
					b.WriteString(", ")
				}
				first = false
				fmt.Fprintf(&b, "%s=%s", k, v)
			}
		}
		b.WriteString(")")
	}
	c := n.Behavior
	hairpin := "off"
	if c.Hairpin {
		hairpin = "on"
	}
	fmt.Fprintf(&b, ": %s/%s, %s, hairpin %s", c.Mapping.Short(false), c.Filtering.Short(true), c.PortAssignment, hairpin)
	return b.String()
}

// Describe returns a table of the lab: one line per node (NATs outermost
// first, then hosts) with its kind, name, network (a NAT's upstream),
// addresses and behaviour (a host's command).
func (t *Topology) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s: %s, %s", t.Name, plural(len(t.NATs), "NAT"), plural(len(t.Hosts), "host"))
	if t.File != "" {
		fmt.Fprintf(&b, " (%s)", t.File)
	}
	b.WriteString("\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAME\tNETWORK\tADDRESSES\tBEHAVIOUR / RUN")
	nats := t.Order()
	listed := map[*NATNode]bool{}
	for _, n := range nats {
		listed[n] = true
	}
	for i := range t.NATs { // a hand-made topology may hold NATs Order cannot reach
		if !listed[&t.NATs[i]] {
			nats = append(nats, &t.NATs[i])
		}
	}
	for _, n := range nats {
		fmt.Fprintf(w, "nat\t%s\t%s\texternal %s, inside %s\t%s\n", n.Name, n.Upstream, joinAddrs(n.External), n.Inside, n.Summary())
	}
	for _, h := range t.Hosts {
		run := "-"
		if len(h.Run) > 0 {
			run = "run: " + quoteArgs(h.Run)
			if h.Ready.Kind != "" {
				run += " (ready " + h.Ready.String() + ")"
			}
		}
		fmt.Fprintf(w, "host\t%s\t%s\t%s\t%s\n", h.Name, h.Network, joinAddrs(h.Addresses), run)
	}
	w.Flush()
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

func quoteArgs(args []string) string {
	s := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>()*?#~") {
			a = strconv.Quote(a)
		}
		s[i] = a
	}
	return strings.Join(s, " ")
}

// ---- parsing ----

type problem struct {
	line int
	msg  string
}

type parser struct {
	file   string
	pos    *positions
	probs  []problem
	nets   []*network // per NAT (nil when its inside network is bad)
	public *network
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.probs = append(p.probs, problem{line, fmt.Sprintf(format, args...)})
}

// where is the "FILE:LINE: " prefix of a message.
func (p *parser) where(line int) string {
	switch {
	case p.file == "" && line > 0:
		return fmt.Sprintf("line %d: ", line)
	case p.file == "":
		return ""
	case line > 0:
		return fmt.Sprintf("%s:%d: ", p.file, line)
	}
	return p.file + ": "
}

// err joins the problems in line order, one line each.
func (p *parser) err() error {
	if len(p.probs) == 0 {
		return nil
	}
	sort.SliceStable(p.probs, func(i, j int) bool { return p.probs[i].line < p.probs[j].line })
	var errs []error
	seen := map[problem]bool{}
	for _, pr := range p.probs {
		if seen[pr] {
			continue
		}
		seen[pr] = true
		if len(errs) == maxProblems {
			errs = append(errs, fmt.Errorf("%stoo many problems; fix these first", p.where(0)))
			break
		}
		msg := strings.ReplaceAll(pr.msg, "\n", "; ")
		errs = append(errs, errors.New(p.where(pr.line)+msg))
	}
	return errors.Join(errs...)
}

// natDraft and hostDraft are entries while they are being checked.
type natDraft struct {
	n        NATNode
	idx      int
	who      string // `nat "home1"`, or `nat #2` when it has no usable name
	named    bool
	extOK    bool
	insideOK bool
	behOK    bool // preset and settings fine
	up       int  // upstream: index into nats, -1 public, -2 unknown or bad
	reaches  int  // 0 unknown, 1 reaches the public network, 2 does not
}

type hostDraft struct {
	h     HostNode
	idx   int
	who   string
	named bool
	given bool // the file gives addresses
	net   int  // network: index into nats, -1 public, -2 unknown
}

const (
	upPublic = -1
	upBad    = -2
)

func (p *parser) parse(data []byte) *Topology {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		// [host] where [[host]] was meant makes TOML complain about a
		// later line ("Key 'host' has already been defined"): name the
		// [host] lines themselves.
		ps := scanPositions(data)
		headers := map[int]bool{}
		for _, key := range []string{keyNAT, keyHost} {
			for _, line := range ps.single[key] {
				p.errorf(line, "[%s]: write [[%s]] (an array of tables, one per %s), not [%s]", key, key, key, key)
				headers[line] = true
			}
			for _, sec := range ps.arrays[key] {
				headers[sec.line] = true
			}
		}
		var pe toml.ParseError
		switch {
		case errors.As(err, &pe) && len(ps.single[keyNAT])+len(ps.single[keyHost]) > 0 && headers[pe.Position.Line]:
		case errors.As(err, &pe):
			p.errorf(pe.Position.Line, "TOML syntax: %s", pe.Message)
		default:
			p.errorf(0, "TOML: %v", err)
		}
		return nil
	}
	p.pos = scanPositions(data)
	t := &Topology{File: p.file}

	p.unknownKeys(raw, "", "", topKeys, func(k string) int { return p.pos.top[k] })
	t.Name = nameFromFile(p.file)
	if v, ok := raw[keyName]; ok {
		line := p.pos.top[keyName]
		if s, ok := v.(string); !ok {
			p.errorf(line, "name: want the lab's name as a string such as \"two-homes\", got %s", describe(v))
		} else if err := ValidName(s); err != nil {
			p.errorf(line, "name (the lab's name) %v", err)
		} else {
			t.Name = s
		}
	}

	natMaps := p.tables(raw, keyNAT)
	hostMaps := p.tables(raw, keyHost)
	if len(natMaps) == 0 && len(hostMaps) == 0 && raw[keyNAT] == nil && raw[keyHost] == nil {
		p.errorf(0, "no [[nat]] or [[host]] tables: a lab needs at least one node")
	}
	nats := make([]*natDraft, len(natMaps))
	for i, m := range natMaps {
		nats[i] = p.parseNAT(i, m)
	}
	hosts := make([]*hostDraft, len(hostMaps))
	for i, m := range hostMaps {
		hosts[i] = p.parseHost(i, m)
	}

	p.checkNames(nats, hosts)
	natIdx := map[string]int{}
	var natNames []string
	for _, d := range nats {
		if _, dup := natIdx[d.n.Name]; d.named && !dup {
			natIdx[d.n.Name] = d.idx
			natNames = append(natNames, d.n.Name)
		}
	}
	p.resolveUpstreams(nats, natIdx, natNames)
	p.resolveNetworks(hosts, natIdx, natNames)
	p.checkAddresses(nats, hosts)
	p.checkPaths(nats)
	p.assign(nats, hosts)

	for _, d := range nats {
		if d.behOK && d.extOK {
			c, err := Behavior(d.n.Preset, d.n.Settings, d.n.External)
			if err != nil {
				for _, msg := range strings.Split(err.Error(), "\n") {
					p.errorf(p.settingLine(d, msg), "%s: %s", d.who, msg)
				}
			}
			d.n.Behavior = c
		}
		t.NATs = append(t.NATs, d.n)
	}
	for _, d := range hosts {
		t.Hosts = append(t.Hosts, d.h)
	}
	return t
}

// settingLine finds the line of the setting a Behavior error message is
// about ("port range 100-200: ..." is about port-range).
func (p *parser) settingLine(d *natDraft, msg string) int {
	norm := strings.ReplaceAll(msg, " ", "-")
	for _, k := range SettingNames() {
		if _, ok := d.n.Settings[k]; ok && strings.HasPrefix(norm, k) {
			return p.pos.key(keyNAT, d.idx, k)
		}
	}
	if strings.HasPrefix(msg, "external") {
		return p.pos.key(keyNAT, d.idx, keyExternal)
	}
	return d.n.Line
}

// nameFromFile is the default lab name: the file name without extension,
// made a valid name ("My_Lab.toml" gives "my-lab"), or "lab".
func nameFromFile(file string) string {
	base := filepath.Base(file)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(base) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := b.String()
	if len(s) > maxNameLen {
		s = s[:maxNameLen]
	}
	s = strings.TrimRight(s, "-")
	if ValidName(s) != nil {
		return "lab"
	}
	return s
}

// tables returns the entries of [[key]], reporting any other shape.
func (p *parser) tables(raw map[string]any, key string) []map[string]any {
	v, ok := raw[key]
	if !ok {
		return nil
	}
	line := p.pos.top[key]
	switch x := v.(type) {
	case []map[string]any:
		return x
	case []any:
		out := make([]map[string]any, 0, len(x))
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				p.errorf(line, "%s: want [[%s]] tables, got an array holding %s", key, key, describe(e))
				return nil
			}
			out = append(out, m)
		}
		return out
	case map[string]any:
		if singles := p.pos.single[key]; len(singles) > 0 {
			line = singles[0]
		}
		p.errorf(line, "[%s]: write [[%s]] (an array of tables, one per %s), not [%s]", key, key, key, key)
		// Check it as the one entry it was meant to be, so that what
		// refers to it does not fail too.
		return []map[string]any{x}
	default:
		p.errorf(line, "%s: want [[%s]] tables, got %s", key, key, describe(v))
	}
	return nil
}

// unknownKeys reports the keys of m not in known, in line order.
func (p *parser) unknownKeys(m map[string]any, table, who string, known []string, line func(string) int) {
	var unknown []string
	for k := range m {
		if !contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Slice(unknown, func(i, j int) bool {
		li, lj := line(unknown[i]), line(unknown[j])
		if li != lj {
			return li < lj
		}
		return unknown[i] < unknown[j]
	})
	prefix := ""
	if who != "" {
		prefix = who + ": "
	}
	for _, k := range unknown {
		hint := didYouMean(k, known, keyAliases[table])
		if hint == "" {
			hint = " (known: " + strings.Join(known, ", ") + ")"
		}
		p.errorf(line(k), "%sunknown key %q%s", prefix, k, hint)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// didYouMean returns `; did you mean "x"?` for the known word closest to
// s (through aliases, a prefix, or an edit distance of at most 2), or "".
func didYouMean(s string, known []string, aliases map[string]string) string {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
	if a, ok := aliases[norm]; ok {
		return fmt.Sprintf("; did you mean %q?", a)
	}
	best, bestD := "", 3
	for _, k := range known {
		d := editDistance(norm, k, bestD)
		if len(norm) >= 4 && len(k) >= 4 && (strings.HasPrefix(norm, k) || strings.HasPrefix(k, norm)) && d > 1 {
			d = 1
		}
		if d < bestD && d < len(k) {
			best, bestD = k, d
		}
	}
	if best == "" || best == s {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance of a and b, or limit when it
// is at least limit.
func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit
	}
	d := len(a) - len(b)
	if d < 0 {
		d = -d
	}
	if d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// describe names a decoded TOML value's type (and value) for messages.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "string " + strconv.Quote(x)
	case int64:
		return "integer " + strconv.FormatInt(x, 10)
	case float64:
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date/time"
	}
	return fmt.Sprintf("a %T", v)
}

// str returns m[key] when it is a string; ok is false when the key is
// absent or (reported) not a string.
func (p *parser) str(m map[string]any, key, who string, line int, example string) (string, bool) {
	v, ok := m[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		p.errorf(line, "%s: %s: want a string such as %q, got %s", who, key, example, describe(v))
		return "", false
	}
	return s, true
}

// addrList decodes a string or an array of strings as IPv4 addresses,
// reporting each bad or repeated one. ok is false if any was bad.
func (p *parser) addrList(v any, who, key string, line int, example string) ([]netip.Addr, bool) {
	var items []any
	switch x := v.(type) {
	case string:
		items = []any{x}
	case []any:
		items = x
	default:
		p.errorf(line, "%s: %s: want an address such as %q or an array of them, got %s", who, key, example, describe(v))
		return nil, false
	}
	if len(items) == 0 {
		p.errorf(line, "%s: %s: empty array: want at least one address such as %q", who, key, example)
		return nil, false
	}
	ok := true
	var out []netip.Addr
	for _, it := range items {
		s, isStr := it.(string)
		if !isStr {
			p.errorf(line, "%s: %s: want address strings such as %q, got %s", who, key, example, describe(it))
			ok = false
			continue
		}
		a, err := parseIPv4(s, example)
		if err != nil {
			p.errorf(line, "%s: %s %q: %v", who, key, s, err)
			ok = false
			continue
		}
		if slicesContains(out, a) {
			p.errorf(line, "%s: %s %s: given twice", who, key, a)
			continue
		}
		out = append(out, a)
	}
	return out, ok
}

func slicesContains(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}

func parseIPv4(s, example string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if pf, perr := netip.ParsePrefix(s); perr == nil {
			if pf.Addr().Is6() {
				return netip.Addr{}, errors.New("IPv6 is not supported: lab networks are IPv4 only")
			}
			return netip.Addr{}, fmt.Errorf("want a plain address such as %s, without a /prefix length", example)
		}
		return netip.Addr{}, fmt.Errorf("want an IPv4 address such as %s", example)
	}
	if !a.Is4() {
		return netip.Addr{}, errors.New("IPv6 is not supported: lab networks are IPv4 only")
	}
	for _, r := range reserved {
		if r.p.Contains(a) {
			return netip.Addr{}, fmt.Errorf("in %s: want a unicast address such as %s", r.what, example)
		}
	}
	return a, nil
}

func parseInside(s string) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			if !a.Is4() {
				return netip.Prefix{}, errors.New("IPv6 is not supported: lab networks are IPv4 only")
			}
			return netip.Prefix{}, fmt.Errorf("want a network with its prefix length, e.g. %s", netip.PrefixFrom(a, 24).Masked())
		}
		return netip.Prefix{}, errors.New("want an IPv4 network such as 10.0.1.0/24")
	}
	if !pf.Addr().Is4() {
		return netip.Prefix{}, errors.New("IPv6 is not supported: lab networks are IPv4 only")
	}
	if m := pf.Masked(); m != pf {
		return netip.Prefix{}, fmt.Errorf("has host bits set: want the network address %s (the NAT itself takes %s)", m, m.Addr().Next())
	}
	if pf.Bits() > 30 {
		return netip.Prefix{}, errors.New("too small: want /30 or shorter (the NAT takes .1, hosts start at .2)")
	}
	for _, r := range reserved {
		if r.p.Overlaps(pf) {
			return netip.Prefix{}, fmt.Errorf("overlaps %s: want a private range such as 10.0.1.0/24", r.what)
		}
	}
	return pf, nil
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(pf netip.Prefix) netip.Addr {
	b := pf.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= ^uint32(0) >> pf.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// settingText turns a setting's TOML value into ApplySetting's text:
// strings always; booleans for the on/off settings, integers for seed.
func settingText(key string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if IsBoolSetting(key) {
			return strconv.FormatBool(x), nil
		}
	case int64:
		if key == SetSeed {
			return strconv.FormatInt(x, 10), nil
		}
	}
	var want string
	switch key {
	case SetHairpin, SetParity, SetInboundRefresh, SetLinuxLowPorts, SetPortOverloading:
		want = "true or false"
	case SetSeed:
		want = "an integer"
	case SetUDPTimeout, SetUDPUnrepliedTimeout, SetTCPEstablishedTimeout, SetTCPTransitoryTimeout, SetICMPTimeout:
		want = `a duration string such as "30s", "5m" or "2h"`
	case SetPortRange:
		want = `a string "LO-HI" such as "20000-29999"`
	default:
		want = "a string"
	}
	return "", fmt.Errorf("want %s, got %s", want, describe(v))
}

func (p *parser) parseNAT(i int, m map[string]any) *natDraft {
	d := &natDraft{idx: i, up: upBad, behOK: true}
	n := &d.n
	n.Line = p.pos.section(keyNAT, i)
	n.Upstream = Public
	n.Preset = DefaultPreset
	n.Settings = map[string]string{}
	line := func(k string) int { return p.pos.key(keyNAT, i, k) }

	d.who = fmt.Sprintf("nat #%d", i+1)
	if s, ok := p.str(m, keyName, d.who, line(keyName), "home1"); ok {
		n.Name, d.who, d.named = s, fmt.Sprintf("nat %q", s), true
		if err := ValidName(s); err != nil {
			p.errorf(line(keyName), "%s: name %v", d.who, err)
		}
	} else if _, present := m[keyName]; !present {
		p.errorf(n.Line, "%s: missing required key \"name\" (e.g. name = \"home1\")", d.who)
	}
	p.unknownKeys(m, keyNAT, d.who, natKeys(), line)

	if s, ok := p.str(m, keyUpstream, d.who, line(keyUpstream), "cgnat"); ok {
		if s == "" {
			p.errorf(line(keyUpstream), "%s: upstream \"\": want %q or another NAT's name", d.who, Public)
		} else {
			n.Upstream = s
			d.up = 0 // resolved later
		}
	} else if _, present := m[keyUpstream]; !present {
		d.up = 0
	}

	if v, ok := m[keyExternal]; ok {
		n.External, d.extOK = p.addrList(v, d.who, keyExternal, line(keyExternal), "198.51.100.1")
		d.extOK = d.extOK && len(n.External) > 0
	} else {
		p.errorf(n.Line, "%s: missing required key \"external\" (its address on the upstream network, e.g. external = [\"198.51.100.1\"])", d.who)
	}

	if s, ok := p.str(m, keyInside, d.who, line(keyInside), "10.0.1.0/24"); ok {
		pf, err := parseInside(s)
		if err != nil {
			p.errorf(line(keyInside), "%s: inside %q: %v", d.who, s, err)
		} else {
			n.Inside, n.Gateway, d.insideOK = pf, pf.Addr().Next(), true
		}
	} else if _, present := m[keyInside]; !present {
		p.errorf(n.Line, "%s: missing required key \"inside\" (its inside network, e.g. inside = \"10.0.1.0/24\")", d.who)
	}

	if s, ok := p.str(m, keyPreset, d.who, line(keyPreset), "full-cone"); ok {
		name := strings.ToLower(strings.TrimSpace(s))
		if name == "" {
			name = DefaultPreset
		}
		if _, err := table.Preset(name); err != nil {
			p.errorf(line(keyPreset), "%s: %v%s", d.who, err, didYouMean(name, table.PresetNames(), nil))
			d.behOK = false
		} else {
			n.Preset = name
		}
	} else if _, present := m[keyPreset]; present {
		d.behOK = false
	}

	for _, k := range SettingNames() {
		v, ok := m[k]
		if !ok {
			continue
		}
		s, err := settingText(k, v)
		if err == nil {
			scratch := table.DefaultConfig()
			err = ApplySetting(&scratch, k, s)
		} else {
			err = fmt.Errorf("%s: %w", k, err)
		}
		if err != nil {
			p.errorf(line(k), "%s: %v", d.who, err)
			d.behOK = false
			continue
		}
		n.Settings[k] = s
	}
	return d
}

func (p *parser) parseHost(i int, m map[string]any) *hostDraft {
	d := &hostDraft{idx: i, net: upBad}
	h := &d.h
	h.Line = p.pos.section(keyHost, i)
	line := func(k string) int { return p.pos.key(keyHost, i, k) }

	d.who = fmt.Sprintf("host #%d", i+1)
	if s, ok := p.str(m, keyName, d.who, line(keyName), "alice"); ok {
		h.Name, d.who, d.named = s, fmt.Sprintf("host %q", s), true
		if err := ValidName(s); err != nil {
			p.errorf(line(keyName), "%s: name %v", d.who, err)
		}
	} else if _, present := m[keyName]; !present {
		p.errorf(h.Line, "%s: missing required key \"name\" (e.g. name = \"alice\")", d.who)
	}
	p.unknownKeys(m, keyHost, d.who, hostKeys, line)

	if s, ok := p.str(m, keyNetwork, d.who, line(keyNetwork), "home1"); ok {
		h.Network = s
		if s == "" {
			p.errorf(line(keyNetwork), "%s: network \"\": want %q or a NAT's name", d.who, Public)
		}
	} else if _, present := m[keyNetwork]; !present {
		p.errorf(h.Line, "%s: missing required key \"network\" (a NAT's name, or %q)", d.who, Public)
	}

	if v, ok := m[keyAddress]; ok {
		example := "10.0.1.2"
		if h.Network == Public {
			example = "203.0.113.10"
		}
		h.Addresses, _ = p.addrList(v, d.who, keyAddress, line(keyAddress), example)
		d.given = true
	}

	if v, ok := m[keyRun]; ok {
		l := line(keyRun)
		switch x := v.(type) {
		case string:
			if strings.TrimSpace(x) == "" {
				p.errorf(l, "%s: run: empty command", d.who)
			} else {
				h.Run = []string{"/bin/sh", "-c", x}
			}
		case []any:
			if len(x) == 0 {
				p.errorf(l, "%s: run: empty array: want a command and its arguments, e.g. [\"gonat\", \"probe\"]", d.who)
			}
			for j, e := range x {
				s, ok := e.(string)
				if !ok {
					p.errorf(l, "%s: run: argument %d: want a string, got %s", d.who, j+1, describe(e))
					h.Run = nil
					break
				}
				if j == 0 && s == "" {
					p.errorf(l, "%s: run: empty command name", d.who)
				}
				h.Run = append(h.Run, s)
			}
		default:
			p.errorf(l, "%s: run: want a command as an array of strings, e.g. [\"gonat\", \"probe\"], or a shell command line string, got %s", d.who, describe(v))
		}
	}

	if s, ok := p.str(m, keyReady, d.who, line(keyReady), "udp:203.0.113.10:3478"); ok {
		r, err := ParseReady(s)
		switch {
		case err != nil:
			p.errorf(line(keyReady), "%s: ready %v", d.who, err)
		case len(h.Run) == 0:
			if _, present := m[keyRun]; !present {
				p.errorf(line(keyReady), "%s: ready: the host has no run command to wait for", d.who)
			}
		case r.Kind != "log" && d.given && !r.Addr.Addr().IsUnspecified() && !slices.Contains(h.Addresses, r.Addr.Addr()):
			p.errorf(line(keyReady), "%s: ready: %s is not one of the host's addresses (%s): readiness looks for a socket in its own namespace", d.who, r.Addr.Addr(), joinAddrs(h.Addresses))
		default:
			h.Ready = r
		}
	}
	return d
}

// checkNames reports node names used twice, in line order.
func (p *parser) checkNames(nats []*natDraft, hosts []*hostDraft) {
	type node struct {
		kind, name, who string
		line, at        int
	}
	var all []node
	for _, d := range nats {
		if d.named {
			all = append(all, node{"nat", d.n.Name, d.who, d.n.Line, p.pos.key(keyNAT, d.idx, keyName)})
		}
	}
	for _, d := range hosts {
		if d.named {
			all = append(all, node{"host", d.h.Name, d.who, d.h.Line, p.pos.key(keyHost, d.idx, keyName)})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].line < all[j].line })
	seen := map[string]node{}
	for _, n := range all {
		if first, dup := seen[n.name]; dup {
			p.errorf(n.at, "%s: name %q is already used by the %s on line %d (NATs and hosts share one namespace per node)", n.who, n.name, first.kind, first.line)
			continue
		}
		seen[n.name] = n
	}
}

func withPublic(names []string) []string {
	return append(append([]string(nil), names...), Public)
}

func natList(names []string) string {
	if len(names) == 0 {
		return "the lab has none"
	}
	return "NATs: " + strings.Join(names, ", ")
}

// resolveUpstreams links each NAT to its upstream and finds the NATs that
// do not lead to the public network (cycles).
func (p *parser) resolveUpstreams(nats []*natDraft, natIdx map[string]int, names []string) {
	for _, d := range nats {
		if d.up == upBad {
			continue
		}
		up := d.n.Upstream
		if up == Public {
			d.up = upPublic
			continue
		}
		l := p.pos.key(keyNAT, d.idx, keyUpstream)
		j, ok := natIdx[up]
		switch {
		case !ok:
			p.errorf(l, "%s: upstream %q: no such NAT (%s)%s", d.who, up, natList(names), didYouMean(up, withPublic(names), nil))
			d.up = upBad
		case j == d.idx:
			p.errorf(l, "%s: upstream %q: a NAT cannot be its own upstream", d.who, up)
			d.up = upBad
		default:
			d.up = j
		}
	}
	for i := range nats {
		var chain []int
		onChain := map[int]int{}
		j, result := i, 0
		for result == 0 {
			if nats[j].reaches != 0 {
				result = nats[j].reaches
				break
			}
			if at, ok := onChain[j]; ok {
				p.reportCycle(nats, chain[at:])
				result = 2
				break
			}
			onChain[j] = len(chain)
			chain = append(chain, j)
			switch u := nats[j].up; {
			case u == upPublic:
				result = 1
			case u < 0:
				result = 2
			default:
				j = u
			}
		}
		for _, c := range chain {
			nats[c].reaches = result
		}
	}
}

func (p *parser) reportCycle(nats []*natDraft, cycle []int) {
	first := 0
	for k, c := range cycle {
		if c < cycle[first] {
			first = k
		}
	}
	var names []string
	for k := range cycle {
		names = append(names, nats[cycle[(first+k)%len(cycle)]].n.Name)
	}
	names = append(names, names[0])
	d := nats[cycle[first]]
	p.errorf(p.pos.key(keyNAT, d.idx, keyUpstream), "%s: upstream cycle %s: every chain of upstreams must end at %q",
		d.who, strings.Join(names, " -> "), Public)
}

func (p *parser) resolveNetworks(hosts []*hostDraft, natIdx map[string]int, names []string) {
	for _, d := range hosts {
		switch {
		case d.h.Network == "": // missing or empty: reported by parseHost
		case d.h.Network == Public:
			d.net = upPublic
		default:
			j, ok := natIdx[d.h.Network]
			if !ok {
				p.errorf(p.pos.key(keyHost, d.idx, keyNetwork), "%s: network %q: no such NAT (networks: %s)%s",
					d.who, d.h.Network, strings.Join(append([]string{Public}, names...), ", "), didYouMean(d.h.Network, withPublic(names), nil))
				continue
			}
			d.net = j
		}
	}
}

// network is one network's address book while addresses are checked.
type network struct {
	name string
	pf   netip.Prefix // invalid for the public network
	used map[netip.Addr]use
}

type use struct {
	who, key string
	line     int
	net      int // index into nats, or upPublic
	addr     netip.Addr
}

// checkAddresses checks every given address against its network: inside
// it, not its network, gateway or broadcast address, used once; public
// addresses unique and outside every private range of the lab.
func (p *parser) checkAddresses(nats []*natDraft, hosts []*hostDraft) {
	var uses []use
	for _, d := range nats {
		if d.up == upBad {
			continue
		}
		l := p.pos.key(keyNAT, d.idx, keyExternal)
		for _, a := range d.n.External {
			uses = append(uses, use{d.who, keyExternal, l, d.up, a})
		}
	}
	for _, d := range hosts {
		if d.net == upBad {
			continue
		}
		l := p.pos.key(keyHost, d.idx, keyAddress)
		for _, a := range d.h.Addresses {
			uses = append(uses, use{d.who, keyAddress, l, d.net, a})
		}
	}
	sort.SliceStable(uses, func(i, j int) bool { return uses[i].line < uses[j].line })
	p.nets = make([]*network, len(nats))
	for i, d := range nats {
		if d.insideOK {
			p.nets[i] = &network{name: d.n.Name, pf: d.n.Inside, used: map[netip.Addr]use{}}
		}
	}
	p.public = &network{name: Public, used: map[netip.Addr]use{}}
	for _, u := range uses {
		p.take(nats, u)
	}
}

// take checks one address use and records it in its network.
func (p *parser) take(nats []*natDraft, u use) {
	net := p.public
	if u.net >= 0 {
		if net = p.nets[u.net]; net == nil {
			return
		}
		pf, a := net.pf, u.addr
		what := fmt.Sprintf("network %s (%s)", net.name, pf)
		if u.key == keyExternal {
			what += ", the inside network of its upstream"
		}
		switch {
		case !pf.Contains(a):
			p.errorf(u.line, "%s: %s %s is outside %s", u.who, u.key, a, what)
			return
		case a == pf.Addr():
			p.errorf(u.line, "%s: %s %s is the network address of %s: hosts start at %s", u.who, u.key, a, what, a.Next().Next())
			return
		case a == nats[u.net].n.Gateway:
			p.errorf(u.line, "%s: %s %s is the gateway of %s: the NAT's own inside address; hosts start at %s", u.who, u.key, a, what, a.Next())
			return
		case a == lastAddr(pf):
			p.errorf(u.line, "%s: %s %s is the broadcast address of %s", u.who, u.key, a, what)
			return
		}
	} else {
		for _, d := range nats {
			if d.insideOK && d.n.Inside.Contains(u.addr) {
				p.errorf(u.line, "%s: %s %s is a public address inside nat %q's network %s: public addresses must not lie in a private range the lab uses (routes would be ambiguous)",
					u.who, u.key, u.addr, d.n.Name, d.n.Inside)
				return
			}
		}
	}
	if first, dup := net.used[u.addr]; dup {
		if first.who == u.who && first.key == u.key {
			return // reported by addrList
		}
		p.errorf(u.line, "%s: %s %s is already used by %s (line %d) in network %s", u.who, u.key, u.addr, first.who, first.line, net.name)
		return
	}
	net.used[u.addr] = u
}

// checkPaths rejects a NAT whose inside network overlaps the inside
// network of a NAT on its path to the public network. NATs on different
// paths (siblings, cousins) may share a range, as real homes do.
func (p *parser) checkPaths(nats []*natDraft) {
	for _, d := range nats {
		if d.reaches != 1 || !d.insideOK {
			continue
		}
		for j := d.up; j >= 0; j = nats[j].up {
			a := nats[j]
			if a.insideOK && a.n.Inside.Overlaps(d.n.Inside) {
				p.errorf(p.pos.key(keyNAT, d.idx, keyInside), "%s: inside %s overlaps network %s (%s) on its path to the public network: addresses there would be ambiguous (NATs on one path need disjoint ranges; NATs on different paths may share one)",
					d.who, d.n.Inside, a.n.Name, a.n.Inside)
			}
		}
	}
}

// assign gives each host without addresses the next free one.
func (p *parser) assign(nats []*natDraft, hosts []*hostDraft) {
	for _, d := range hosts {
		if d.given || d.net == upBad {
			continue
		}
		if d.net >= 0 {
			net := p.nets[d.net]
			if net == nil {
				continue
			}
			last := lastAddr(net.pf)
			found := false
			for a := net.pf.Addr().Next().Next(); net.pf.Contains(a) && a != last; a = a.Next() {
				if _, used := net.used[a]; !used {
					d.h.Addresses = []netip.Addr{a}
					net.used[a] = use{who: d.who, key: keyAddress, line: d.h.Line, net: d.net, addr: a}
					found = true
					break
				}
			}
			if !found {
				p.errorf(d.h.Line, "%s: network %s (%s) has no free address left", d.who, net.name, net.pf)
			}
			continue
		}
		found := false
	next:
		for a := publicFirst; publicPool.Contains(a) && a != lastAddr(publicPool); a = a.Next() {
			if _, used := p.public.used[a]; used {
				continue
			}
			for _, n := range nats {
				if n.insideOK && n.n.Inside.Contains(a) {
					continue next
				}
			}
			d.h.Addresses = []netip.Addr{a}
			p.public.used[a] = use{who: d.who, key: keyAddress, line: d.h.Line, net: upPublic, addr: a}
			found = true
			break
		}
		if !found {
			p.errorf(d.h.Line, "%s: no free public address left in %s from %s: give one with address = \"...\"", d.who, publicPool, publicFirst)
		}
	}
}

// ---- line positions ----

// positions holds the line of each table header and key of a file that
// the TOML parser accepted: the parser keeps no line for keys inside an
// array of tables, so the text is scanned once more.
type positions struct {
	top    map[string]int       // top-level key or table name -> first line
	arrays map[string][]section // "nat", "host": one per [[...]] header (or [...] header)
	single map[string][]int     // "nat", "host": the lines of [nat] and [host] headers
}

type section struct {
	line int
	keys map[string]int // first part of a key (or sub-table name) -> first line
}

// section is the line of the i-th [[array]] entry (or of the key holding
// an inline array of tables), 0 if unknown.
func (ps *positions) section(array string, i int) int {
	if s := ps.arrays[array]; i < len(s) {
		return s[i].line
	}
	return ps.top[array]
}

// key is the line of key k in the i-th [[array]] entry, or of the entry.
func (ps *positions) key(array string, i int, k string) int {
	if s := ps.arrays[array]; i < len(s) {
		if l, ok := s[i].keys[k]; ok {
			return l
		}
		return s[i].line
	}
	return ps.top[array]
}

type scanner struct {
	src  []byte
	i    int
	line int
}

func setOnce(m map[string]int, k string, line int) {
	if _, ok := m[k]; !ok {
		m[k] = line
	}
}

func scanPositions(src []byte) *positions {
	ps := &positions{top: map[string]int{}, arrays: map[string][]section{}, single: map[string][]int{}}
	sc := &scanner{src: src, line: 1}
	cur := ps.top // where the keys that follow belong; nil: nowhere tracked
	for {
		sc.skipBlank()
		if sc.i >= len(sc.src) {
			return ps
		}
		start, line := sc.i, sc.line
		switch sc.src[sc.i] {
		case '#':
			sc.skipComment()
		case '[':
			double := sc.peek(1) == '['
			sc.i++
			if double {
				sc.i++
			}
			path := sc.keyPath()
			sc.skipComment()
			cur = nil
			if len(path) == 0 {
				break
			}
			setOnce(ps.top, path[0], line)
			if path[0] != keyNAT && path[0] != keyHost {
				break
			}
			secs := ps.arrays[path[0]]
			if len(path) == 1 && !double {
				ps.single[path[0]] = append(ps.single[path[0]], line)
			}
			switch {
			case len(path) == 1:
				s := section{line: line, keys: map[string]int{}}
				ps.arrays[path[0]] = append(secs, s)
				cur = s.keys
			case len(path) > 1 && len(secs) > 0:
				setOnce(secs[len(secs)-1].keys, path[1], line)
			}
		default:
			path := sc.keyPath()
			sc.skipSpace()
			if sc.peek(0) == '=' {
				sc.i++
			}
			sc.value()
			if len(path) > 0 && cur != nil {
				setOnce(cur, path[0], line)
			}
		}
		if sc.i == start {
			sc.i++
		}
	}
}

func (sc *scanner) peek(k int) byte {
	if sc.i+k < len(sc.src) {
		return sc.src[sc.i+k]
	}
	return 0
}

func (sc *scanner) skipBlank() {
	for sc.i < len(sc.src) {
		switch sc.src[sc.i] {
		case '\n':
			sc.line++
		case ' ', '\t', '\r':
		default:
			return
		}
		sc.i++
	}
}

func (sc *scanner) skipSpace() {
	for sc.i < len(sc.src) && (sc.src[sc.i] == ' ' || sc.src[sc.i] == '\t') {
		sc.i++
	}
}

// skipComment moves to the end of the line (not past the newline).
func (sc *scanner) skipComment() {
	for sc.i < len(sc.src) && sc.src[sc.i] != '\n' {
		sc.i++
	}
}

func isBareKeyByte(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '.', '=', '[', ']', '#', '"', '\'', ',', '{', '}':
		return false
	}
	return true
}

// keyPath reads a dotted key (bare or quoted parts).
func (sc *scanner) keyPath() []string {
	var path []string
	for {
		sc.skipSpace()
		var part string
		switch c := sc.peek(0); c {
		case '"', '\'':
			part = sc.quotedKey(c)
		default:
			st := sc.i
			for sc.i < len(sc.src) && isBareKeyByte(sc.src[sc.i]) {
				sc.i++
			}
			if sc.i == st {
				return path
			}
			part = string(sc.src[st:sc.i])
		}
		path = append(path, part)
		sc.skipSpace()
		if sc.peek(0) != '.' {
			return path
		}
		sc.i++
	}
}

func (sc *scanner) quotedKey(q byte) string {
	sc.i++
	st := sc.i
	for sc.i < len(sc.src) && sc.src[sc.i] != q && sc.src[sc.i] != '\n' {
		if q == '"' && sc.src[sc.i] == '\\' {
			sc.i++
		}
		sc.i++
	}
	end := min(sc.i, len(sc.src))
	raw := string(sc.src[st:end])
	if sc.peek(0) == q {
		sc.i++
	}
	if q == '"' {
		if s, err := strconv.Unquote(`"` + raw + `"`); err == nil {
			return s
		}
	}
	return raw
}

// value skips a value: to the end of its line, or of its last line when
// it spans several (arrays, inline tables, multi-line strings).
func (sc *scanner) value() {
	depth := 0
	for sc.i < len(sc.src) {
		switch c := sc.src[sc.i]; c {
		case '\n':
			if depth == 0 {
				return
			}
			sc.line++
			sc.i++
		case '#':
			sc.skipComment()
		case '"', '\'':
			if sc.peek(1) == c && sc.peek(2) == c {
				sc.multiline(c)
			} else {
				sc.quotedKey(c)
			}
		case '[', '{':
			depth++
			sc.i++
		case ']', '}':
			if depth > 0 {
				depth--
			}
			sc.i++
		default:
			sc.i++
		}
	}
}

// multiline skips a multi-line string (three quotes or three apostrophes), counting its lines.
func (sc *scanner) multiline(q byte) {
	sc.i += 3
	for sc.i < len(sc.src) {
		c := sc.src[sc.i]
		switch {
		case c == '\n':
			sc.line++
			sc.i++
		case c == '\\' && q == '"':
			sc.i++
			if sc.peek(0) == '\n' {
				sc.line++
			}
			sc.i++
		case c == q && sc.peek(1) == q && sc.peek(2) == q:
			sc.i += 3
			for extra := 0; extra < 2 && sc.peek(0) == q; extra++ {
				sc.i++
			}
			return
		default:
			sc.i++
		}
	}
}
