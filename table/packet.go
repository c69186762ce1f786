package table

import (
	"net/netip"
	"time"
)

// The full path: what Outbound and Inbound do with any packet, the table
// theirs alone (Shared.Lock), and the side-effect-free lookups of ICMP
// errors (PeekOutbound, PeekInbound). The lookup keys, the filter, the
// timer a packet sets and the TCP state it moves are shared with the hit
// path (hit.go), which handles the packets that change only their
// mapping.

// outProbe builds the lookup key of the mapping behaviour: the remote fields it
// ignores are zero (RFC 4787 §4.1; ICMP queries are always endpoint
// independent, RFC 5508 REQ-1).
func (t *Table) outProbe(proto Protocol, internal, remote netip.AddrPort) outProbe {
	var rem [4]byte
	var remPort uint16
	b := t.cfg.Mapping
	if proto == ICMP {
		b = EndpointIndependent
	}
	switch b {
	case AddressAndPortDependent:
		remPort = remote.Port()
		rem = remote.Addr().As4()
	case AddressDependent:
		rem = remote.Addr().As4()
	}
	return probeOf(proto, internal.Addr().As4(), internal.Port(), rem, remPort)
}

// remKeyOf is the session key of a remote endpoint. ICMP sessions key on the
// address only: replies are filtered address-dependently (RFC 5508 REQ-1).
func remKeyOf(proto Protocol, remote netip.AddrPort) remKey {
	r := remKey{addr: remote.Addr().As4(), port: remote.Port()}
	if proto == ICMP {
		r.port = 0
	}
	return r
}

func (t *Table) filtering(proto Protocol) Behavior {
	if proto == ICMP {
		return AddressDependent
	}
	return t.cfg.Filtering
}

// unreplied is the UDP timer before a reply: UDPUnrepliedTimeout, at most
// UDPTimeout (so "--preset linux --udp-timeout 10s" means 10 s for all).
func (t *Table) unreplied() time.Duration { return min(t.cfg.UDPUnrepliedTimeout, t.cfg.UDPTimeout) }

// timeout is the idle timeout for a session of proto with state bits b
// (TCP: tcpSynOut...; UDP: udpReplied).
func (t *Table) timeout(proto Protocol, b uint8) time.Duration {
	switch proto {
	case UDP:
		if u := t.unreplied(); b&udpReplied == 0 && u > 0 {
			return u
		}
		return t.cfg.UDPTimeout
	case ICMP:
		return t.cfg.ICMPTimeout
	}
	// RFC 5382 REQ-5: established sessions get the long timer, all other
	// states (opening, closing) the transitory one; RFC 7857 §2.2: a reset
	// session stays for the transitory time too.
	if tcpStateOf(b) == stateEstablished {
		return t.cfg.TCPEstablishedTimeout
	}
	return t.cfg.TCPTransitoryTimeout
}

// Outbound is OutboundSeg for a packet known by its TCP flags only (0
// for UDP and ICMP): the session's windows are not tracked.
func (t *Table) Outbound(proto Protocol, internal, remote netip.AddrPort, tcpFlags uint8, now time.Time) (m *Mapping, created bool, err error) {
	return t.OutboundSeg(proto, internal, remote, FlagsOnly(tcpFlags), now)
}

// OutboundSeg handles a packet from internal to remote. It finds or
// creates the mapping (created reports a new one), records or refreshes
// the session for remote (which is also the filter permission),
// refreshes the timer (RFC 4787 REQ-6: outbound always refreshes),
// advances the TCP state and windows with seg (the zero Segment for UDP
// and ICMP) and counts the packet. For ICMP, internal is (address, echo
// identifier). It returns ErrPortsExhausted when no external port is
// free, and an ErrLimit error when a new mapping or session would pass a
// limit of Config; live mappings are never evicted.
func (t *Table) OutboundSeg(proto Protocol, internal, remote netip.AddrPort, seg Segment, now time.Time) (m *Mapping, created bool, err error) {
	if proto.index() < 0 {
		return nil, false, ErrProtocol
	}
	if !internal.Addr().Is4() || !remote.Addr().Is4() {
		return nil, false, ErrNotIPv4
	}
	k := t.outProbe(proto, internal, remote)
	rel := t.since(now)
	r := remKeyOf(proto, remote)
	over := t.cfg.PortOverloading && proto != ICMP
	if over && t.secondaries > 0 {
		// A mapping of its own for this remote, made on a clash, wins.
		k2 := k.forRemote(r)
		if m2 := t.out.findOut(hashOut(k2, t.seed), k2); m2 != nil {
			if m2.alive(rel) {
				m = m2
			} else {
				t.bury(m2)
			}
		}
	}
	if m == nil {
		h := hashOut(k, t.seed)
		m = t.out.findOut(h, k)
		if m != nil && !m.alive(rel) {
			t.bury(m)
			m = nil
		}
		if m == nil {
			if err = t.roomForMapping(internal.Addr().As4(), rel); err != nil {
				return nil, false, err
			}
			if m, err = t.create(proto, k.key(), h, r, rel); err != nil {
				return nil, false, err
			}
			created = true
		}
	}

	i := m.find(r)
	if (i < 0 || !m.sess(i).alive(rel)) && over && t.clashes(m, r, rel) {
		// Another holder of m's external port talks to r (m's own session
		// with r, if any, has lapsed): the reply tuple would not be
		// unique, so r gets a mapping of its own (Linux: get_unique_tuple
		// falls back to another port).
		i = -1
		if err = t.roomForMapping(internal.Addr().As4(), rel); err != nil {
			return nil, false, err
		}
		k2 := k.forRemote(r)
		if m, err = t.create(proto, k2.key(), hashOut(k2, t.seed), r, rel); err != nil {
			return nil, false, err
		}
		created = true
	}
	if i < 0 && !created {
		if err = t.roomForSession(m, rel); err != nil {
			return nil, false, err
		}
	}
	if i < 0 {
		i = m.addSession(r, rel)
	} else if !m.sess(i).alive(rel) {
		m.sess(i).tcp = 0 // a lapsed session starts afresh
	}
	if proto == TCP {
		t.tcpTouch(m, i, true, &seg, rel)
	} else {
		m.extend(i, rel+t.timeout(proto, m.sess(i).tcp))
	}
	if created {
		m.due = m.expires
		t.heapPush(m)
	}
	m.countPacket(true)
	return m, created, nil
}

