package labdns

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var (
	v4Client  = netip.MustParseAddr("127.0.0.1") // plain view over loopback
	nsp       = netip.MustParsePrefix("2001:db8:64::/96")
	testTable = map[string][]netip.Addr{
		"server": {netip.MustParseAddr("203.0.113.10")},
		"dual":   {netip.MustParseAddr("203.0.113.11"), netip.MustParseAddr("2001:db8::11")},
		"v6only": {netip.MustParseAddr("2001:db8::12")},
		"mapped": {netip.MustParseAddr("203.0.113.13"), netip.MustParseAddr("::ffff:203.0.113.13")},
		"inside": {netip.MustParseAddr("10.0.1.2")},
		"a.b":    {netip.MustParseAddr("203.0.113.14")}, // "b" is an empty non-terminal
		"@":      {netip.MustParseAddr("203.0.113.53")},
	}
)

func newHandler(t testing.TB, views ...View) *Handler {
	t.Helper()
	h, err := NewHandler(Config{Zone: "lab1.test", Records: testTable, Views: views})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// addrsOf lists the addresses of the A and AAAA records in rrs.
func addrsOf(rrs []dns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(r.A)
			out = append(out, a.Unmap())
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(r.AAAA)
			out = append(out, a)
		}
	}
	return out
}

type want struct {
	rcode int
	addrs []string
	soa   bool // SOA in the authority section (negative answers)
}

func check(t *testing.T, m *dns.Msg, w want) {
	t.Helper()
	if m.Rcode != w.rcode {
		t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[m.Rcode], dns.RcodeToString[w.rcode], m)
	}
	got := addrsOf(m.Answer)
	if len(got) != len(w.addrs) {
		t.Fatalf("answer %v, want %v", got, w.addrs)
	}
	for i, a := range w.addrs {
		if got[i] != netip.MustParseAddr(a) {
			t.Fatalf("answer %v, want %v", got, w.addrs)
		}
	}
	hasSOA := len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA
	if hasSOA != w.soa {
		t.Fatalf("authority %v, want SOA: %v", m.Ns, w.soa)
	}
	if m.RecursionAvailable {
		t.Fatal("RA set: the server does not recurse")
	}
}

func query(name string, t uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	return m
}

func TestAnswers(t *testing.T) {
	h := newHandler(t)
	for _, c := range []struct {
		what string
		name string
		t    uint16
		want want
	}{
		{"A of a host", "server.lab1.test.", dns.TypeA, want{dns.RcodeSuccess, []string{"203.0.113.10"}, false}},
		{"names are case-insensitive", "SeRvEr.LAB1.test.", dns.TypeA, want{dns.RcodeSuccess, []string{"203.0.113.10"}, false}},
		{"AAAA of a dual-stack host", "dual.lab1.test.", dns.TypeAAAA, want{dns.RcodeSuccess, []string{"2001:db8::11"}, false}},
		{"ANY gives both families", "dual.lab1.test.", dns.TypeANY, want{dns.RcodeSuccess, []string{"203.0.113.11", "2001:db8::11"}, false}},
		{"NODATA: AAAA of a v4-only host", "server.lab1.test.", dns.TypeAAAA, want{dns.RcodeSuccess, nil, true}},
		{"NODATA: A of a v6-only host", "v6only.lab1.test.", dns.TypeA, want{dns.RcodeSuccess, nil, true}},
		{"NODATA: MX of a host", "server.lab1.test.", dns.TypeMX, want{dns.RcodeSuccess, nil, true}},
		{"NODATA: empty non-terminal", "b.lab1.test.", dns.TypeA, want{dns.RcodeSuccess, nil, true}},
		{"NXDOMAIN: unknown name", "nobody.lab1.test.", dns.TypeA, want{dns.RcodeNameError, nil, true}},
		{"NXDOMAIN: below a host", "x.server.lab1.test.", dns.TypeA, want{dns.RcodeNameError, nil, true}},
		{"apex A", "lab1.test.", dns.TypeA, want{dns.RcodeSuccess, []string{"203.0.113.53"}, false}},
		{"REFUSED: outside the zone", "example.com.", dns.TypeA, want{dns.RcodeRefused, nil, false}},
		{"REFUSED: a zone that only ends alike", "xlab1.test.", dns.TypeA, want{dns.RcodeRefused, nil, false}},
		{"NXDOMAIN: a single-label name (search list fall-through)", "server.", dns.TypeAAAA, want{dns.RcodeNameError, nil, false}},
		{"REFUSED: reverse lookups", "10.113.0.203.in-addr.arpa.", dns.TypePTR, want{dns.RcodeRefused, nil, false}},
	} {
		t.Run(c.what, func(t *testing.T) {
			m := h.Answer(query(c.name, c.t), v4Client)
			check(t, m, c.want)
			if inZone := c.want.rcode != dns.RcodeRefused && dns.CountLabel(c.name) > 1; m.Authoritative != inZone {
				t.Errorf("AA %v, want %v", m.Authoritative, inZone)
			}
		})
	}
	t.Run("apex SOA and NS", func(t *testing.T) {
		m := h.Answer(query("lab1.test.", dns.TypeSOA), v4Client)
		if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("SOA query: %v", m)
		}
		m = h.Answer(query("lab1.test.", dns.TypeNS), v4Client)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.NS).Ns != "ns.lab1.test." {
			t.Fatalf("NS query: %v", m)
		}
	})
	t.Run("malformed queries", func(t *testing.T) {
		m := query("server.lab1.test.", dns.TypeA)
		m.Question = append(m.Question, m.Question[0])
		check(t, h.Answer(m, v4Client), want{rcode: dns.RcodeFormatError})
		m = query("server.lab1.test.", dns.TypeA)
		m.Opcode = dns.OpcodeUpdate
		check(t, h.Answer(m, v4Client), want{rcode: dns.RcodeNotImplemented})
		m = query("server.lab1.test.", dns.TypeA)
		m.Question[0].Qclass = dns.ClassCHAOS
		check(t, h.Answer(m, v4Client), want{rcode: dns.RcodeRefused})
	})
}

