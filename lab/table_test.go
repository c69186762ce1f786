package lab

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/web"
)

// fill makes n UDP mappings on e, from n ports of ctlHost, with the
// limit of mappings per host lifted (which drops e's mappings).
func fill(t *testing.T, e *nat.Engine, n int) {
	t.Helper()
	b, out := make([]byte, 1500), make([]byte, 1500)
	c := e.Config().Table
	c.LimitMappingsPerHost = 0
	if err := e.SetTableConfig(c); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		src := netip.AddrPortFrom(ctlHost.Addr(), uint16(10000+i))
		l := header.BuildUDP(b, header.IPv4Fields{Src: src.Addr(), Dst: ctlServer.Addr(), Protocol: header.ProtoUDP, TTL: 64, ID: 1},
			header.UDPFields{SrcPort: src.Port(), DstPort: ctlServer.Port()}, []byte("x"))
		if r := e.Process(1, b[:l], out, now); r.Verdict != nat.Forward {
			t.Fatalf("packet %d from %s: %v", i, src, r.Verdict)
		}
	}
}

// The table of many mappings comes through the control socket whole and
// in the engine's order, read a mapping at a time by Table; on the wire
// it is the one Response a whole table would be.
func TestTableStreamed(t *testing.T) {
	const n = 20000
	l, e, _ := controlLab(t)
	fill(t, e, n)
	want := observe.Mappings("home", e, time.Now())
	if len(want) != n {
		t.Fatalf("%d mappings made, want %d", len(want), n)
	}

	var got []observe.Mapping
	if err := Table(l.Name, "", func(m observe.Mapping) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("Table read %d mappings, want %d", len(got), n)
	}
	for i := range got {
		if g, w := got[i], want[i]; g.NAT != w.NAT || g.Proto != w.Proto || g.Internal != w.Internal || g.External != w.External || len(g.Remotes) != 1 || g.Remotes[0] != ctlServer.String() {
			t.Fatalf("mapping %d is %+v, want %+v", i, g, w)
		}
	}

	line := raw(t, l.Name, `{"op":"table","nat":"home"}`)
	var resp Response
	if err := json.Unmarshal([]byte(line), &resp); err != nil || !resp.OK || len(resp.Table) != n {
		t.Fatalf("raw answer: %d mappings, %v", len(resp.Table), err)
	}
	if whole, _ := json.Marshal(resp); string(whole)+"\n" != line {
		t.Errorf("the streamed answer differs from the encoding of the whole Response")
	}

	// An error of fn ends the read and is returned.
	stop := errors.New("stop")
	rows := 0
	if err := Table(l.Name, "home", func(observe.Mapping) error { rows++; return stop }); err != stop || rows != 1 {
		t.Errorf("fn stopping at the first row: %v after %d rows", err, rows)
	}
	if err := Table(l.Name, "work", func(observe.Mapping) error { return nil }); err == nil || err.Error() != `no NAT "work" in lab ctl (NATs: home)` {
		t.Errorf("table of a NAT not in the lab: %v", err)
	}

	// An empty table is the Response without one.
	e.Flush()
	if line := raw(t, l.Name, `{"op":"table"}`); line != `{"ok":true}`+"\n" {
		t.Errorf("empty table answered %q", line)
	}
	if err := Table(l.Name, "", func(m observe.Mapping) error { t.Errorf("row %+v of an empty table", m); return nil }); err != nil {
		t.Error(err)
	}
}

// The web view's snapshot carries a page of mappings and of each one's
// remotes, counting the rest.
func TestWebSnapshotCut(t *testing.T) {
	l, e, _ := controlLab(t)
	fill(t, e, 3) // three mappings of one session each (first: it resets the table)
	b, out := make([]byte, 1500), make([]byte, 1500)
	now := time.Now()
	for i := range 150 {
		dst := netip.AddrPortFrom(ctlServer.Addr(), uint16(1000+i))
		n := header.BuildUDP(b, header.IPv4Fields{Src: ctlHost.Addr(), Dst: dst.Addr(), Protocol: header.ProtoUDP, TTL: 64, ID: 1},
			header.UDPFields{SrcPort: ctlHost.Port(), DstPort: dst.Port()}, []byte("x"))
		if r := e.Process(1, b[:n], out, now); r.Verdict != nat.Forward {
			t.Fatalf("packet to %s: %v", dst, r.Verdict)
		}
	}
	for _, c := range []struct {
		page     web.Page
		mappings int
	}{
		{web.Page{Limit: 10, Remotes: 100}, 4},
		{web.Page{Limit: 10, Remotes: 150}, 4},
		{web.Page{Limit: 10}, 4},
		{web.Page{Offset: 1, Limit: 2, Remotes: 1}, 2},
		{web.Page{Offset: 3, Limit: 2, Remotes: 1000}, 1},
	} {
		snap := l.WebSource().Snapshot(c.page)
		v := snap.NATs[0]
		if v.MappingsTotal != 4 || len(v.Mappings) != c.mappings {
			t.Errorf("%+v: %d mappings of %d, want %d of 4", c.page, len(v.Mappings), v.MappingsTotal, c.mappings)
			continue
		}
		for _, m := range v.Mappings {
			sessions := 1
			if m.Internal == ctlHost.String() {
				sessions = 150
			}
			shown, total := min(sessions, c.page.Remotes), 0
			if shown < sessions {
				total = sessions
			}
			if len(m.Remotes) != shown || m.RemotesTotal != total {
				t.Errorf("%+v: mapping of %s: %d remotes, remotes_total %d; want %d, %d", c.page, m.Internal, len(m.Remotes), m.RemotesTotal, shown, total)
			}
		}
	}
}
