package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
)

// fuzzLab is a lab of one NAT "home" without devices, its engine holding
// one mapping; nothing listens on a socket: requests go to Lab.handle
// over a pipe.
func fuzzLab(t *testing.T) (*Lab, *nat.Engine) {
	t.Helper()
	c, err := table.Preset("full-cone")
	if err != nil {
		t.Fatal(err)
	}
	c.External = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	c.Seed = 7
	e, err := nat.New(nat.Config{Table: c, Inside: []nat.InsidePort{
		{Hosts: []netip.Prefix{netip.PrefixFrom(ctlHost.Addr(), 24)}, Gateway: netip.MustParseAddr("10.0.1.1")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{Name: "fuzz", Events: observe.NewHub(), nats: map[string]*NAT{"home": {Engine: e}}, natOrder: []string{"home"}}
	l.Events.Attach("home", e, nil)
	sendOut(t, e)
	return l, e
}

// FuzzControl sends one arbitrary request line to the control socket's
// decoder and dispatcher. Properties: it never panics or hangs; the answer
// is one JSON line that decodes as a Response with ok set exactly when
// there is no error; a request that decodes is answered as its op says
// (status and table of the NAT, an error naming the NATs for another
// name, an error listing the ops for an unknown one); a refused set
// leaves the NAT's behaviour as it was; only an accepted down stops the
// lab.
func FuzzControl(f *testing.F) {
	for _, s := range []string{
		`{"op":"status"}`,
		`{"op":"table"}`,
		`{"op":"table","nat":"home"}`,
		`{"op":"table","nat":"work"}`,
		`{"op":"set","nat":"home","preset":"symmetric"}`,
		`{"op":"set","nat":"home","settings":{"filtering":"address-dependent","hairpin":"true"}}`,
		`{"op":"set","nat":"home","settings":{"udp-timeout":"-1s"}}`,
		`{"op":"set","nat":"home","preset":"no-such-preset"}`,
		`{"op":"set","nat":"home","settings":{"no-such-setting":"1"}}`,
		`{"op":"flush","nat":"home"}`,
		`{"op":"flush"}`,
		`{"op":"watch"}`,
		`{"op":"watch","packets":true}`,
		`{"op":"down"}`,
		`{"op":"teleport"}`,
		`{"op":"rebind","nat":"home"}`,
		`{"op":"rebind","nat":"home","address":"198.51.100.9"}`,
		`{"op":"reboot","nat":"home","address":"::1"}`,
		`{"op":"reboot"}`,
		`{"op":"link","node":"alice","state":"down"}`,
		`{"op":1}`,
		`{"op":"status","settings":[]}`,
		`{"op":"status"}{"op":"down"}`,
		`not json`,
		``,
		"\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			// The server reads one line; the rest is never looked at.
			line = line[:i]
		}
		l, e := fuzzLab(t)
		before := e.Config().Table
		stopped := 0
		client, server := net.Pipe()
		defer client.Close()
		handled := make(chan struct{})
		go func() {
			defer close(handled)
			l.handle(server, func() { stopped++ })
		}()
		go client.Write(append(append([]byte(nil), line...), '\n'))
		client.SetDeadline(time.Now().Add(5 * time.Second))
		answer, err := bufio.NewReader(client).ReadBytes('\n')
		if err != nil {
			t.Fatalf("no answer line: %v (got %q)", err, answer)
		}
		client.Close() // ends a watch
		select {
		case <-handled:
		case <-time.After(5 * time.Second):
			t.Fatal("the handler did not return once the client left")
		}

		var resp Response
		dec := json.NewDecoder(bytes.NewReader(answer))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("answer %q does not decode: %v", answer, err)
		}
		if resp.OK == (resp.Error != "") {
			t.Fatalf("answer %q: ok must be set exactly when there is no error", answer)
		}
		if stopped > 1 || stopped == 1 && !resp.OK {
			t.Fatalf("stop called %d times, answer %q", stopped, answer)
		}

		var req Request
		if json.Unmarshal(line, &req) != nil {
			if !strings.HasPrefix(resp.Error, "bad request: ") {
				t.Fatalf("undecodable request %q answered %q", line, answer)
			}
			if stopped != 0 || !reflect.DeepEqual(e.Config().Table, before) {
				t.Fatal("an undecodable request changed the lab")
			}
			return
		}
		if (stopped == 1) != (req.Op == OpDown) {
			t.Fatalf("op %q: stop called %d times", req.Op, stopped)
		}
		wrongNAT := `no NAT "` // the start of the error for a NAT not in the lab
		switch req.Op {
		case OpStatus:
			if !resp.OK || resp.Status == nil || len(resp.Status.NATs) != 1 || resp.Status.NATs[0].Name != "home" {
				t.Fatalf("status answered %q", answer)
			}
		case OpTable:
			if req.NAT == "" || req.NAT == "home" {
				if !resp.OK || len(resp.Table) != 1 || resp.Table[0].Internal != ctlHost.String() {
					t.Fatalf("table of %q answered %q", req.NAT, answer)
				}
			} else if !strings.HasPrefix(resp.Error, wrongNAT) {
				t.Fatalf("table of %q answered %q", req.NAT, answer)
			}
		case OpSet, OpFlush:
			if req.NAT != "home" {
				if !strings.HasPrefix(resp.Error, wrongNAT) {
					t.Fatalf("%s of %q answered %q", req.Op, req.NAT, answer)
				}
			} else if req.Op == OpFlush && !resp.OK {
				t.Fatalf("flush answered %q", answer)
			}
			if !resp.OK && !reflect.DeepEqual(e.Config().Table, before) {
				t.Fatalf("refused %s changed the NAT: %+v, was %+v", req.Op, e.Config().Table, before)
			}
		case OpRebind, OpReboot:
			if req.NAT != "home" && !strings.HasPrefix(resp.Error, wrongNAT) {
				t.Fatalf("%s of %q answered %q", req.Op, req.NAT, answer)
			}
			if req.NAT == "home" && req.Address == "" && !resp.OK {
				t.Fatalf("%s answered %q", req.Op, answer)
			}
		case OpLink:
			if resp.OK {
				t.Fatalf("link in a lab without nodes answered %q", answer)
			}
		case OpWatch, OpDown:
			if !resp.OK {
				t.Fatalf("%s answered %q", req.Op, answer)
			}
		default:
			if !strings.HasPrefix(resp.Error, "unknown op ") {
				t.Fatalf("op %q answered %q", req.Op, answer)
			}
		}
	})
}
