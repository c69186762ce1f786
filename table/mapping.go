package table

import (
	"fmt"
	"net/netip"
	"time"
)

// outKey finds a mapping from the inside: the protocol, the internal endpoint
// and the part of the remote endpoint the mapping behaviour looks at (the rest
// zeroed, as natlab does). Small fixed-size arrays make a fast map key
// (tailscale flowtrack); the fields are ordered so the struct has no padding,
// which lets the runtime hash and compare it as one block of memory.
type outKey struct {
	in      [4]byte
	rem     [4]byte
	inPort  uint16
	remPort uint16
	proto   Protocol
	//lint:ignore U1000 always 0: a named field (not _) keeps the key free of padding
	pad uint8
}

// extKey finds a mapping from the outside: protocol and external endpoint.
// 8 bytes without padding: the runtime's fast 64-bit hash applies.
type extKey struct {
	addr  [4]byte
	port  uint16
	proto Protocol
	//lint:ignore U1000 always 0, as in outKey
	pad uint8
}

// remKey is a remote endpoint inside a mapping's session list.
type remKey struct {
	addr [4]byte
	port uint16
}

func (r remKey) addrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(r.addr), r.port)
}

// udpReplied marks a UDP session that has had a packet back (in
// session.tcp, unused otherwise for UDP): its timeout is UDPTimeout,
// before it UDPUnrepliedTimeout.
const udpReplied uint8 = 1

// TCP session flag bits: what the session has seen. State is derived from
// them, so any order of packets is accepted (RFC 5382 REQ-2: every valid
// sequence, simultaneous open included).
const (
	tcpSynOut uint8 = 1 << iota
	tcpSynIn
	tcpFinOut
	tcpFinIn
	tcpRst
	tcpSeenOut
	tcpSeenIn
)

// tcpState is a TCP session's state, as far as the NAT tracks it.
type tcpState uint8

const (
	stateSynSent     tcpState = iota // opened from inside, no answering SYN yet
	stateSynRcvd                     // opened from outside (simultaneous open, hole punching)
	stateEstablished                 // SYNs seen both ways (or mid-stream pickup seen both ways)
	stateFinWait                     // FIN from inside only
	stateCloseWait                   // FIN from outside only
	stateTimeWait                    // FINs both ways
	stateClosed                      // RST seen
)

var tcpStateNames = [...]string{
	stateSynSent:     "SYN_SENT",
	stateSynRcvd:     "SYN_RCVD",
	stateEstablished: "ESTABLISHED",
	stateFinWait:     "FIN_WAIT",
	stateCloseWait:   "CLOSE_WAIT",
	stateTimeWait:    "TIME_WAIT",
	stateClosed:      "CLOSED",
}

func (s tcpState) String() string { return tcpStateNames[s] }

func tcpStateOf(b uint8) tcpState {
	switch {
	case b&tcpRst != 0:
		return stateClosed
	case b&(tcpFinOut|tcpFinIn) == tcpFinOut|tcpFinIn:
		return stateTimeWait
	case b&tcpFinOut != 0:
		return stateFinWait
	case b&tcpFinIn != 0:
		return stateCloseWait
	case b&(tcpSynOut|tcpSynIn) == tcpSynOut|tcpSynIn:
		return stateEstablished
	case b&(tcpSynOut|tcpSynIn) == 0 && b&(tcpSeenOut|tcpSeenIn) == tcpSeenOut|tcpSeenIn:
		// No SYN seen but traffic both ways: a connection picked up in the
		// middle (after Flush or a NAT restart), as conntrack's loose mode does.
		return stateEstablished
	case b&tcpSynOut != 0:
		return stateSynSent
	case b&tcpSynIn != 0:
		return stateSynRcvd
	case b&tcpSeenOut != 0:
		return stateSynSent
	}
	return stateSynRcvd
}

// tcpAdvance returns the session bits after a packet with flags in direction
// out (internal to remote) or in.
func tcpAdvance(b uint8, out bool, flags uint8) uint8 {
	if tcpFresh(b, flags) {
		b = 0 // a new connection on the same 4-tuple
	}
	if flags&FlagRST != 0 {
		b |= tcpRst
	}
	if out {
		b |= tcpSeenOut
		if flags&FlagSYN != 0 {
			b |= tcpSynOut
		}
		if flags&FlagFIN != 0 {
			b |= tcpFinOut
		}
	} else {
		b |= tcpSeenIn
		if flags&FlagSYN != 0 {
			b |= tcpSynIn
		}
		if flags&FlagFIN != 0 {
			b |= tcpFinIn
		}
	}
	return b
}

