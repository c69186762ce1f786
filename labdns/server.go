// Package labdns is the lab's DNS server: authoritative for one zone
// (the lab's names), A and AAAA records from a table it is given, AAAA
// synthesized from A for clients behind a NAT64 (DNS64, RFC 6147), over
// UDP and TCP. It never recurses: a name outside the zone is REFUSED,
// except single-label names, which get NXDOMAIN (see Answer).
package labdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DefaultTTL is the TTL of every record when Config gives none: short, as
// a lab's addresses change from one run to the next.
const DefaultTTL = 5

// shutdownWait bounds Close's wait for queries in flight.
const shutdownWait = 2 * time.Second

// Config is what the server answers.
type Config struct {
	// Zone is the zone it is authoritative for ("two-homes.test").
	Zone string
	// Records maps names in the zone, relative ("server") or absolute
	// ("server.two-homes.test."), to their addresses: IPv4 ones become A
	// records, IPv6 ones AAAA records. "" or "@" is the zone's apex.
	Records map[string][]netip.Addr
	// Views are the DNS64 views; a client matches the first whose Clients
	// contains its address. Clients of no view get no synthesis.
	Views []View
	// TTL of every record; 0 takes DefaultTTL.
	TTL uint32
}

// Handler answers queries; it is a dns.Handler. Only a name's addresses
// change once it is made (SetAddrs).
type Handler struct {
	zone  string // canonical, fully qualified
	ttl   uint32
	mu    sync.RWMutex
	names map[string][]netip.Addr // canonical FQDN -> addresses (v4 first, each family sorted); replaced whole, under mu
	views []View
	soa   *dns.SOA
	ns    *dns.NS
}

// NewHandler checks cfg and builds its handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Zone == "" {
		return nil, errors.New("labdns: no zone")
	}
	zone := dns.CanonicalName(cfg.Zone)
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("labdns: zone %q is not a domain name", cfg.Zone)
	}
	h := &Handler{zone: zone, ttl: cfg.TTL, names: map[string][]netip.Addr{}}
	if h.ttl == 0 {
		h.ttl = DefaultTTL
	}
	for name, addrs := range cfg.Records {
		fq, err := h.qualify(name)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if !a.IsValid() {
				return nil, fmt.Errorf("labdns: %s: invalid address", fq)
			}
			h.names[fq] = append(h.names[fq], a.Unmap())
		}
	}
	for fq, addrs := range h.names {
		h.names[fq] = sortAddrs(addrs)
	}
	for _, v := range cfg.Views {
		v, err := v.check()
		if err != nil {
			return nil, fmt.Errorf("labdns: %w", err)
		}
		h.views = append(h.views, v)
	}
	// The apex's SOA (for negative answers, RFC 2308) and NS name the
	// server itself as ns.ZONE; that name has no address record unless
	// the table gives one.
	h.soa = &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: h.ttl},
		Ns:      "ns." + zone,
		Mbox:    "hostmaster." + zone,
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: h.ttl,
	}
	h.ns = &dns.NS{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: h.ttl}, Ns: "ns." + zone}
	return h, nil
}

// SetAddrs gives name (as in Config.Records) the addresses addrs in place
// of those it had: a lab host that moved to another network. Queries
// answered from then on see them.
func (h *Handler) SetAddrs(name string, addrs []netip.Addr) error {
	fq, err := h.qualify(name)
	if err != nil {
		return err
	}
	s := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		if !a.IsValid() {
			return fmt.Errorf("labdns: %s: invalid address", fq)
		}
		s[i] = a.Unmap()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names[fq] = sortAddrs(s)
	return nil
}

// sortAddrs sorts s, IPv4 first, and drops repeats.
func sortAddrs(s []netip.Addr) []netip.Addr {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Is4() != s[j].Is4() {
			return s[i].Is4()
		}
		return s[i].Less(s[j])
	})
	return compactAddrs(s)
}

func compactAddrs(s []netip.Addr) []netip.Addr {
	out := s[:0]
	for i, a := range s {
		if i == 0 || a != s[i-1] {
			out = append(out, a)
		}
	}
	return out
}

// qualify makes a table name a canonical FQDN inside the zone.
func (h *Handler) qualify(name string) (string, error) {
	var fq string
	switch {
	case name == "" || name == "@":
		fq = h.zone
	case dns.IsFqdn(name):
		fq = dns.CanonicalName(name)
	default:
		fq = dns.CanonicalName(name + "." + h.zone)
	}
	if _, ok := dns.IsDomainName(fq); !ok {
		return "", fmt.Errorf("labdns: %q is not a domain name", name)
	}
	if !dns.IsSubDomain(h.zone, fq) {
		return "", fmt.Errorf("labdns: %q is outside zone %s", name, h.zone)
	}
	return fq, nil
}

// Zone returns the zone, fully qualified.
func (h *Handler) Zone() string { return h.zone }

