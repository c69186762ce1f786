package nat

import (
	"testing"

	"github.com/gonat/gonat/header"
)

// FuzzProcess feeds arbitrary bytes into both directions of the engine:
// it must never panic, never forward something it cannot parse or that
// fails validation, and what it forwards must carry valid checksums
// whenever the input did.
func FuzzProcess(f *testing.F) {
	// Seeds: a valid UDP request, its reply, a TCP SYN, an echo request,
	// an ICMP error quoting the UDP request, a truncated header.
	req := udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "seed")
	f.Add(req, true)
	f.Add(udpPkt(ap(srv1, 3478), ap(ext, 5000), 64, "seed"), false)
	f.Add(tcpPkt(ap(hostA, 5001), ap(srv1, 80), header.TCPSyn), true)
	f.Add(echoPkt(hostA, srv1, header.ICMPEchoRequest, 9), true)
	out := append([]byte(nil), req...)
	e0 := newEngine(f, "full-cone")
	e0.Process(1, out, make([]byte, 1500), t0)
	b := make([]byte, 1500)
	n := header.BuildICMPError(b, out, rtr, header.ICMPDestUnreachable, 3, 0)
	f.Add(b[:n], false)
	f.Add([]byte{0x45, 0, 0, 20}, false)
	f.Fuzz(func(t *testing.T, pkt []byte, outbound bool) {
		e := newEngine(t, "full-cone")
		// A mapping for the inbound direction to hit.
		e.Process(1, udpPkt(ap(hostA, 5000), ap(srv1, 3478), 64, "x"), make([]byte, 1500), t0)
		validBefore := sumsValid(pkt) == nil
		port := Outside
		if outbound {
			port = 1
		}
		reply := make([]byte, 1500)
		buf := append([]byte(nil), pkt...)
		r := e.Process(port, buf, reply, t0)
		if r.Verdict != Forward {
			if r.ReplyLen > 0 && reply[0]>>4 == 6 {
				// An IPv6 packet answered by the IPv6 mode (none): an
				// ICMPv6 error with its own checksum right.
				ip := header.IPv6(reply[:r.ReplyLen])
				pl := reply[header.IPv6Size:r.ReplyLen]
				if ip.NextHeader() != header.ProtoICMPv6 ||
					header.Checksum(pl, header.PseudoHeaderSum6(ip.Src(), ip.Dst(), header.ProtoICMPv6, uint32(len(pl)))) != 0 {
					t.Fatalf("generated ICMPv6 error with a bad checksum: %x", reply[:r.ReplyLen])
				}
				return
			}
			if r.ReplyLen > 0 {
				// The quote may be of anything (a GRE packet whose TTL ran
				// out), so check the error's own checksums only.
				ip := header.IPv4(reply[:r.ReplyLen])
				if !ip.ChecksumValid() || header.Checksum(ip.Payload(), 0) != 0 || ip.Protocol() != header.ProtoICMP {
					t.Fatalf("generated ICMP error with bad checksums: %x", reply[:r.ReplyLen])
				}
			}
			return
		}
		var p header.Parsed
		p.Decode(buf)
		if p.Status != header.OK {
			t.Fatalf("forwarded a packet that does not decode: %v", p.Status)
		}
		// Validation: a forwarded packet came with a correct header
		// checksum and leaves with one; from inside it came from port 1's
		// one host, from outside from no martian source.
		if !header.IPv4(pkt).ChecksumValid() || !header.IPv4(buf).ChecksumValid() {
			t.Fatalf("forwarded with a bad header checksum: %x", pkt)
		}
		if src := header.IPv4(pkt).Src(); outbound && src != hostA || !outbound && martian(src.As4()) {
			t.Fatalf("forwarded from source %s (outbound %v)", src, outbound)
		}
		if validBefore && !p.IsFragment() {
			if err := sumsValid(buf[:p.Length]); err != nil {
				t.Fatalf("checksums broken by translation: %v", err)
			}
		}
	})
}