// tcpFresh reports whether a packet with flags starts session bits b
// afresh: the session is new, or the SYN opens a new connection on the
// 4-tuple of one that has closed.
func tcpFresh(b, flags uint8) bool {
	if b == 0 {
		return true
	}
	if !isConnRequest(flags) {
		return false
	}
	st := tcpStateOf(b)
	return st == stateTimeWait || st == stateClosed
}

// session is one remote endpoint a mapping has talked to: the filter
// permission (RFC 4787 §5) and, for TCP, the connection state. 16 bytes:
// the first one lives inside the Mapping.
type session struct {
	remote  remKey
	tcp     uint8         // tcpSynOut... bits; udpReplied for UDP; 0 for ICMP
	expires time.Duration // since Table.epoch
}

func (s *session) alive(now time.Duration) bool { return now < s.expires }

// indexThreshold is the session count above which a mapping indexes its
// sessions by remote (a server talking to thousands of peers must not go O(n)
// per packet).
const indexThreshold = 8

// sessionSet holds a mapping's sessions after the first, and their index
// once there are many.
type sessionSet struct {
	list    []session                 // sessions 1..nsess-1
	win     []tcpWin                  // TCP: their window tracking, as list
	pos     map[remKey]int32          // position (0..nsess-1); nil until indexed
	addr    map[[4]byte]time.Duration // latest expiry of the sessions with this address (ADF)
	pruneAt int                       // prune lapsed sessions when nsess reaches this
	// nextPrune is the earliest a limit may prune again (prunePaced).
	nextPrune time.Duration
}

// Mapping is one binding of an internal endpoint to an external endpoint
// (RFC 4787 §4.1), with its filter permissions and, for TCP, its sessions.
// The exported fields are read-only to callers; the table owns the Mapping.
// Its internal endpoint never changes, its external one only by Rebind
// (with the table to itself); the rest (timers, sessions, counters) the
// hit path changes under the Mapping's stripe lock (hit.go), and every
// other call with the table to itself.
//
// A million of them must fit in a few hundred megabytes and be found with
// as few cache misses as possible, so the struct is 120 bytes (in Go's
// 128-byte size class, so every Mapping starts a cache line) and the first
// line holds all that a packet of a mapping with one session reads or
// writes: the key the indexes compare, the expiry, the first session (most
// mappings have one) and the low 32 bits of the counters. A packet that
// touched the second line too cost 25-30 ns more per lookup at a million
// mappings (BenchmarkOutboundHitBatch, BenchmarkInboundHitBatch): its
// line is one more miss, prefetched or not. A TCP mapping has one line
// more, before the first: its first session's windows (tcpMapping), which
// its packets read and write too and UDP and ICMP mappings do without.
// Times are durations since the table's epoch (8 bytes, not time.Time's
// 24); the methods turn them back into times.
type Mapping struct {
	okey    outKey        // protocol, internal endpoint, remote part of the key
	extPort uint16        // external port (ICMP: identifier)
	extAddr [4]byte       // external address
	nsess   int32         // sessions held: inl, then more.list
	expires time.Duration // since Table.epoch; gone at expires (not after)
	inl     session       // the first session
	// Counters, low words: packets the table saw (inbound: accepted ones
	// only) and bytes the engine translated (AddBytes). The high words
	// live in the second line, touched once per 2^32.
	pktsOut, pktsIn, bytesOut, bytesIn uint32

	// The second line: what sessions beyond the first, the expiry heap
	// and the reports need.
	more    *sessionSet // nil while there is at most one session
	hidx    int32       // expiry heap position, or -1
	ext     uint16      // index of extAddr in Table.ext
	due     time.Duration
	created time.Duration
	tab     *Table // for the epoch the durations count from

	pktsOutHi, pktsInHi, bytesOutHi, bytesInHi uint32
}

// sess returns session i (0 <= i < nsess).
func (m *Mapping) sess(i int) *session {
	if i == 0 {
		return &m.inl
	}
	return &m.more.list[i-1]
}

// indexed reports whether the sessions are indexed by remote. It looks at
// more (the second line) only when there are several sessions.
func (m *Mapping) indexed() bool { return m.nsess > 1 && m.more != nil && m.more.pos != nil }

// Proto is the protocol the mapping is for.
func (m *Mapping) Proto() Protocol { return m.okey.proto }

// Internal is the internal endpoint; for ICMP, (address, echo identifier).
func (m *Mapping) Internal() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(m.okey.in), m.okey.inPort)
}

// External is the external endpoint the internal one is seen as.
func (m *Mapping) External() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(m.extAddr), m.extPort)
}

