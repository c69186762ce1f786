package traverse

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzServerHandle feeds arbitrary messages to the server's handler, from a
// few sources, over both transports, against a small table. Properties: it
// never panics; garbage gets no reply; a reply is a well-formed message no
// bigger than the cap; the table never exceeds its cap.
func FuzzServerHandle(f *testing.F) {
	for _, m := range []message{
		{T: tRegister, Name: "A", Sid: "1", Cands: []Candidate{cand(KindHost, "10.0.0.2:4000"), cand(KindSrflx, "198.51.100.1:4000")}},
		{T: tRegister, Name: "B"},
		{T: tLookup, Name: "A", Peer: "B"},
		{T: tLookup, Name: "B", Peer: "A", Result: resultNothing},
		{T: tBye, Name: "A", Sid: "1"},
		{T: tPunch, From: "A", To: "B", Addr: netip.MustParseAddrPort("1.2.3.4:5")},
	} {
		f.Add(encode(m), uint8(0))
		f.Add(encode(m), uint8(7))
	}
	f.Add([]byte(`{"v":1,"t":"register","name":"A","cands":[{"kind":"host","addr":"[::1]:9"}]}`), uint8(1))
	f.Add([]byte(`{"v":1,"t":"lookup","name":"A","peer":"B","result":"received","x":[1,{"y":null}]}`), uint8(2))
	f.Add([]byte(`{"v":1.0,"t":"register","name":"A\u0000"}`), uint8(3))
	f.Add([]byte("\xff\xfe{"), uint8(4))
	srcs := []netip.AddrPort{
		netip.MustParseAddrPort("198.51.100.1:40000"),
		netip.MustParseAddrPort("198.51.100.2:40000"),
		netip.MustParseAddrPort("[2001:db8::1]:40000"),
	}
	const max = 4
	r := newRegistry(max, time.Minute, nil)
	names := []string{"A", "B", "C", "D", "E"}
	now := time.Unix(1000, 0)
	f.Fuzz(func(t *testing.T, b []byte, sel uint8) {
		// Keep the table busy: pre-register some names so lookups find them.
		for i, n := range names[:int(sel%3)] {
			r.handle(encode(message{T: tRegister, Name: n}), "udp", srcs[i%len(srcs)], now)
		}
		proto := "udp"
		if sel&4 != 0 {
			proto = "tcp"
		}
		now = now.Add(time.Duration(sel) * time.Second)
		reply, valid := r.handle(b, proto, srcs[int(sel)%len(srcs)], now)
		if !valid && reply != nil {
			t.Fatalf("garbage %q answered with %q", b, reply)
		}
		if reply != nil {
			if len(reply) > maxMessage {
				t.Fatalf("reply of %d bytes", len(reply))
			}
			if _, err := decode(reply); err != nil {
				t.Fatalf("reply %q does not decode: %v", reply, err)
			}
		}
		if n := r.stats().Registrations; n > max {
			t.Fatalf("%d registrations, cap %d", n, max)
		}
	})
}
