package nat

import (
	"net/netip"
	"sync"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// The routed IPv6 mode: packets pass untranslated through a stateful
// firewall as RFC 6092 describes for a home gateway. What an inside host
// sends creates or refreshes a session (outbound flows are permitted,
// RFC 6092 section 3.2); what comes from outside passes only for a live
// session, as the NAT's filtering behaviour (table.Config.Filtering)
// decides: address-and-port-dependent admits the session's remote
// endpoint, address-dependent any port of its remote address,
// endpoint-independent anyone to the inside endpoint (RFC 6092 sections
// 3.2.2 and 3.2.3 in RFC 4787's terms). ICMPv6 echoes are matched by
// identifier; ICMPv6 errors pass when the packet they quote belongs to a
// live session (REC-8). An unsolicited TCP SYN is dropped silently, as
// the IPv4 side drops it (RFC 5382 REQ-4). Sessions time out as
// the IPv4 side's mappings do: udp-timeout, tcp-established-timeout and
// tcp-transitory-timeout, icmp-timeout; inbound packets refresh them
// only with inbound-refresh (TCP: both ways), and limit-sessions bounds
// how many there are.
//
// The table is two Go maps under one mutex of its own (not the IPv4
// table's lock): sessions by their whole tuple, and for the
// endpoint-independent and address-dependent behaviours the permissions
// by the part of the tuple the behaviour keeps (the rest zeroed). A
// packet of a live session makes one lookup (two when a permission is
// refreshed) and allocates nothing; a new session allocates its record,
// at most limit-sessions of them.

// fwKey is a session's tuple: the inside endpoint, the remote one, the
// protocol. An echo's identifier is both ports; a protocol without ports
// (or an ICMPv6 message other than an echo) has ports 0.
type fwKey struct {
	in, rem         [16]byte
	inPort, remPort uint16
	proto           uint8
}

// TCP states as the firewall follows them: enough to time a session.
const (
	fwTCPOpening     uint8 = iota // a SYN went out; nothing back, or no final ACK yet
	fwTCPEstablished              // both sides have talked since the SYN
	fwTCPClosing                  // a FIN or RST passed: transitory
)

type fwSession struct {
	created, expires int64 // ns since the epoch
	tcp              uint8 // fwTCP state, TCP only
	seenIn           bool  // a packet came back on it
}

type fwPerm struct{ expires int64 }

// fwConfig is the firewall's share of the configuration.
type fwConfig struct {
	filtering                   table.Behavior
	udp, tcpEst, tcpTrans, icmp int64 // timeouts, ns
	inboundRefresh              bool
	limit                       int // sessions; 0: no limit
}

func newFWConfig(c *table.Config) fwConfig {
	d := func(v, def time.Duration) int64 {
		if v <= 0 {
			return int64(def)
		}
		return int64(v)
	}
	return fwConfig{
		filtering: c.Filtering,
		udp:       d(c.UDPTimeout, table.DefaultUDPTimeout),
		tcpEst:    d(c.TCPEstablishedTimeout, table.DefaultTCPEstablishedTimeout),
		tcpTrans:  d(c.TCPTransitoryTimeout, table.DefaultTCPTransitoryTimeout),
		icmp:      d(c.ICMPTimeout, table.DefaultICMPTimeout),

		inboundRefresh: c.InboundRefresh,
		limit:          c.LimitSessions,
	}
}

// firewall6 is the routed mode's session table. Safe for concurrent use.
type firewall6 struct {
	mu       sync.Mutex
	sessions map[fwKey]*fwSession
	perms    map[fwKey]*fwPerm
	frags    *[frag6Slots]frag6Slot // nil until a fragmented datagram is admitted
}

func (f *firewall6) reset() {
	f.mu.Lock()
	f.sessions, f.perms, f.frags = nil, nil, nil
	f.mu.Unlock()
}

// Fragments from outside: a later fragment has no ports to check, so it
// passes only when the first fragment of its datagram (source,
// destination, identification; RFC 8200 section 4.5) was admitted, for
// as long as RFC 8200 gives reassembly (60 s). The record is a fixed,
// direct-mapped cache, made by the first admitted first fragment: a flood
// of fragments evicts entries, never grows memory. A later fragment that
// comes before its first is dropped (fragment-no-state).
const (
	frag6Slots    = 256
	frag6Lifetime = int64(60 * time.Second)
)

type frag6Key struct {
	src, dst [16]byte
	id       uint32
}

type frag6Slot struct {
	key     frag6Key
	expires int64
}

func (k *frag6Key) slot() int {
	h := k.id ^ uint32(k.src[15])<<8 ^ uint32(k.src[14])<<16 ^ uint32(k.dst[15])
	return int((h * 0x9e3779b1) >> (32 - 8)) // frag6Slots is 1<<8
}

// admitFirstFragment records that the first fragment of datagram k
// passed at now.
func (f *firewall6) admitFirstFragment(k frag6Key, now int64) {
	f.mu.Lock()
	if f.frags == nil {
		f.frags = new([frag6Slots]frag6Slot)
	}
	f.frags[k.slot()] = frag6Slot{key: k, expires: now + frag6Lifetime}
	f.mu.Unlock()
}

// laterFragment reports whether a later fragment of datagram k may pass.
func (f *firewall6) laterFragment(k frag6Key, now int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frags == nil {
		return false
	}
	s := &f.frags[k.slot()]
	return s.key == k && s.expires > now
}

// permKey is k with the fields behaviour b ignores zeroed, or ok false
// when b filters on the whole tuple (or k's protocol has no ports to
// ignore: echoes match by identifier and address, as ICMP does on the
// IPv4 side).
func permKey(k fwKey, b table.Behavior) (fwKey, bool) {
	if k.proto != header.ProtoUDP && k.proto != header.ProtoTCP {
		return k, false
	}
	switch b {
	case table.EndpointIndependent:
		k.rem, k.remPort = [16]byte{}, 0
	case table.AddressDependent:
		k.remPort = 0
	default:
		return k, false
	}
	return k, true
}

// timeout is how long s lives after a packet of proto.
func (c *fwConfig) timeout(proto uint8, s *fwSession) int64 {
	switch proto {
	case header.ProtoTCP:
		if s.tcp == fwTCPEstablished {
			return c.tcpEst
		}
		return c.tcpTrans
	case header.ProtoICMPv6:
		return c.icmp
	}
	return c.udp
}

// tcpStep moves s's state for a TCP packet with flags, inbound or not.
func (s *fwSession) tcpStep(flags uint8, inbound bool) {
	switch {
	case flags&(header.TCPFin|header.TCPRst) != 0:
		s.tcp = fwTCPClosing
	case flags&header.TCPSyn != 0 && !inbound && flags&header.TCPAck == 0:
		if s.tcp == fwTCPClosing { // a new connection on the same tuple
			s.tcp, s.seenIn = fwTCPOpening, false
		}
	case s.tcp == fwTCPOpening && (inbound || s.seenIn):
		// An answer, then the opener's next packet: the handshake is
		// through (or the answer was the final ACK of one opened from
		// outside, which the permission let in).
		if !inbound || flags&header.TCPSyn == 0 {
			s.tcp = fwTCPEstablished
		}
	}
}

// outbound records a packet from inside with tuple k (TCP flags flags)
// at now: a new session, or its own refreshed. It refuses one only when
// limit-sessions is reached, after removing lapsed sessions.
func (f *firewall6) outbound(c *fwConfig, k fwKey, flags uint8, now int64) Verdict {
	f.mu.Lock()
	s := f.sessions[k]
	if s == nil || s.expires <= now {
		if s == nil {
			if c.limit > 0 && len(f.sessions) >= c.limit {
				f.expireLocked(now, nil)
				if len(f.sessions) >= c.limit {
					f.mu.Unlock()
					return DropLimitSessions
				}
			}
			if f.sessions == nil {
				f.sessions = make(map[fwKey]*fwSession)
			}
			s = new(fwSession)
			f.sessions[k] = s
		}
		*s = fwSession{created: now}
	}
	if k.proto == header.ProtoTCP {
		s.tcpStep(flags, false)
	}
	s.expires = now + c.timeout(k.proto, s)
	if pk, ok := permKey(k, c.filtering); ok {
		p := f.perms[pk]
		if p == nil {
			if f.perms == nil {
				f.perms = make(map[fwKey]*fwPerm)
			}
			p = new(fwPerm)
			f.perms[pk] = p
		}
		p.expires = max(p.expires, s.expires)
	}
	f.mu.Unlock()
	return Forward
}

// inbound decides on a packet from outside whose tuple, seen from
// inside, is k: Forward for a live session (its state and, as
// configured, its lifetime updated) or a live permission of the
// filtering behaviour; otherwise why not. A lookup only (peek) changes
// nothing: for the quotes of ICMPv6 errors.
func (f *firewall6) inbound(c *fwConfig, k fwKey, flags uint8, now int64, peek bool) Verdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.sessions[k]; s != nil && s.expires > now {
		if peek {
			return Forward
		}
		s.seenIn = true
		if k.proto == header.ProtoTCP {
			s.tcpStep(flags, true)
			s.expires = now + c.timeout(k.proto, s)
		} else if c.inboundRefresh {
			s.expires = now + c.timeout(k.proto, s)
		}
		return Forward
	}
	if pk, ok := permKey(k, c.filtering); ok {
		if p := f.perms[pk]; p != nil && p.expires > now {
			return Forward
		}
	}
	if k.proto == header.ProtoTCP && flags&(header.TCPSyn|header.TCPAck) == header.TCPSyn {
		return DropUnsolicitedSYN
	}
	return DropIPv6Filtered
}