// SetAddrs replaces a name's addresses for the queries after it; a name
// outside the zone or an invalid address is refused.
func TestSetAddrs(t *testing.T) {
	h := newHandler(t)
	if err := h.SetAddrs("inside", []netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("10.0.2.3")}); err != nil {
		t.Fatal(err)
	}
	check(t, h.Answer(query("inside.lab1.test.", dns.TypeA), v4Client), want{dns.RcodeSuccess, []string{"10.0.2.3"}, false})
	check(t, h.Answer(query("server.lab1.test.", dns.TypeA), v4Client), want{dns.RcodeSuccess, []string{"203.0.113.10"}, false})
	if err := h.SetAddrs("x.other.test.", nil); err == nil {
		t.Error("a name outside the zone was taken")
	}
	if err := h.SetAddrs("inside", []netip.Addr{{}}); err == nil {
		t.Error("an invalid address was taken")
	}
}

func TestDNS64(t *testing.T) {
	inside6 := netip.MustParsePrefix("fd00:1::/64")
	client := netip.MustParseAddr("fd00:1::2")
	outsider := netip.MustParseAddr("fd00:2::2")
	wkp := newHandler(t, View{Clients: inside6, Prefix: WellKnownPrefix})
	nsh := newHandler(t, View{Clients: inside6, Prefix: nsp})
	for _, c := range []struct {
		what   string
		h      *Handler
		name   string
		client netip.Addr
		want   want
	}{
		{"well-known prefix from A", wkp, "server.lab1.test.", client, want{dns.RcodeSuccess, []string{"64:ff9b::cb00:710a"}, false}},
		{"network-specific prefix from A", nsh, "server.lab1.test.", client, want{dns.RcodeSuccess, []string{"2001:db8:64::cb00:710a"}, false}},
		{"a real AAAA wins over synthesis", wkp, "dual.lab1.test.", client, want{dns.RcodeSuccess, []string{"2001:db8::11"}, false}},
		{"AAAA in the exclusion set counts as none", wkp, "mapped.lab1.test.", client, want{dns.RcodeSuccess, []string{"64:ff9b::cb00:710d"}, false}},
		{"no synthesis outside the view", wkp, "server.lab1.test.", outsider, want{dns.RcodeSuccess, nil, true}},
		{"no synthesis for IPv4 clients", wkp, "server.lab1.test.", v4Client, want{dns.RcodeSuccess, nil, true}},
		{"well-known prefix never embeds private IPv4", wkp, "inside.lab1.test.", client, want{dns.RcodeSuccess, nil, true}},
		{"network-specific prefix embeds private IPv4", nsh, "inside.lab1.test.", client, want{dns.RcodeSuccess, []string{"2001:db8:64::a00:102"}, false}},
		{"NXDOMAIN stays NXDOMAIN", wkp, "nobody.lab1.test.", client, want{dns.RcodeNameError, nil, true}},
	} {
		t.Run(c.what, func(t *testing.T) {
			check(t, c.h.Answer(query(c.name, dns.TypeAAAA), c.client), c.want)
		})
	}
	t.Run("A queries are untouched", func(t *testing.T) {
		check(t, wkp.Answer(query("server.lab1.test.", dns.TypeA), client), want{dns.RcodeSuccess, []string{"203.0.113.10"}, false})
	})
}

