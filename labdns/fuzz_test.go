package labdns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds any message that unpacks to the handler, from a client
// inside a DNS64 view and from one outside, and checks the reply's
// invariants: it packs, answers the same ID as a response, never offers
// recursion, and every AAAA it synthesizes lies in the view's prefix.
func FuzzAnswer(f *testing.F) {
	for _, q := range []*dns.Msg{
		query("server.lab1.test.", dns.TypeAAAA), // synthesized
		query("dual.lab1.test.", dns.TypeANY),    // both families
		query("nobody.lab1.test.", dns.TypeA),    // NXDOMAIN
		query("example.com.", dns.TypeA),         // REFUSED
		new(dns.Msg).SetQuestion("lab1.test.", dns.TypeSOA).SetEdns0(4096, true),
	} {
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	h := newHandler(f, View{Clients: netip.MustParsePrefix("fd00::/8"), Prefix: nsp})
	inView := netip.MustParseAddr("fd00::2")
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(dns.Msg)
		if r.Unpack(b) != nil {
			return
		}
		for _, client := range []netip.Addr{inView, v4Client} {
			m := h.Answer(r, client)
			if !m.Response || m.Id != r.Id || m.RecursionAvailable {
				t.Fatalf("reply header: %v", m.MsgHdr)
			}
			if _, err := m.Pack(); err != nil {
				t.Fatalf("reply does not pack: %v\n%v", err, m)
			}
			for _, a := range addrsOf(m.Answer) {
				if a.Is6() && client == inView && !nsp.Contains(a) && a != netip.MustParseAddr("2001:db8::11") && a != netip.MustParseAddr("2001:db8::12") {
					t.Fatalf("AAAA %s neither in the table nor in %s", a, nsp)
				}
			}
		}
	})
}