// Inbound is InboundSeg for a packet known by its TCP flags only (0 for
// UDP and ICMP): no window is tracked or checked.
func (t *Table) Inbound(proto Protocol, external, remote netip.AddrPort, tcpFlags uint8, now time.Time) (*Mapping, Verdict) {
	return t.InboundSeg(proto, external, remote, FlagsOnly(tcpFlags), now)
}

// InboundSeg handles a packet from remote to external. It finds the
// mapping that holds external and applies the filtering behaviour (RFC
// 4787 §5): EIF admits any remote, ADF a remote whose address has a live
// session, APDF a remote with a live session of its own; ICMP replies are
// always filtered address-dependently. For TCP, packets of a known
// session advance its state and windows and reset its timer, but a RST
// or FIN outside the session's window gets DropOutOfWindow and changes
// nothing; a SYN admitted from a remote with no session creates one (hole
// punching, simultaneous open); other admitted packets from such a
// remote pass without one. For UDP and ICMP (seg zero), an accepted
// packet refreshes the mapping and the sender's permission when
// InboundRefresh is set. An accepted packet is counted.
//
// The mapping is returned with Accept, DropFiltered, DropOutOfWindow and
// the DropLimit verdicts, nil otherwise. A SYN (without ACK) that finds
// no mapping gets DropUnsolicitedSYN (RFC 5382 REQ-4). A SYN that would
// add a session beyond a limit gets DropLimitSessionsPerMapping or
// DropLimitSessions, and the mapping is left as it was.
func (t *Table) InboundSeg(proto Protocol, external, remote netip.AddrPort, seg Segment, now time.Time) (*Mapping, Verdict) {
	rel := now.Sub(t.epoch) // before the first mapping: unused, as none is found
	m, i, v := t.match(proto, external, remote, rel)
	switch v {
	case Accept:
	case DropNoMapping:
		if proto == TCP && isConnRequest(seg.Flags) {
			v = DropUnsolicitedSYN
		}
		return nil, v
	default:
		return m, v
	}
	if proto == TCP {
		if i < 0 {
			if !isConnRequest(seg.Flags) {
				m.countPacket(false)
				return m, Accept
			}
			r := remKeyOf(proto, remote)
			if i = m.find(r); i < 0 {
				switch t.roomForSession(m, rel) {
				case ErrLimitSessionsPerMapping:
					return m, DropLimitSessionsPerMapping
				case ErrLimitSessions:
					return m, DropLimitSessions
				}
				i = m.addSession(r, rel)
			} else {
				m.sess(i).tcp = 0 // lapsed: start afresh
			}
		}
		if !t.tcpTouch(m, i, false, &seg, rel) {
			return m, DropOutOfWindow
		}
		m.countPacket(false)
		return m, Accept
	}
	m.countPacket(false)
	if proto == UDP && i >= 0 && m.sess(i).tcp&udpReplied == 0 {
		// The first packet back: the session's timer becomes the replied
		// one, counted from its last refresh.
		s := m.sess(i)
		s.tcp |= udpReplied
		if u := t.unreplied(); u > 0 {
			m.extend(i, s.expires-u+t.cfg.UDPTimeout)
		}
	}
	// RFC 4787 REQ-6: inbound refresh is optional.
	if t.cfg.InboundRefresh {
		m.extend(i, rel+t.timeout(proto, udpReplied)) // an accepted packet back: the replied timer
	}
	return m, Accept
}