// expireLocked removes the lapsed sessions and permissions, calling gone
// for each session if it is not nil, and returns how many sessions went.
func (f *firewall6) expireLocked(now int64, gone func(fwKey, *fwSession)) int {
	n := 0
	for k, s := range f.sessions {
		if s.expires <= now {
			if gone != nil {
				gone(k, s)
			}
			delete(f.sessions, k)
			n++
		}
	}
	for k, p := range f.perms {
		if p.expires <= now {
			delete(f.perms, k)
		}
	}
	return n
}

// info is a session as a MappingInfo: routed, so its inside endpoint is
// both Internal and External; its remote is its one session.
func (k fwKey) info(s *fwSession) MappingInfo {
	in := netip.AddrPortFrom(netip.AddrFrom16(k.in), k.inPort)
	rem := netip.AddrPortFrom(netip.AddrFrom16(k.rem), k.remPort)
	exp := time.Unix(0, s.expires)
	si := table.SessionInfo{Remote: rem, Expires: exp}
	if k.proto == header.ProtoTCP {
		si.State = [...]string{"SYN_SENT", "ESTABLISHED", "CLOSING"}[s.tcp]
	}
	return MappingInfo{
		Proto: table.Protocol(k.proto), Internal: in, External: in,
		Created: time.Unix(0, s.created), Expires: exp,
		Remotes: []table.SessionInfo{si},
	}
}

