package table

import (
	"errors"
	"time"
)

// Limits on the table's size (Config.Limit*): checked before a new
// mapping or session is made, never by evicting a live one (RFC 6888
// REQ-4). Lapsed mappings and sessions still held count until removed,
// so a limit reached first removes them and looks again.

// The errors Outbound returns when a limit refuses a packet; the engine
// answers with ICMP 3/13 (RFC 6888 REQ-3/4, RFC 5508 REQ-8).
var (
	ErrLimitMappingsPerHost    = errors.New("limit of mappings per inside host reached")
	ErrLimitSessionsPerMapping = errors.New("limit of sessions per mapping reached")
	ErrLimitMappings           = errors.New("limit of mappings reached")
	ErrLimitSessions           = errors.New("limit of sessions reached")
)

// over reports whether n has reached limit (0: no limit).
func over(n, limit int) bool { return limit > 0 && n >= limit }

// roomForMapping reports whether internal address in may have one more
// mapping (with its first session), removing lapsed mappings if a limit
// is reached.
func (t *Table) roomForMapping(in [4]byte, rel time.Duration) error {
	c := &t.cfg
	full := func() error {
		switch {
		case over(int(t.pairs[in].n), c.LimitMappingsPerHost):
			return ErrLimitMappingsPerHost
		case over(t.in.n, c.LimitMappings):
			return ErrLimitMappings
		case over(t.sessions, c.LimitSessions):
			return ErrLimitSessions
		}
		return nil
	}
	if full() == nil {
		return nil
	}
	t.reapDue(rel)
	return full()
}

// roomForSession reports whether m may have one more session, pruning
// m's lapsed sessions and removing lapsed mappings if a limit is reached.
func (t *Table) roomForSession(m *Mapping, rel time.Duration) error {
	c := &t.cfg
	if over(int(m.nsess), c.LimitSessionsPerMapping) {
		m.prunePaced(rel)
		if over(int(m.nsess), c.LimitSessionsPerMapping) {
			return ErrLimitSessionsPerMapping
		}
	}
	if over(t.sessions, c.LimitSessions) {
		t.reapDue(rel)
		m.prunePaced(rel)
		if over(t.sessions, c.LimitSessions) {
			return ErrLimitSessions
		}
	}
	return nil
}

// Sessions returns the number of sessions held over all mappings,
// lapsed ones included until removed.
func (t *Table) Sessions() int { return t.sessions }

// prunePeriod is how often, at most, a mapping with many sessions is
// pruned to make room under a limit.
const prunePeriod = time.Second

// prunePaced removes m's lapsed sessions, but those of a mapping with
// many at most once per prunePeriod: a SYN flood refused at the limit
// would otherwise pay a scan and a rebuild of every session's index per
// packet (about 300 µs each at the default limit of 4096,
// BenchmarkSYNRefusedAtLimit). A session that lapses in between is counted
// until the next prune, at most prunePeriod later.
func (m *Mapping) prunePaced(rel time.Duration) {
	if m.more == nil {
		m.prune(rel)
		return
	}
	if rel < m.more.nextPrune {
		return
	}
	m.prune(rel)
	if m.more != nil {
		m.more.nextPrune = rel + prunePeriod
	}
}