// Created is when the mapping was made.
func (m *Mapping) Created() time.Time { return m.tab.epoch.Add(m.created) }

// Expires is when the mapping lapses without more traffic: for TCP the
// latest expiry of its sessions. It is gone at Expires (not after).
func (m *Mapping) Expires() time.Time { return m.tab.epoch.Add(m.expires) }

// extKey returns the mapping's key on the outside.
func (m *Mapping) extKey() extKey {
	return extKey{proto: m.okey.proto, addr: m.extAddr, port: m.extPort}
}

// SessionInfo describes one session of a mapping, for display.
type SessionInfo struct {
	// Remote is the remote endpoint (port 0 for ICMP: only the address counts).
	Remote netip.AddrPort
	// State is the TCP state ("SYN_SENT", "ESTABLISHED", "TIME_WAIT", ...),
	// empty for UDP and ICMP.
	State string
	// Expires is when the session (and its filter permission) lapses.
	Expires time.Time
}

// Sessions calls fn for each session the mapping holds until fn returns
// false. Lapsed sessions not yet pruned are included: compare Expires with
// the current time to skip them.
func (m *Mapping) Sessions(fn func(s SessionInfo) bool) {
	for i := range int(m.nsess) {
		s := m.sess(i)
		info := SessionInfo{Remote: s.remote.addrPort(), Expires: m.tab.epoch.Add(s.expires)}
		if m.okey.proto == TCP {
			info.State = tcpStateOf(s.tcp).String()
		}
		if !fn(info) {
			return
		}
	}
}

// PacketsOut is how many packets from inside the mapping has carried.
func (m *Mapping) PacketsOut() uint64 { return uint64(m.pktsOutHi)<<32 | uint64(m.pktsOut) }

// PacketsIn is how many packets from outside it has let in.
func (m *Mapping) PacketsIn() uint64 { return uint64(m.pktsInHi)<<32 | uint64(m.pktsIn) }

// BytesOut is how many bytes from inside the engine has translated for it.
func (m *Mapping) BytesOut() uint64 { return uint64(m.bytesOutHi)<<32 | uint64(m.bytesOut) }

// BytesIn is how many bytes from outside the engine has translated for it.
func (m *Mapping) BytesIn() uint64 { return uint64(m.bytesInHi)<<32 | uint64(m.bytesIn) }

// add adds n to the counter whose low word is lo and high word hi. The
// high word lives in the Mapping's second cache line, so it is written
// only when it changes: an unconditional write (even of 0) costs that
// line's miss on every packet (measured: ~100 ns per lookup at a million
// mappings, BenchmarkOutboundHitBatch/1M).
func add(lo, hi *uint32, n uint64) {
	old := *lo
	*lo += uint32(n)
	c := uint32(n >> 32)
	if *lo < old {
		c++ // carry
	}
	if c != 0 {
		*hi += c
	}
}

// countPacket counts one packet out (out true) or in.
func (m *Mapping) countPacket(out bool) {
	if out {
		add(&m.pktsOut, &m.pktsOutHi, 1)
	} else {
		add(&m.pktsIn, &m.pktsInHi, 1)
	}
}

// AddBytes adds n bytes (n >= 0) to BytesOut (out true) or BytesIn.
func (m *Mapping) AddBytes(out bool, n int) {
	if out {
		add(&m.bytesOut, &m.bytesOutHi, uint64(n))
	} else {
		add(&m.bytesIn, &m.bytesInHi, uint64(n))
	}
}

// String describes the mapping, e.g. "udp 10.0.0.2:5000 -> 198.51.100.1:5000".
func (m *Mapping) String() string {
	return fmt.Sprintf("%s %s -> %s", m.Proto(), m.Internal(), m.External())
}

func (m *Mapping) alive(now time.Duration) bool { return now < m.expires }

// find returns the position of the session with remote r, live or not, or -1.
func (m *Mapping) find(r remKey) int {
	if m.indexed() {
		if i, ok := m.more.pos[r]; ok {
			return int(i)
		}
		return -1
	}
	if m.nsess > 0 && m.inl.remote == r {
		return 0
	}
	if m.nsess > 1 {
		for i := range m.more.list {
			if m.more.list[i].remote == r {
				return i + 1
			}
		}
	}
	return -1
}

// findLive is find for a session that has not lapsed.
func (m *Mapping) findLive(r remKey, now time.Duration) int {
	if i := m.find(r); i >= 0 && m.sess(i).alive(now) {
		return i
	}
	return -1
}

