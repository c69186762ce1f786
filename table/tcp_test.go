package table

import (
	"net/netip"
	"testing"
	"time"
)

const (
	syn    = FlagSYN
	synAck = FlagSYN | FlagACK
	ack    = FlagACK
	finAck = FlagFIN | FlagACK
	rst    = FlagRST
)

// tcpPacket is one step of a TCP exchange through the table.
type tcpPacket struct {
	out       bool
	flags     uint8
	at        time.Duration // since t0
	wantState string        // state of the session after the packet
	wantLife  time.Duration // mapping Expires - packet time, if non-zero
	verdict   Verdict       // inbound
}

func TestTCPSessions(t *testing.T) {
	const est, tr = 7440 * time.Second, 240 * time.Second
	a, r := ep(hostA, 40000), ep(srvA1, 443)
	tests := []struct {
		name    string
		mod     func(c *Config)
		packets []tcpPacket
		gone    time.Duration // inbound ACK after this is DropNoMapping; just before is Accept
	}{
		{name: "normal open and close from inside", packets: []tcpPacket{
			{out: true, flags: syn, wantState: "SYN_SENT", wantLife: tr},
			{flags: synAck, at: time.Second, wantState: "ESTABLISHED", wantLife: est},
			{out: true, flags: ack, at: time.Second, wantState: "ESTABLISHED", wantLife: est},
			{out: true, flags: ack | FlagPSH, at: 10 * time.Second, wantState: "ESTABLISHED", wantLife: est},
			{flags: ack, at: 11 * time.Second, wantState: "ESTABLISHED", wantLife: est},
			{out: true, flags: finAck, at: 100 * time.Second, wantState: "FIN_WAIT", wantLife: tr},
			{flags: ack, at: 101 * time.Second, wantState: "FIN_WAIT", wantLife: tr},
			{flags: finAck, at: 102 * time.Second, wantState: "TIME_WAIT", wantLife: tr},
			{out: true, flags: ack, at: 103 * time.Second, wantState: "TIME_WAIT", wantLife: tr},
		}, gone: 103*time.Second + tr},
		{name: "remote closes first", packets: []tcpPacket{
			{out: true, flags: syn, wantState: "SYN_SENT"},
			{flags: synAck, wantState: "ESTABLISHED"},
			{out: true, flags: ack, wantState: "ESTABLISHED"},
			{flags: finAck, at: 50 * time.Second, wantState: "CLOSE_WAIT", wantLife: tr},
			{out: true, flags: ack, at: 50 * time.Second, wantState: "CLOSE_WAIT"},
			{out: true, flags: finAck, at: 60 * time.Second, wantState: "TIME_WAIT"},
			{flags: ack, at: 61 * time.Second, wantState: "TIME_WAIT", wantLife: tr},
		}, gone: 61*time.Second + tr},
		{name: "simultaneous open", packets: []tcpPacket{
			{out: true, flags: syn, wantState: "SYN_SENT", wantLife: tr},
			{flags: syn, at: time.Second, wantState: "ESTABLISHED", wantLife: est},
			{out: true, flags: synAck, at: time.Second, wantState: "ESTABLISHED"},
			{flags: synAck, at: time.Second, wantState: "ESTABLISHED"},
			{out: true, flags: ack, at: 2 * time.Second, wantState: "ESTABLISHED", wantLife: est},
		}, gone: 2*time.Second + est},
		{name: "simultaneous open, SYN-ACKs crossing first", packets: []tcpPacket{
			{out: true, flags: syn, wantState: "SYN_SENT"},
			{flags: synAck, wantState: "ESTABLISHED"},
			{out: true, flags: synAck, wantState: "ESTABLISHED"},
		}, gone: est},
		{name: "RST from outside ends in the transitory time", packets: []tcpPacket{
			{out: true, flags: syn},
			{flags: synAck},
			{out: true, flags: ack, at: time.Second, wantState: "ESTABLISHED", wantLife: est},
			{flags: rst, at: 30 * time.Second, wantState: "CLOSED", wantLife: tr},
		}, gone: 30*time.Second + tr},
		{name: "RST from inside", packets: []tcpPacket{
			{out: true, flags: syn},
			{flags: synAck},
			{out: true, flags: rst | ack, at: 5 * time.Second, wantState: "CLOSED", wantLife: tr},
			{flags: ack, at: 6 * time.Second, wantState: "CLOSED", wantLife: tr},
		}, gone: 6*time.Second + tr},
		{name: "refused connection", packets: []tcpPacket{
			{out: true, flags: syn, wantState: "SYN_SENT"},
			{flags: rst | ack, at: time.Second, wantState: "CLOSED", wantLife: tr},
		}, gone: time.Second + tr},
		{name: "SYN_SENT lives the transitory time", packets: []tcpPacket{
			{out: true, flags: syn, wantState: "SYN_SENT", wantLife: tr},
			{out: true, flags: syn, at: 3 * time.Second, wantState: "SYN_SENT", wantLife: tr},
		}, gone: 3*time.Second + tr},
		{name: "new connection on the same 4-tuple after TIME_WAIT", packets: []tcpPacket{
			{out: true, flags: syn},
			{flags: synAck},
			{out: true, flags: finAck, at: time.Second},
			{flags: finAck, at: time.Second, wantState: "TIME_WAIT"},
			{out: true, flags: syn, at: 10 * time.Second, wantState: "SYN_SENT"},
			{flags: synAck, at: 11 * time.Second, wantState: "ESTABLISHED", wantLife: est},
		}, gone: 11*time.Second + est},
		{name: "mid-stream pickup", packets: []tcpPacket{
			{out: true, flags: ack, wantState: "SYN_SENT", wantLife: tr},
			{flags: ack, at: time.Second, wantState: "ESTABLISHED", wantLife: est},
		}, gone: time.Second + est},
		{name: "inbound packets refresh an established session", packets: []tcpPacket{
			{out: true, flags: syn},
			{flags: synAck},
			{out: true, flags: ack},
			{flags: ack, at: 7000 * time.Second, wantState: "ESTABLISHED", wantLife: est},
		}, gone: 7000*time.Second + est},
		{name: "linux timeouts", mod: func(c *Config) {
			*c, _ = Preset("linux")
		}, packets: []tcpPacket{
			{out: true, flags: syn, wantState: "SYN_SENT", wantLife: 120 * time.Second},
			{flags: synAck, wantState: "ESTABLISHED", wantLife: 5 * 24 * time.Hour},
		}, gone: 5 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTable(t, func(c *Config) {
				if tt.mod != nil {
					tt.mod(c)
					c.External = []netip.Addr{ext1}
				}
			})
			var m *Mapping
			for i, p := range tt.packets {
				now := t0.Add(p.at)
				if p.out {
					m = out(t, tab, TCP, a, r, p.flags, now)
				} else {
					got, v := tab.Inbound(TCP, m.External(), r, p.flags, now)
					if v != p.verdict {
						t.Fatalf("packet %d (in %#x): %s, want %s", i, p.flags, v, p.verdict)
					}
					if v == Accept && got != m {
						t.Fatalf("packet %d: wrong mapping", i)
					}
				}
				if p.wantState != "" {
					if st := sessionStates(m)[r]; st != p.wantState {
						t.Errorf("packet %d (out %v %#x): state %s, want %s", i, p.out, p.flags, st, p.wantState)
					}
				}
				if p.wantLife != 0 {
					if life := m.Expires().Sub(now); life != p.wantLife {
						t.Errorf("packet %d: mapping lives %v, want %v", i, life, p.wantLife)
					}
				}
			}
			// Peek does not refresh, so it can probe both sides of the end.
			if _, v := tab.PeekInbound(TCP, m.External(), r, t0.Add(tt.gone-time.Second)); v != Accept {
				t.Errorf("1s before the end: %s", v)
			}
			if _, v := tab.PeekInbound(TCP, m.External(), r, t0.Add(tt.gone)); v != DropNoMapping {
				t.Errorf("at the end: %s", v)
			}
			if n := tab.Expire(t0.Add(tt.gone-time.Second), nil); n != 0 {
				t.Errorf("Expire before the end removed %d", n)
			}
			if n := tab.Expire(t0.Add(tt.gone), nil); n != 1 {
				t.Errorf("Expire at the end removed %d", n)
			}
		})
	}
}

