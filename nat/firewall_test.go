package nat

import (
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

func withFirewall(t *testing.T, text string) func(*table.Config) {
	f, err := table.ParseFirewall(text)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *table.Config) { c.Firewall = f }
}

// block-udp: UDP leaves no more and makes no mapping; TCP and ICMP pass.
func TestFirewallBlockUDP(t *testing.T) {
	e := newEngine(t, "full-cone", withFirewall(t, "block-udp"))
	if r, _ := process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "stun"), t0); r.Verdict != DropFirewall {
		t.Fatalf("UDP out: %v, want firewall", r.Verdict)
	}
	n := 0
	e.Mappings(t0, func(MappingInfo) { n++ })
	if n != 0 {
		t.Fatalf("a refused packet made %d mappings", n)
	}
	if r, _ := process(t, e, 1, tcpPkt(ap(hostA, 5001), ap(srv1, 443), header.TCPSyn), t0); r.Verdict != Forward {
		t.Fatalf("TCP out: %v", r.Verdict)
	}
	if r, _ := process(t, e, 1, echoPkt(hostA, srv1, header.ICMPEchoRequest, 7), t0); r.Verdict != Forward {
		t.Fatalf("ping out: %v", r.Verdict)
	}
	// Hairpinned packets never crosses the boundary.
	if r, _ := process(t, e, 2, udpPkt(ap(hostB, 6000), ap(ext, 5001), 64, "x"), t0); r.Verdict == DropFirewall {
		t.Fatalf("hairpinned packet refused by the firewall")
	}
	if got := e.Count(DropFirewall); got != 1 {
		t.Fatalf("firewall drops %d, want 1", got)
	}
}

// Inbound: refused after the mapping lookup, so an unsolicited packet is
// still no-mapping; the rule's port is the remote's.
func TestFirewallInbound(t *testing.T) {
	e := newEngine(t, "full-cone", withFirewall(t, "deny udp 53 in; deny icmp in"))
	process(t, e, 1, udpPkt(ap(hostA, 5000), ap(srv1, 53), 64, "q"), t0)
	process(t, e, 1, udpPkt(ap(hostA, 5002), ap(srv1, 54), 64, "q"), t0)
	process(t, e, 1, echoPkt(hostA, srv1, header.ICMPEchoRequest, 7), t0)
	steps := []struct {
		name string
		b    []byte
		want Verdict
	}{
		{"reply from port 53", udpPkt(ap(srv1, 53), ap(ext, 5000), 64, "a"), DropFirewall},
		{"reply from port 54", udpPkt(ap(srv1, 54), ap(ext, 5002), 64, "a"), Forward},
		{"unsolicited from port 53", udpPkt(ap(srv1, 53), ap(ext, 9999), 64, "a"), DropNoMapping},
		{"echo reply", echoPkt(srv1, ext, header.ICMPEchoReply, 7), DropFirewall},
	}
	for _, s := range steps {
		if r, _ := process(t, e, Outside, s.b, t0); r.Verdict != s.want {
			t.Errorf("%s: %v, want %v", s.name, r.Verdict, s.want)
		}
	}
}

// The firewall changes with the rest of the behaviour at run time.
func TestFirewallSetAtRunTime(t *testing.T) {
	e := newEngine(t, "full-cone")
	c := e.Config().Table
	withFirewall(t, "web-only")(&c)
	if err := e.SetTableConfig(c); err != nil {
		t.Fatal(err)
	}
	if r, _ := process(t, e, 1, tcpPkt(ap(hostA, 5000), ap(srv1, 22), header.TCPSyn), t0); r.Verdict != DropFirewall {
		t.Fatalf("TCP 22 under web-only: %v", r.Verdict)
	}
	if r, _ := process(t, e, 1, tcpPkt(ap(hostA, 5000), ap(srv1, 443), header.TCPSyn), t0); r.Verdict != Forward {
		t.Fatalf("TCP 443 under web-only: %v", r.Verdict)
	}
	withFirewall(t, "none")(&c)
	if err := e.SetTableConfig(c); err != nil {
		t.Fatal(err)
	}
	if r, _ := process(t, e, 1, tcpPkt(ap(hostA, 5000), ap(srv1, 22), header.TCPSyn), t0); r.Verdict != Forward {
		t.Fatalf("TCP 22 with firewall none: %v", r.Verdict)
	}
}