// addrAlive reports whether a live session has remote address a (ADF).
func (m *Mapping) addrAlive(a [4]byte, now time.Duration) bool {
	if m.indexed() {
		e, ok := m.more.addr[a]
		return ok && now < e
	}
	for i := range int(m.nsess) {
		if s := m.sess(i); s.remote.addr == a && s.alive(now) {
			return true
		}
	}
	return false
}

// admits applies filtering behaviour f to remote r (RFC 4787 §5). It returns
// the position of r's live session (or -1) and whether r may send in.
func (m *Mapping) admits(f Behavior, r remKey, now time.Duration) (int, bool) {
	i := m.findLive(r, now)
	switch {
	case i >= 0, f == EndpointIndependent:
		return i, true
	case f == AddressDependent:
		return -1, m.addrAlive(r.addr, now)
	}
	return -1, false
}

// addSession appends a session for r (expiry zero: the caller sets it) and
// returns its position, pruning lapsed sessions and indexing as the list grows.
func (m *Mapping) addSession(r remKey, now time.Duration) int {
	limit := indexThreshold
	if m.indexed() {
		limit = m.more.pruneAt
	}
	if int(m.nsess) >= limit {
		m.prune(now)
	}
	i := int(m.nsess)
	if i == 0 {
		m.inl = session{remote: r}
	} else {
		if m.more == nil {
			m.more = &sessionSet{}
		}
		m.more.list = append(m.more.list, session{remote: r})
		if m.okey.proto == TCP {
			m.more.win = append(m.more.win, tcpWin{})
		}
	}
	m.nsess++
	m.tab.sessions++
	switch {
	case m.indexed():
		m.more.pos[r] = int32(i)
	case m.nsess > indexThreshold:
		m.reindex()
	}
	return i
}

// prune drops lapsed sessions and rebuilds (or drops) the index.
func (m *Mapping) prune(now time.Duration) {
	tcp := m.okey.proto == TCP
	w := 0
	for i := range int(m.nsess) {
		if s := *m.sess(i); s.alive(now) {
			*m.sess(w) = s
			if tcp {
				*m.win(w) = *m.win(i)
			}
			w++
		}
	}
	m.tab.sessions -= int(m.nsess) - w
	m.nsess = int32(w)
	if m.more == nil {
		return
	}
	rest := max(w-1, 0)
	clear(m.more.list[rest:])
	m.more.list = m.more.list[:rest]
	if tcp {
		m.more.win = m.more.win[:rest]
	}
	switch {
	case w <= 1:
		m.more = nil
	case w <= indexThreshold/2:
		m.more.pos, m.more.addr = nil, nil
	default:
		m.reindex()
	}
}

// reindex builds the index from scratch.
func (m *Mapping) reindex() {
	n := int(m.nsess)
	set := m.more
	set.pos = make(map[remKey]int32, 2*n)
	set.addr = make(map[[4]byte]time.Duration)
	set.pruneAt = max(2*n, 2*indexThreshold)
	for i := range n {
		s := m.sess(i)
		set.pos[s.remote] = int32(i)
		if e, ok := set.addr[s.remote.addr]; !ok || s.expires > e {
			set.addr[s.remote.addr] = s.expires
		}
	}
}

// extend moves m's expiry, and session i's (i >= 0), to e where e is
// later, never earlier: a refresh. The expiry heap needs no change (its
// due time stays at or below Expires). m's expiry is at least every
// session's, so a session moved later moves it too.
func (m *Mapping) extend(i int, e time.Duration) {
	if e > m.expires {
		m.expires = e
	}
	if i >= 0 && e > m.sess(i).expires {
		m.setSessionExpiry(i, e)
	}
}

// maxSessionExpiry returns the latest session expiry (0 if none).
func (m *Mapping) maxSessionExpiry() time.Duration {
	var e time.Duration
	for i := range int(m.nsess) {
		e = max(e, m.sess(i).expires)
	}
	return e
}

// setSessionExpiry sets session i's expiry, keeping the address index right.
// It reports the old expiry.
func (m *Mapping) setSessionExpiry(i int, e time.Duration) time.Duration {
	s := m.sess(i)
	old := s.expires
	s.expires = e
	if m.indexed() {
		a := s.remote.addr
		cur, ok := m.more.addr[a]
		switch {
		case !ok || e > cur:
			m.more.addr[a] = e
		case e < old && old == cur:
			// The address's latest session got shorter: recompute.
			var best time.Duration
			for j := range int(m.nsess) {
				if t := m.sess(j); t.remote.addr == a {
					best = max(best, t.expires)
				}
			}
			m.more.addr[a] = best
		}
	}
	return old
}
