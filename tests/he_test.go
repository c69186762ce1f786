package tests

import (
	"encoding/json"
	"testing"

	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/ns"
)

// gonat he from a host behind a NAT, by the server's bare name through the
// lab DNS server, in an IPv4-only lab: the AAAA answer is empty and the
// one IPv4 attempt wins. TestHappyEyeballsDualStack has the IPv6 outcomes.
func TestHappyEyeballsInLab(t *testing.T) {
	l := labtest.Up(t, labtest.Parse(t, dnsTopo), labOpts())
	ln, err := ns.Listen(l.Node("server").Namespace, "tcp4", "203.0.113.10:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	out, err := l.Node("alice").Command("gonat", "he", "--json", "server", "8080").Output()
	if err != nil {
		t.Fatalf("gonat he: %v\n%s", err, out)
	}
	var r struct {
		Events []struct {
			Event, Family string
			Addrs         []string
		}
		Winner *struct {
			Addr, Family string
			Attempt      int
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Winner == nil || r.Winner.Addr != "203.0.113.10:8080" || r.Winner.Family != "IPv4" || r.Winner.Attempt != 1 {
		t.Fatalf("winner %+v, want 203.0.113.10:8080 by attempt 1\n%s", r.Winner, out)
	}
	answers := 0
	for _, e := range r.Events {
		if e.Event == "answer" {
			answers++
			if e.Family == "IPv6" && len(e.Addrs) != 0 {
				t.Errorf("AAAA answer %v from an IPv4-only lab", e.Addrs)
			}
		}
	}
	if answers != 2 {
		t.Errorf("%d answers, want AAAA and A\n%s", answers, out)
	}
	// Nothing listens on 8081: the refused attempt is exit status 1.
	err = l.Node("alice").Command("gonat", "he", "server", "8081").Run()
	if code := exitCode(err); code != 1 {
		t.Errorf("gonat he to a closed port: exit %d, want 1", code)
	}
}
