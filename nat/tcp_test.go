package nat

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/table"
)

// seqPkt is a TCP packet with sequence numbers and window, checksums
// valid.
func seqPkt(src, dst netip.AddrPort, flags uint8, seq, ack uint32, payload string) []byte {
	b := make([]byte, 1500)
	n := header.BuildTCP(b, header.IPv4Fields{Src: src.Addr(), Dst: dst.Addr(), Protocol: header.ProtoTCP, TTL: 64},
		header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), Seq: seq, Ack: ack, Flags: flags, Window: 1000}, []byte(payload))
	return b[:n]
}

// tcpState is the state of the engine's one TCP session.
func tcpState(t *testing.T, e *Engine) string {
	t.Helper()
	var st []string
	e.Mappings(t0, func(m MappingInfo) {
		if m.Proto == table.TCP {
			for _, s := range m.Remotes {
				st = append(st, s.State)
			}
		}
	})
	if len(st) != 1 {
		t.Fatalf("TCP sessions %v, want one", st)
	}
	return st[0]
}

// A RST or FIN from outside that the host would not take (bad checksum,
// or outside the window) is dropped with its reason and leaves the
// session as it was; the connection's own RST passes and closes it.
func TestInboundTCPTeardownChecked(t *testing.T) {
	e := newEngine(t, "full-cone")
	a, s, x := ap(hostA, 5001), ap(srv1, 80), ap(ext, 5001)
	for _, step := range []struct {
		in    Port
		pkt   []byte
		state string
	}{
		{1, seqPkt(a, s, header.TCPSyn, 100, 0, ""), "SYN_SENT"},
		{Outside, seqPkt(s, x, header.TCPSyn|header.TCPAck, 9000, 101, ""), "ESTABLISHED"},
		{1, seqPkt(a, s, header.TCPAck, 101, 9001, "hello"), "ESTABLISHED"},
		{Outside, seqPkt(s, x, header.TCPAck, 9001, 106, "world"), "ESTABLISHED"},
		{1, seqPkt(a, s, header.TCPAck, 106, 9006, ""), "ESTABLISHED"},
	} {
		if r, _ := process(t, e, step.in, step.pkt, t0); r.Verdict != Forward {
			t.Fatalf("handshake: %v", r.Verdict)
		}
		if st := tcpState(t, e); st != step.state {
			t.Fatalf("state %s, want %s", st, step.state)
		}
	}
	badSum := seqPkt(s, x, header.TCPRst, 9006, 0, "")
	badSum[header.IPv4MinSize+16] ^= 0x5a
	for _, c := range []struct {
		name string
		pkt  []byte
		want Verdict
	}{
		{"RST in the window, bad checksum", badSum, DropBadChecksum},
		{"RST out of the window", seqPkt(s, x, header.TCPRst, 9006+1<<31, 0, ""), DropTCPOutOfWindow},
		{"FIN out of the window", seqPkt(s, x, header.TCPFin|header.TCPAck, 9006+3<<30, 106, ""), DropTCPOutOfWindow},
	} {
		before := e.Count(c.want)
		if r, _ := process(t, e, Outside, c.pkt, t0); r.Verdict != c.want {
			t.Errorf("%s: %v, want %v", c.name, r.Verdict, c.want)
		}
		if e.Count(c.want) != before+1 {
			t.Errorf("%s: not counted as %v", c.name, c.want)
		}
		if st := tcpState(t, e); st != "ESTABLISHED" {
			t.Errorf("%s: state %s, want ESTABLISHED", c.name, st)
		}
	}
	// Data with a bad checksum is the host's to drop.
	data := seqPkt(s, x, header.TCPAck, 9006, 106, "more")
	data[header.IPv4MinSize+16] ^= 0x5a
	if r, _ := process(t, e, Outside, data, t0); r.Verdict != Forward {
		t.Errorf("data with a bad checksum: %v, want forwarded", r.Verdict)
	}
	if r, _ := process(t, e, Outside, seqPkt(s, x, header.TCPRst, 9006, 0, ""), t0); r.Verdict != Forward {
		t.Errorf("the connection's RST: %v", r.Verdict)
	}
	if st := tcpState(t, e); st != "CLOSED" {
		t.Errorf("after the connection's RST: %s, want CLOSED", st)
	}
}

// A packet from a device with offloads may hold the partial sum the
// kernel completes on delivery (NEEDS_CSUM) where its checksum goes: it
// is the kernel's own, taken as is.
func TestTCPChecksumPartial(t *testing.T) {
	s, x := ap(srv1, 80), ap(ext, 5001)
	b := seqPkt(s, x, header.TCPFin|header.TCPAck, 9006, 106, "")
	var p header.Parsed
	p.Decode(b)
	if !tcpChecksumOK(b, &p) {
		t.Fatal("a valid checksum refused")
	}
	t4 := b[header.IPv4MinSize:]
	partial := header.Fold(header.PseudoHeaderSum(s.Addr(), x.Addr(), header.ProtoTCP, uint16(len(t4))))
	binary.BigEndian.PutUint16(t4[16:], partial)
	if !tcpChecksumOK(b, &p) {
		t.Error("a partial checksum refused")
	}
	binary.BigEndian.PutUint16(t4[16:], partial^0x0101)
	if tcpChecksumOK(b, &p) {
		t.Error("a wrong checksum taken")
	}
}

func TestWindowScaleOption(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []byte
		want uint8
	}{
		{"none", nil, table.NoWScale},
		{"Linux SYN", []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, 7},
		{"after NOPs", []byte{1, 1, 3, 3, 9, 0}, 9},
		{"after end of options", []byte{0, 3, 3, 9}, table.NoWScale},
		{"truncated", []byte{1, 3, 3}, table.NoWScale},
		{"length zero", []byte{8, 0, 3, 3, 9}, table.NoWScale},
		{"length past the end", []byte{2, 40, 3, 3, 9}, table.NoWScale},
	} {
		if got := windowScale(c.opts); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// windowScale never reads past its options, whatever they hold, and a
// shift it returns is one the options carry as a window scale option.
func FuzzWindowScale(f *testing.F) {
	f.Add([]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7})
	f.Add([]byte{1, 1, 3, 3, 9, 0})
	f.Add([]byte{3, 3})
	f.Fuzz(func(t *testing.T, opts []byte) {
		got := windowScale(opts)
		if got == table.NoWScale {
			return
		}
		for i := 0; i+2 < len(opts); i++ {
			if opts[i] == 3 && opts[i+1] == 3 && opts[i+2] == got {
				return
			}
		}
		t.Fatalf("%x: shift %d, not in the options", opts, got)
	})
}