// ServeDNS answers one query; UDP replies too big for the client's buffer
// (512 bytes, or what its EDNS0 record says) are truncated with TC set.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	var client netip.Addr
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		client = ap.Addr().Unmap().WithZone("") // a zone would match no view
	}
	m := h.Answer(r, client)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if o := r.IsEdns0(); o != nil {
			size = max(int(o.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// Answer is the reply to r from client: the server's whole logic, without
// the transport.
func (h *Handler) Answer(r *dns.Msg, client netip.Addr) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = false
	m.Compress = true
	if o := r.IsEdns0(); o != nil {
		// RFC 6891 §6.1.1: answer EDNS with EDNS, version 0 only.
		m.SetEdns0(1232, false)
		if o.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			return m
		}
	}
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	if dns.CountLabel(name) == 1 && !dns.IsSubDomain(h.zone, name) {
		// A single-label name is what a search list falls through to
		// ("server." after "server.ZONE."): NXDOMAIN, as a real resolver
		// says, so that a resolver which reports the last name's answer
		// (Go's) sees "no such host" rather than a refusal.
		m.Rcode = dns.RcodeNameError
		return m
	}
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY || !dns.IsSubDomain(h.zone, name) {
		// Not ours, and no recursion: RFC 1035 §4.1.1 REFUSED.
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	owner := q.Name // answers keep the question's spelling (RFC 4343)
	h.mu.RLock()
	addrs, exists := h.names[name]
	below := !exists && h.hasBelow(name)
	h.mu.RUnlock()
	if name == h.zone {
		exists = true
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = append(m.Answer, dns.Copy(h.soa))
		case dns.TypeNS:
			m.Answer = append(m.Answer, dns.Copy(h.ns))
		}
	} else if below {
		exists = true // an empty non-terminal: NODATA, not NXDOMAIN (RFC 8020)
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, dns.Copy(h.soa))
		return m
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeANY:
		for _, a := range addrs {
			if a.Is4() && q.Qtype != dns.TypeAAAA {
				m.Answer = append(m.Answer, &dns.A{Hdr: h.hdr(owner, dns.TypeA), A: a.AsSlice()})
			}
			if a.Is6() && q.Qtype != dns.TypeA {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: h.hdr(owner, dns.TypeAAAA), AAAA: a.AsSlice()})
			}
		}
		if q.Qtype == dns.TypeAAAA {
			if v, ok := h.view(client); ok {
				m.Answer = h.dns64(v, owner, addrs, m.Answer)
			}
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, dns.Copy(h.soa)) // NODATA (RFC 2308 §2.2)
	}
	return m
}

// dns64 returns the AAAA answer for a client of view v: the real AAAA
// records outside the exclusion set if any are left (RFC 6147 §5.1.4),
// else one synthesized from each A record not excluded (§5.1.7).
func (h *Handler) dns64(v View, owner string, addrs []netip.Addr, real []dns.RR) []dns.RR {
	var kept []dns.RR
	for _, rr := range real {
		a, _ := netip.AddrFromSlice(rr.(*dns.AAAA).AAAA)
		if !inAny(a, v.ExcludeV6) {
			kept = append(kept, rr)
		}
	}
	if len(kept) > 0 {
		return kept
	}
	for _, a := range addrs {
		if a.Is4() && !inAny(a, v.ExcludeV4) {
			kept = append(kept, &dns.AAAA{Hdr: h.hdr(owner, dns.TypeAAAA), AAAA: Synthesize(v.Prefix, a).AsSlice()})
		}
	}
	return kept
}

func (h *Handler) view(client netip.Addr) (View, bool) {
	for _, v := range h.views {
		if v.Clients.Contains(client) {
			return v, true
		}
	}
	return View{}, false
}

// hasBelow reports whether some name in the table lies under name; h.mu
// is held.
func (h *Handler) hasBelow(name string) bool {
	for n := range h.names {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}

func (h *Handler) hdr(owner string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: h.ttl}
}

// Server serves a Handler on one UDP socket and one TCP listener.
type Server struct {
	udp, tcp *dns.Server
	wg       sync.WaitGroup
	errs     [2]error
}

// Listen serves h over UDP and TCP at addr ("203.0.113.53:53"; port 0
// picks one, the same for both where it can).
func Listen(addr string, h *Handler) (*Server, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	tcpAddr := pc.LocalAddr().String()
	ln, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return Serve(pc, ln, h), nil
}

// Serve serves h on pc and ln until Close; it owns both from now on.
func Serve(pc net.PacketConn, ln net.Listener, h *Handler) *Server {
	s := &Server{
		udp: &dns.Server{PacketConn: pc, Handler: h},
		tcp: &dns.Server{Listener: ln, Handler: h},
	}
	started := make(chan struct{}, 2)
	for i, srv := range []*dns.Server{s.udp, s.tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				s.errs[i] = err
				started <- struct{}{}
			}
		}()
	}
	<-started
	<-started
	return s
}

// UDPAddr and TCPAddr are where the server listens.
func (s *Server) UDPAddr() net.Addr { return s.udp.PacketConn.LocalAddr() }
func (s *Server) TCPAddr() net.Addr { return s.tcp.Listener.Addr() }

// Close stops both listeners and waits for them.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	e1 := s.udp.ShutdownContext(ctx)
	e2 := s.tcp.ShutdownContext(ctx)
	s.wg.Wait()
	return errors.Join(e1, e2, s.errs[0], s.errs[1])
}