// routed6 forwards pk in the routed mode: between inside ports as is,
// out through the firewall (making a session), in only as it admits.
func (e *Engine) routed6(pk *packet6, st *v6State) Result {
	p := &pk.p
	src, dst := p.Src.Addr(), p.Dst.Addr()
	now := pk.now.UnixNano()
	if pk.in != Outside {
		if r, done := e.fromInside6(pk, true); done {
			return r
		}
		switch {
		case p.IsFragment() && !p.IsFirstFragment():
			// A later fragment has no ports to make a session of: its
			// first fragment made one.
		case p.Proto == header.ProtoICMPv6 && header.IsICMPv6Error(p.ICMPType):
			// An inside host's error about a packet from outside: errors
			// make no sessions, and outbound traffic is permitted.
		default:
			k := fwKey{in: src.As16(), rem: dst.As16(), inPort: p.Src.Port(), remPort: p.Dst.Port(), proto: p.Proto}
			if v := e.fw.outbound(&st.fw, k, p.TCPFlags, now); v != Forward {
				return e.drop6(pk, v)
			}
		}
		return e.forward6(pk, Outside, 0)
	}

	// From outside.
	if martian6(dst) {
		return e.drop6(pk, DropMartian)
	}
	isErr := p.Proto == header.ProtoICMPv6 && header.IsICMPv6Error(p.ICMPType)
	// A router whose links carry only link-local addresses reports its
	// errors from one (RFC 4443 section 2.2 lets it).
	if martian6(src) && !(isErr && src.IsLinkLocalUnicast()) {
		return e.drop6(pk, DropMartian)
	}
	if _, inside := e.port6(src); inside || src == st.ext {
		return e.drop6(pk, DropMartian)
	}
	out, ok := e.port6(dst)
	if !ok {
		return e.drop6(pk, DropNoRoute)
	}
	var v Verdict
	notes := traceNote(0)
	switch {
	case p.IsFragment() && !p.IsFirstFragment():
		v = DropFragment
		if e.fw.laterFragment(frag6Key{src: src.As16(), dst: dst.As16(), id: p.FragID}, now) {
			v = Forward
		}
	case isErr:
		// REC-8: admitted when its quote belongs to a live session; the
		// quote is of a packet the inside host sent.
		if p.InnerSrc.Addr() != dst {
			v = DropIPv6Filtered
			break
		}
		k := fwKey{in: p.InnerSrc.Addr().As16(), rem: p.InnerDst.Addr().As16(), inPort: p.InnerSrc.Port(), remPort: p.InnerDst.Port(), proto: p.InnerProto}
		v = e.fw.inbound(&st.fw, k, 0, now, true)
		if v != Forward {
			v = DropIPv6Filtered
		}
		notes = noteICMPError
	default:
		k := fwKey{in: dst.As16(), rem: src.As16(), inPort: p.Dst.Port(), remPort: p.Src.Port(), proto: p.Proto}
		v = e.fw.inbound(&st.fw, k, p.TCPFlags, now, false)
	}
	if v != Forward {
		return e.drop6(pk, v)
	}
	if p.HopLimit <= 1 {
		return e.timeExceeded6(pk, st.ext)
	}
	if e.anyMTU {
		if r, ok := e.fit6(pk, out, e.ext6Source(st, out)); !ok {
			return r
		}
	}
	if p.MoreFrags && p.IsFirstFragment() {
		e.fw.admitFirstFragment(frag6Key{src: src.As16(), dst: dst.As16(), id: p.FragID}, now)
	}
	return e.forward6(pk, out, notes)
}
