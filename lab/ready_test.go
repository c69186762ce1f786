package lab

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

func TestParseReady(t *testing.T) {
	good := map[string]Ready{
		"udp:203.0.113.10:3478": {Kind: "udp", Addr: netip.MustParseAddrPort("203.0.113.10:3478")},
		"tcp:0.0.0.0:80":        {Kind: "tcp", Addr: netip.MustParseAddrPort("0.0.0.0:80")},
		"log:listening on :80":  {Kind: "log", Text: "listening on :80"},
	}
	for in, want := range good {
		got, err := ParseReady(in)
		if err != nil || got != want {
			t.Errorf("ParseReady(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, bad := range []string{"", "udp", "udp:203.0.113.10", "udp:203.0.113.10:0", "tcp:[2001:db8::1]:80", "log:", "http:203.0.113.10:80", "listening"} {
		if _, err := ParseReady(bad); err == nil {
			t.Errorf("ParseReady(%q) accepted", bad)
		}
	}
}

// The socket tables print each 32-bit word of an address as the host
// reads it from memory.
func TestProcAddrPort(t *testing.T) {
	word := func(a [4]byte) string {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], binary.NativeEndian.Uint32(a[:]))
		return strings.ToUpper(hex.EncodeToString(b[:]))
	}
	v4 := word([4]byte{203, 0, 113, 10}) + ":0D96"
	if ap, ok := procAddrPort(v4); !ok || ap != netip.MustParseAddrPort("203.0.113.10:3478") {
		t.Errorf("procAddrPort(%q) = %v, %v", v4, ap, ok)
	}
	mapped := "0000000000000000" + word([4]byte{0, 0, 0xff, 0xff}) + word([4]byte{203, 0, 113, 10}) + ":0D96"
	if ap, ok := procAddrPort(mapped); !ok || ap.Addr().Unmap() != netip.MustParseAddr("203.0.113.10") || ap.Port() != 3478 {
		t.Errorf("procAddrPort(%q) = %v, %v", mapped, ap, ok)
	}
	for _, bad := range []string{"", "0A00:", "zz000000:0050", "0100007F"} {
		if _, ok := procAddrPort(bad); ok {
			t.Errorf("procAddrPort(%q) accepted", bad)
		}
	}
}
