package observe

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
)

// Every endpoint an event's text names is a field of its own, so a
// script never parses the text; the field names are the JSON contract of
// gonat table --watch --json.
func TestEventEndpointFields(t *testing.T) {
	var (
		internal = netip.MustParseAddrPort("10.0.0.2:5000")
		external = netip.MustParseAddrPort("198.51.100.1:40001")
		remote   = netip.MustParseAddrPort("203.0.113.2:4000")
		now      = time.Unix(1700000000, 0)
		inside   = nat.Port(1)
	)
	cases := []struct {
		name string
		ev   nat.Event
		want map[string]string
	}{
		{"inbound drop names the destination",
			nat.Event{Kind: nat.EventDrop, Verdict: nat.DropFiltered, In: nat.Outside, Proto: table.UDP, Src: remote, Dst: external},
			map[string]string{"kind": "DROP", "reason": "filtered", "direction": "inbound",
				"source": remote.String(), "destination": external.String(), "remote": remote.String(), "external": external.String()}},
		{"outbound drop: the remote is the destination",
			nat.Event{Kind: nat.EventDrop, Verdict: nat.DropHairpinOff, In: inside, Proto: table.UDP, Src: internal, Dst: external},
			map[string]string{"kind": "DROP", "reason": "hairpin-off", "direction": "outbound",
				"source": internal.String(), "destination": external.String(), "internal": internal.String(), "remote": external.String()}},
		{"drop of a packet without endpoints",
			nat.Event{Kind: nat.EventDrop, Verdict: nat.DropMalformed, In: nat.Outside},
			map[string]string{"kind": "DROP", "reason": "malformed", "direction": "inbound"}},
		{"outbound translation",
			nat.Event{Kind: nat.EventTranslated, In: inside, Out: nat.Outside, Proto: table.UDP, Src: internal, Dst: remote, NewSrc: external, NewDst: remote, Created: true},
			map[string]string{"kind": "XLATE", "direction": "outbound", "internal": internal.String(), "external": external.String(), "remote": remote.String(),
				"source": internal.String(), "destination": remote.String(), "translated_source": external.String(), "translated_destination": remote.String()}},
		{"inbound translation",
			nat.Event{Kind: nat.EventTranslated, In: nat.Outside, Out: inside, Proto: table.UDP, Src: remote, Dst: external, NewSrc: remote, NewDst: internal, Created: true},
			map[string]string{"kind": "XLATE", "direction": "inbound", "internal": internal.String(), "external": external.String(), "remote": remote.String(),
				"source": remote.String(), "destination": external.String(), "translated_source": remote.String(), "translated_destination": internal.String()}},
		{"new mapping",
			nat.Event{Kind: nat.EventCreated, Proto: table.UDP, Mapping: nat.MappingInfo{Proto: table.UDP, Internal: internal, External: external, Expires: now.Add(time.Minute)}},
			map[string]string{"kind": "NEW", "internal": internal.String(), "external": external.String()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := NewHub()
			ch, cancel := h.Subscribe(true)
			defer cancel()
			c.ev.Time = now
			h.publish("home", c.ev)
			var got Event
			select {
			case got = <-ch:
			default:
				t.Fatal("no event")
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]any
			json.Unmarshal(b, &fields)
			if fields["nat"] != "home" {
				t.Errorf("nat %v, want home", fields["nat"])
			}
			for k, v := range c.want {
				if fields[k] != v {
					t.Errorf("%s = %v, want %q\n%s", k, fields[k], v, b)
				}
			}
			// No endpoint field beyond those wanted, and each endpoint
			// field is in the text too.
			for _, k := range []string{"internal", "external", "remote", "source", "destination", "translated_source", "translated_destination"} {
				v, ok := fields[k].(string)
				if _, want := c.want[k]; ok != want {
					t.Errorf("field %s present %v, want %v\n%s", k, ok, want, b)
				}
				if ok && !strings.Contains(got.Text, v) {
					t.Errorf("field %s = %s is not in the text %q", k, v, got.Text)
				}
			}
		})
	}
}

// A packet on a mapping that had its REFRESH this second is only counted
// against the one-a-second limit: with a watcher on, that is every packet
// but one a second, so no text is made for it.
func TestSuppressedRefreshAllocatesNothing(t *testing.T) {
	h := NewHub()
	ev := nat.Event{Kind: nat.EventTranslated, In: nat.Port(1), Out: nat.Outside, Proto: table.UDP, Time: time.Unix(1700000000, 0),
		Src: netip.MustParseAddrPort("10.0.0.2:5000"), Dst: netip.MustParseAddrPort("203.0.113.2:4000"),
		NewSrc: netip.MustParseAddrPort("198.51.100.1:40001"), NewDst: netip.MustParseAddrPort("203.0.113.2:4000")}
	if out, _, ok := h.convert("home", ev); !ok || out.Kind != "REFRESH" {
		t.Fatalf("first packet on the mapping: %+v, emitted %v; want a REFRESH", out, ok)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, ok := h.convert("home", ev); ok {
			t.Fatal("a second REFRESH within the second")
		}
	})
	if allocs != 0 {
		t.Errorf("a suppressed REFRESH allocates %v times", allocs)
	}
}