// PeekInbound is Inbound without side effects, for ICMP error translation: an
// error neither creates, refreshes nor deletes a mapping (RFC 5508 REQ-6).
// It never returns DropUnsolicitedSYN.
func (t *Table) PeekInbound(proto Protocol, external, remote netip.AddrPort, now time.Time) (*Mapping, Verdict) {
	m, _, v := t.match(proto, external, remote, now.Sub(t.epoch))
	return m, v
}

// PeekOutbound returns the live mapping Outbound would use for internal to
// remote, or nil; it has no side effects (RFC 5508 REQ-6).
func (t *Table) PeekOutbound(proto Protocol, internal, remote netip.AddrPort, now time.Time) *Mapping {
	if !internal.Addr().Is4() || !remote.Addr().Is4() {
		return nil
	}
	k := t.outProbe(proto, internal, remote)
	rel := now.Sub(t.epoch)
	if t.cfg.PortOverloading && proto != ICMP && t.secondaries > 0 {
		// As Outbound: a mapping made for this remote alone comes first.
		k2 := k.forRemote(remKeyOf(proto, remote))
		if m := t.out.findOut(hashOut(k2, t.seed), k2); m != nil && m.alive(rel) {
			return m
		}
	}
	m := t.out.findOut(hashOut(k, t.seed), k)
	if m == nil || !m.alive(rel) {
		return nil
	}
	return m
}

// match finds the live mapping holding external and applies its filter. It
// returns the position of remote's live session (or -1). rel is now in the
// table's time. An endpoint several mappings share (PortOverloading) goes
// to the one with a live session for remote.
func (t *Table) match(proto Protocol, external, remote netip.AddrPort, rel time.Duration) (*Mapping, int, Verdict) {
	if !external.Addr().Is4() || !remote.Addr().Is4() {
		return nil, -1, DropNoMapping
	}
	addr := external.Addr().As4()
	w := endpointWord(proto, addr, external.Port())
	h := hashExt(w, t.seed)
	r := remKeyOf(proto, remote)
	if t.cfg.PortOverloading && t.shared[extKey{proto: proto, addr: addr, port: external.Port()}] > 0 {
		var live *Mapping
		for c := range t.in.eachExt(h, w) {
			if !c.alive(rel) {
				continue
			}
			if live == nil {
				live = c
			}
			if i := c.findLive(r, rel); i >= 0 {
				return c, i, Accept
			}
		}
		if live == nil {
			return nil, -1, DropNoMapping
		}
		return live, -1, DropFiltered // APDF: none talks to remote
	}
	m := t.in.findExt(h, w)
	if m == nil || !m.alive(rel) {
		return nil, -1, DropNoMapping
	}
	i, ok := m.admits(t.filtering(proto), r, rel)
	if !ok {
		return m, -1, DropFiltered
	}
	return m, i, Accept
}

// tcpTouch applies TCP segment g (out: from inside) to session i of m:
// the windows and the state advance and the timer restarts. A segment
// from outside outside the window is not tracked, and if it is a RST or
// FIN, tcpTouch changes nothing and reports false. A packet that leaves
// the state as it is only moves the timer later: an earlier expiry would
// come from a reader whose clock (read once per batch) is a little behind
// another's, not from anything the flow did.
//
// A RST leaves the session for the transitory time, not at once (RFC
// 7857 §2.2), and is undone if both ends go on sending in the window: a
// RST that got through without ending the connection (one forged, or
// one the host refused, RFC 5961 §3.2) then costs nothing.
func (t *Table) tcpTouch(m *Mapping, i int, out bool, g *Segment, rel time.Duration) bool {
	s := m.sess(i)
	w := m.win(i)
	end := 1
	if out {
		end = 0
	}
	if tcpFresh(s.tcp, g.Flags) {
		*w = tcpWin{}
	}
	inWindow := out || w.ok(end, g)
	if !inWindow && g.Flags&(FlagRST|FlagFIN) != 0 {
		return false
	}
	if inWindow {
		w.track(end, g)
	}
	nb := tcpAdvance(s.tcp, out, g.Flags)
	switch {
	case g.Flags&FlagRST != 0:
		w[0].flags &^= dirAfterRst
		w[1].flags &^= dirAfterRst
	case nb&tcpRst != 0 && inWindow && g.HasSeq:
		w[end].flags |= dirAfterRst
		if w[0].flags&w[1].flags&dirAfterRst != 0 {
			nb &^= tcpRst
			w[0].flags &^= dirAfterRst
			w[1].flags &^= dirAfterRst
		}
	}
	e := rel + t.timeout(TCP, nb)
	if nb == s.tcp && e <= s.expires {
		return true
	}
	s.tcp = nb
	t.setTCPSessionExpiry(m, i, e)
	return true
}

// setTCPSessionExpiry sets a TCP session's expiry; the mapping lives while
// any session lives, so its Expires is the latest of its sessions'.
func (t *Table) setTCPSessionExpiry(m *Mapping, i int, e time.Duration) {
	old := m.setSessionExpiry(i, e)
	switch {
	case e > m.expires:
		m.expires = e
	case e < old && old == m.expires:
		t.setExpires(m, m.maxSessionExpiry())
	}
}