// TestSynthesize checks RFC 6052 §2.4's table of 192.0.2.33 under each
// prefix length.
func TestSynthesize(t *testing.T) {
	a4 := netip.MustParseAddr("192.0.2.33")
	for _, c := range []struct{ prefix, want string }{
		{"2001:db8::/32", "2001:db8:c000:221::"},
		{"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
		{"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
		{"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
		{"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
		{"2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"},
		{"64:ff9b::/96", "64:ff9b::192.0.2.33"},
	} {
		p := netip.MustParsePrefix(c.prefix)
		got := Synthesize(p, a4)
		if got != netip.MustParseAddr(c.want) {
			t.Errorf("Synthesize(%s) = %s, want %s", p, got, c.want)
		}
		if back := Extract(p, got); back != a4 {
			t.Errorf("Extract(%s, %s) = %s", p, got, back)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		what string
		cfg  Config
	}{
		{"no zone", Config{}},
		{"name outside the zone", Config{Zone: "lab1.test", Records: map[string][]netip.Addr{"x.example.": {v4Client}}}},
		{"invalid address", Config{Zone: "lab1.test", Records: map[string][]netip.Addr{"x": {{}}}}},
		{"prefix length", Config{Zone: "lab1.test", Views: []View{{Clients: netip.MustParsePrefix("fd00::/8"), Prefix: netip.MustParsePrefix("64:ff9b::/80")}}}},
		{"u octet", Config{Zone: "lab1.test", Views: []View{{Clients: netip.MustParsePrefix("fd00::/8"), Prefix: netip.MustParsePrefix("2001:db8:0:0:100::/80")}}}},
		{"IPv4 prefix", Config{Zone: "lab1.test", Views: []View{{Clients: netip.MustParsePrefix("fd00::/8"), Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}},
	} {
		if _, err := NewHandler(c.cfg); err == nil {
			t.Errorf("%s: no error", c.what)
		}
	}
}

// TestServer asks a server on loopback sockets with miekg/dns's client,
// over UDP and TCP, with truncation over UDP for a big answer.
func TestServer(t *testing.T) {
	big := map[string][]netip.Addr{"server": {netip.MustParseAddr("203.0.113.10")}}
	for i := range 60 {
		big["many"] = append(big["many"], netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}))
	}
	h, err := NewHandler(Config{Zone: "lab1.test", Records: big,
		Views: []View{{Clients: netip.MustParsePrefix("::1/128"), Prefix: WellKnownPrefix}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		s, err := Listen(host+":0", h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(host+"/"+proto, func(t *testing.T) {
				c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
				addr := s.UDPAddr().String()
				if proto == "tcp" {
					addr = s.TCPAddr().String()
				}
				r, _, err := c.Exchange(query("server.lab1.test.", dns.TypeA), addr)
				if err != nil {
					t.Fatal(err)
				}
				check(t, r, want{dns.RcodeSuccess, []string{"203.0.113.10"}, false})
				r, _, err = c.Exchange(query("server.lab1.test.", dns.TypeAAAA), addr)
				if err != nil {
					t.Fatal(err)
				}
				if host == "[::1]" {
					check(t, r, want{dns.RcodeSuccess, []string{"64:ff9b::cb00:710a"}, false})
				} else {
					check(t, r, want{dns.RcodeSuccess, nil, true})
				}
				r, _, err = c.Exchange(query("example.com.", dns.TypeA), addr)
				if err != nil {
					t.Fatal(err)
				}
				check(t, r, want{rcode: dns.RcodeRefused})
				// 60 A records are more than 512 bytes: UDP truncates,
				// TCP gives them all.
				r, _, err = c.Exchange(query("many.lab1.test.", dns.TypeA), addr)
				if err != nil {
					t.Fatal(err)
				}
				if proto == "udp" && (!r.Truncated || len(r.Answer) == 60) {
					t.Errorf("UDP: TC=%v with %d answers, want truncated", r.Truncated, len(r.Answer))
				}
				if proto == "tcp" && (r.Truncated || len(r.Answer) != 60) {
					t.Errorf("TCP: TC=%v with %d answers, want all 60", r.Truncated, len(r.Answer))
				}
			})
		}
	}
}
