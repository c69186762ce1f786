package lab

// The parser: TOML decoded into maps, each [[nat]] and [[host]] entry
// checked key by key, then the checks between entries, the address
// plan and the behaviours; every problem collected with its line.

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/gonat/gonat/table"
)

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
	p.checkNPTv6(nats)
	p.checkNAT66(nats)
	p.checkNAT64(nats, natMaps)
	p.assign(nats, hosts)
	p.checkMTUs(nats, hosts)

	for _, d := range nats {
		if d.behOK && d.extOK {
			c, err := Behavior(d.n.Preset, d.n.Settings, d.n.External)
			if err != nil {
				for _, msg := range strings.Split(err.Error(), "\n") {
					p.errorf(p.settingLine(d, msg), "%s: %s", d.who, msg)
				}
			}
			c.External6 = d.n.External6
			d.n.Behavior = c
		}
		t.NATs = append(t.NATs, d.n)
	}
	for _, d := range hosts {
		t.Hosts = append(t.Hosts, d.h)
	}
	var idx []int
	for i, m := range p.tables(raw, keyEvent) {
		if ev, ok := p.parseEvent(i, m); ok {
			t.Events = append(t.Events, ev)
			idx = append(idx, i)
		}
	}
	p.checkEvents(t, t.Events, idx)
	return t
}

// settingLine finds the line of the setting a Behavior error message is
// about ("port range 100-200: ..." is about port-range).
func (p *parser) settingLine(d *natDraft, msg string) int {
	norm := strings.ReplaceAll(msg, " ", "-")
	for _, k := range table.SettingNames() {
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
		n.External, d.extOK = p.addrList(v, d.who, keyExternal, line(keyExternal), "198.51.100.1", only4)
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
	} else if _, present := m[keyInside]; !present && isNAT64(m) {
		d.insideOK = true // IPv6-only: a network without an IPv4 range
	} else if !present {
		p.errorf(n.Line, "%s: missing required key \"inside\" (its inside network, e.g. inside = \"10.0.1.0/24\")", d.who)
	}

	if s, ok := p.str(m, keyInside6, d.who, line(keyInside6), "fd00:1::/64"); ok {
		if pf, err := parseInside6(s); err != nil {
			p.errorf(line(keyInside6), "%s: inside6 %q: %v", d.who, s, err)
		} else {
			n.Inside6, n.Gateway6 = pf, pf.Addr().Next()
		}
	}
	if v, ok := m[keyExt6]; ok {
		n.External6, _ = p.addrList(v, d.who, keyExt6, line(keyExt6), "2001:db8::100", only6)
		if _, has6 := m[keyInside6]; !has6 {
			p.errorf(line(keyExt6), "%s: external6 without inside6: a NAT carries IPv6 only with an inside6 network (e.g. inside6 = \"fd00:1::/64\")", d.who)
		}
	}

	preset, settings, ok := p.behaviorKeys(m, d.who, line)
	if preset != "" {
		n.Preset = preset
	}
	n.Settings = settings
	d.behOK = d.behOK && ok
	p.parseNATImpair(d, m, line)
	p.parseNATMTU(d, m, line)
	p.parseFreePorts(d, m, line)
	return d
}

// behaviorKeys reads a table's preset and behaviour settings (the keys
// of table.Settings()), as [[nat]] and a set [[event]] give them: the
// preset ("" if none) and the settings as text for table.ApplySetting.
// ok is false if one was reported wrong.
func (p *parser) behaviorKeys(m map[string]any, who string, line func(string) int) (preset string, settings map[string]string, ok bool) {
	ok = true
	settings = map[string]string{}
	if s, given := p.str(m, keyPreset, who, line(keyPreset), "full-cone"); given {
		name := strings.ToLower(strings.TrimSpace(s))
		if _, err := table.Preset(name); name != "" && err != nil {
			p.errorf(line(keyPreset), "%s: %v%s", who, err, didYouMean(name, table.PresetNames(), nil))
			ok = false
		} else {
			preset = name
		}
	} else if _, present := m[keyPreset]; present {
		ok = false
	}
	for _, set := range table.Settings() {
		k := set.Name
		v, present := m[k]
		if !present {
			continue
		}
		s, err := settingText(set, v)
		if err == nil {
			scratch := table.DefaultConfig()
			err = set.Apply(&scratch, s)
		} else {
			err = fmt.Errorf("%s: %w", k, err)
		}
		if err != nil {
			p.errorf(line(k), "%s: %v", who, err)
			ok = false
			continue
		}
		settings[k] = s
	}
	return preset, settings, ok
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
		h.Addresses, _ = p.addrList(v, d.who, keyAddress, line(keyAddress), example, both)
		// IPv4 first, so that a host's first address is IPv4 whatever
		// the order given (what IPv4-only tools take).
		slices.SortStableFunc(h.Addresses, func(a, b netip.Addr) int { return cmp.Compare(a.BitLen(), b.BitLen()) })
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
	p.parseHostImpair(d, m, line)
	p.parseHostMTU(d, m, line)
	return d
}
