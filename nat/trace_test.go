package nat

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// traceLine renders the per-packet fields of a traced event, the ones
// Event.String leaves out (ports, verdict of a translation) included.
func traceLine(ev Event) string {
	return fmt.Sprintf("%s %s in=%d out=%d %s %s>%s => %s>%s created=%v hairpin=%v icmp-error=%v",
		ev.Kind, ev.Verdict, ev.In, ev.Out, ev.Proto, ev.Src, ev.Dst, ev.NewSrc, ev.NewDst, ev.Created, ev.Hairpin, ev.ICMPError)
}

// Every way a packet can be traced, with the fields each event carries:
// translations report the endpoints before and after, drops the
// endpoints the packet had when it was dropped.
func TestTraceEvents(t *testing.T) {
	var got []string
	trace := func(e *Engine) {
		e.SetObserver(func(ev Event) {
			if ev.Kind == EventTranslated || ev.Kind == EventDrop {
				got = append(got, traceLine(ev))
			}
		})
		e.SetTracing(true)
	}
	e := newEngine(t, "full-cone", func(c *table.Config) { c.Hairpin = true })
	trace(e)
	out := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "out")
	steps := []struct {
		in  Port
		pkt func() []byte
	}{
		{1, func() []byte { return out }}, // a new mapping
		{1, func() []byte { return udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "again") }},
		{Outside, func() []byte { return udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "in") }},
		// An error about the packet as it left, and one from A about the
		// packet it received.
		{Outside, func() []byte { return quote(t, out, rtr, header.ICMPTimeExceeded, 0) }},
		{1, func() []byte {
			return quote(t, udpPkt(ap(srv1, 3478), ap(hostA, 5000), 63, "in"), hostA, header.ICMPDestUnreachable, header.ICMPCodePortUnreachable)
		}},
		{2, func() []byte { return udpPkt(ap(hostB, 6000), ap(srv1, 3478), 64, "b") }},
		{1, func() []byte { return udpPkt(ap(hostA, 5001), ap(ext, 6000), 64, "hairpin") }},
		// Hairpinned to no mapping: dropped with its new source.
		{1, func() []byte { return udpPkt(ap(hostA, 5002), ap(ext, 7777), 64, "hairpin, nobody") }},
		{1, func() []byte { return udpPkt(ap(hostA, 5000), ap(srv1, 3478), 1, "ttl") }},
		{Outside, func() []byte { return udpPkt(ap(srv2, 1), ap(ext, 5001), 64, "full cone") }},
		{Outside, func() []byte { return udpPkt(ap(srv2, 1), ap(ext, 9999), 64, "no mapping") }},
		{1, func() []byte { return []byte{0x45, 0, 0} }},
	}
	for _, s := range steps {
		process(t, e, s.in, s.pkt(), t0)
	}
	// One external port: the second source finds none left.
	full := newEngine(t, "full-cone", func(c *table.Config) { c.PortLo, c.PortHi = 20000, 20000 })
	trace(full)
	process(t, full, 1, udpPkt(ap(hostA, 5000), ap(srv1, 1), 64, "last port"), t0)
	process(t, full, 1, udpPkt(ap(hostA, 5001), ap(srv1, 1), 64, "no port left"), t0)
	want := []string{
		"XLATE forward in=1 out=0 udp 10.0.0.2:5000>203.0.113.1:3478 => 198.51.100.1:5000>203.0.113.1:3478 created=true hairpin=false icmp-error=false",
		"XLATE forward in=1 out=0 udp 10.0.0.2:5000>203.0.113.1:3478 => 198.51.100.1:5000>203.0.113.1:3478 created=false hairpin=false icmp-error=false",
		"XLATE forward in=0 out=1 udp 203.0.113.1:3478>198.51.100.1:5000 => 203.0.113.1:3478>10.0.0.2:5000 created=false hairpin=false icmp-error=false",
		"XLATE forward in=0 out=1 icmp 203.0.113.254:0>198.51.100.1:0 => 203.0.113.254:0>10.0.0.2:0 created=false hairpin=false icmp-error=true",
		"XLATE forward in=1 out=0 icmp 10.0.0.2:0>203.0.113.1:0 => 198.51.100.1:0>203.0.113.1:0 created=false hairpin=false icmp-error=true",
		"XLATE forward in=2 out=0 udp 10.0.0.3:6000>203.0.113.1:3478 => 198.51.100.1:6000>203.0.113.1:3478 created=true hairpin=false icmp-error=false",
		"XLATE forward in=1 out=2 udp 10.0.0.2:5001>198.51.100.1:6000 => 198.51.100.1:5001>10.0.0.3:6000 created=true hairpin=true icmp-error=false",
		"DROP no-mapping in=1 out=0 udp 198.51.100.1:5002>198.51.100.1:7777 => invalid AddrPort>invalid AddrPort created=false hairpin=false icmp-error=false",
		"DROP ttl-exceeded in=1 out=0 udp 10.0.0.2:5000>203.0.113.1:3478 => invalid AddrPort>invalid AddrPort created=false hairpin=false icmp-error=false",
		"XLATE forward in=0 out=1 udp 203.0.113.2:1>198.51.100.1:5001 => 203.0.113.2:1>10.0.0.2:5001 created=false hairpin=false icmp-error=false",
		"DROP no-mapping in=0 out=0 udp 203.0.113.2:1>198.51.100.1:9999 => invalid AddrPort>invalid AddrPort created=false hairpin=false icmp-error=false",
		"DROP malformed in=1 out=0 proto(0) invalid AddrPort>invalid AddrPort => invalid AddrPort>invalid AddrPort created=false hairpin=false icmp-error=false",
		"XLATE forward in=1 out=0 udp 10.0.0.2:5000>203.0.113.1:1 => 198.51.100.1:20000>203.0.113.1:1 created=true hairpin=false icmp-error=false",
		"DROP pool-exhausted in=1 out=0 udp 10.0.0.2:5001>203.0.113.1:1 => invalid AddrPort>invalid AddrPort created=false hairpin=false icmp-error=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