func TestTCPFiltering(t *testing.T) {
	a, r1, r2 := ep(hostA, 40000), ep(srvA1, 443), ep(srvA2, 443)

	t.Run("unsolicited SYN with no mapping dropped silently", func(t *testing.T) {
		// RFC 5382 REQ-4.
		tab := newTable(t, nil)
		in(t, tab, TCP, ep(ext1, 40000), r1, syn, t0, DropUnsolicitedSYN)
		in(t, tab, TCP, ep(ext1, 40000), r1, synAck, t0, DropNoMapping)
		in(t, tab, TCP, ep(ext1, 40000), r1, ack, t0, DropNoMapping)
		if tab.Len() != 0 {
			t.Errorf("Len %d", tab.Len())
		}
	})
	t.Run("a UDP mapping on :5000 never admits a TCP SYN", func(t *testing.T) {
		// docs/nat-requirements.md item 18: per-protocol state, even for a full cone.
		tab := newTable(t, func(c *Config) { c.Filtering = EndpointIndependent })
		m := out(t, tab, UDP, ep(hostA, 5000), r1, 0, t0)
		if m.External() != ep(ext1, 5000) {
			t.Fatalf("external %v", m.External())
		}
		in(t, tab, TCP, m.External(), r1, syn, t0, DropUnsolicitedSYN)
		in(t, tab, UDP, m.External(), r1, 0, t0, Accept)
		in(t, tab, ICMP, m.External(), r1, 0, t0, DropNoMapping)
	})
	t.Run("port-restricted-cone/SYN from another remote filtered", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, TCP, a, r1, syn, t0)
		in(t, tab, TCP, m.External(), r2, syn, t0, DropFiltered)
		in(t, tab, TCP, m.External(), ep(srvA1, 444), syn, t0, DropFiltered)
		if len(sessionStates(m)) != 1 {
			t.Errorf("sessions %v", sessionStates(m))
		}
	})
	t.Run("restricted-cone/SYN from another port of the same address opens a session", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.Filtering = AddressDependent })
		m := out(t, tab, TCP, a, r1, syn, t0)
		in(t, tab, TCP, m.External(), r2, syn, t0, DropFiltered)
		in(t, tab, TCP, m.External(), ep(srvA1, 444), syn, t0, Accept)
		if st := sessionStates(m)[ep(srvA1, 444)]; st != "SYN_RCVD" {
			t.Errorf("state %q", st)
		}
	})
	t.Run("full-cone/hole punching: SYN from a new remote opens a session", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.Filtering = EndpointIndependent })
		m := out(t, tab, TCP, a, r1, syn, t0)
		in(t, tab, TCP, m.External(), r2, syn, t0.Add(time.Second), Accept)
		if st := sessionStates(m)[r2]; st != "SYN_RCVD" {
			t.Fatalf("state %q", st)
		}
		out(t, tab, TCP, a, r2, synAck, t0.Add(time.Second))
		if st := sessionStates(m)[r2]; st != "ESTABLISHED" {
			t.Errorf("state %q", st)
		}
		if life := m.Expires().Sub(t0.Add(time.Second)); life != 7440*time.Second {
			t.Errorf("mapping lives %v", life)
		}
	})
	t.Run("full-cone/non-SYN from a new remote passes without a session", func(t *testing.T) {
		tab := newTable(t, func(c *Config) { c.Filtering = EndpointIndependent })
		m := out(t, tab, TCP, a, r1, syn, t0)
		exp := m.Expires()
		in(t, tab, TCP, m.External(), r2, ack, t0.Add(time.Second), Accept)
		if len(sessionStates(m)) != 1 || !m.Expires().Equal(exp) {
			t.Errorf("sessions %v, expires moved %v", sessionStates(m), m.Expires().Sub(exp))
		}
		if m.PacketsIn() != 1 {
			t.Errorf("PacketsIn %d", m.PacketsIn())
		}
	})
	t.Run("mapping lives while any session lives", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, TCP, a, r1, syn, t0)
		in(t, tab, TCP, m.External(), r1, synAck, t0, Accept) // r1 established: +7440s
		out(t, tab, TCP, a, r2, syn, t0.Add(10*time.Second))
		in(t, tab, TCP, m.External(), r2, rst, t0.Add(10*time.Second), Accept) // r2 closed
		if life := m.Expires().Sub(t0); life != 7440*time.Second {
			t.Errorf("mapping lives %v", life)
		}
		out(t, tab, TCP, a, r1, rst, t0.Add(20*time.Second)) // r1 closed too: +20s+240s
		if life := m.Expires().Sub(t0); life != 260*time.Second {
			t.Errorf("mapping lives %v after both closed", life)
		}
		if n := tab.Expire(t0.Add(260*time.Second), nil); n != 1 {
			t.Errorf("Expire removed %d", n)
		}
	})
	t.Run("a lapsed session is not a permission", func(t *testing.T) {
		tab := newTable(t, nil)
		m := out(t, tab, TCP, a, r1, syn, t0)                 // r1 SYN_SENT until +240s
		out(t, tab, TCP, a, r2, syn, t0.Add(200*time.Second)) // r2 until +440s
		in(t, tab, TCP, m.External(), r1, synAck, t0.Add(300*time.Second), DropFiltered)
		in(t, tab, TCP, m.External(), r2, synAck, t0.Add(300*time.Second), Accept)
		out(t, tab, TCP, a, r1, syn, t0.Add(301*time.Second)) // r1 starts afresh
		if st := sessionStates(m)[r1]; st != "SYN_SENT" {
			t.Errorf("state %q", st)
		}
	})
}
