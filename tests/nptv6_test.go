package tests

// The nptv6 mode in a lab: the NAT takes an external /48 of its own
// (lab/nptv6.go) and translates alice's prefix to it, statelessly and
// checksum-neutrally (RFC 6296), so the server sees an address in that
// /48 with alice's interface identifier.

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/tun"
	"github.com/gonat/gonat/tun/offload"
)

const nptv6Topo = `
name = "nptv6"

[[nat]]
name = "router"
external = "198.51.100.1"
inside = "10.0.0.0/24"
inside6 = "fd00:1::/48"
ipv6 = "nptv6"

[[host]]
name = "alice"
network = "router"

[[host]]
name = "server"
network = "public"
address = ["203.0.113.10", "2001:db8::10"]
`

// sum16 is the one's-complement sum of an address's 16-bit words, which
// RFC 6296 translation keeps.
func sum16(a netip.Addr) uint16 {
	b := a.As16()
	var s uint32
	for i := 0; i < 16; i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestIPv6NPTv6(t *testing.T) {
	tshark := privtest.Tool(t, "tshark")
	topo := labtest.Parse(t, nptv6Topo)
	ext := topo.NAT("router").External6
	if len(ext) != 1 || ext[0] != netip.MustParseAddr("2001:db8:4000::1") {
		t.Fatalf("router external6 %v, want 2001:db8:4000::1 (the first /48 of 2001:db8:4000::/40)", ext)
	}
	// The water backend carries whole checksums (no offload): what the
	// capture shows is what the wire would carry.
	pcapPath := filepath.Join(t.TempDir(), "outside.pcap")
	pc, err := observe.CreatePcap(pcapPath)
	if err != nil {
		t.Fatal(err)
	}
	// The capture (tshark reads it below) covers the ping and a 1 MB
	// echo; the 10 MB transfer after it goes uncaptured, as tshark takes
	// half a minute over that many packets.
	var capturing atomic.Bool
	capturing.Store(true)
	opt := labOpts()
	opt.Backend = tun.BackendWater
	opt.Tap = func(string) forward.Tap {
		tap := observe.Sides(&observe.Tap{Pcap: pc}, nil)
		return func(port nat.Port, dir forward.Direction, pkt []byte, h offload.VirtioHdr) {
			if capturing.Load() {
				tap(port, dir, pkt, h)
			}
		}
	}
	l := labtest.Up(t, topo, opt)

	if out, ok := ping6(l, "alice", "2001:db8::10"); !ok {
		t.Fatalf("alice cannot ping the server over IPv6 through the nptv6 NAT:\n%s", out)
	}
	seen := echo6(t, l, "alice", 1<<20)
	capturing.Store(false)
	big := echo6(t, l, "alice", 10<<20)
	if b, err := netip.ParseAddrPort(big); err != nil || !strings.HasPrefix(seen, "["+b.Addr().String()+"]:") {
		t.Errorf("the 10 MB transfer seen from %q, the 1 MB one from %q: want one translated address", big, seen)
	}

	alice := netip.MustParseAddr("fd00:1::2")
	ap, err := netip.ParseAddrPort(seen)
	if err != nil {
		t.Fatalf("the server's view of the connection: %v", err)
	}
	got := ap.Addr()
	t.Logf("alice %s is %s outside", alice, got)
	a16, g16 := alice.As16(), got.As16()
	switch {
	case !netip.MustParsePrefix("2001:db8:4000::/48").Contains(got):
		t.Errorf("the server saw %s, want an address in the router's external prefix 2001:db8:4000::/48", got)
	case !bytes.Equal(a16[8:], g16[8:]):
		t.Errorf("the server saw %s: interface identifier changed from alice's %s", got, alice)
	case sum16(got) != sum16(alice):
		t.Errorf("the server saw %s: not checksum-neutral to %s (sums %#04x, %#04x)", got, alice, sum16(got), sum16(alice))
	}
	// The server reaches alice at her translated address (stateless).
	if out, ok := ping6(l, "server", got.String()); !ok {
		t.Errorf("the server cannot ping alice at %s:\n%s", got, out)
	}

	l.Close()
	pc.Close()
	out, err := exec.Command(tshark, "-n", "-r", pcapPath, "-o", "tcp.check_checksum:TRUE",
		"-T", "fields", "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "tcp.checksum.status", "-e", "icmpv6.checksum.status").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	from6 := 0
	for _, ln := range lines {
		f := strings.Split(ln, "\t")
		if len(f) < 4 {
			continue
		}
		if f[0] == got.String() {
			from6++
		}
		if f[0] == alice.String() || f[1] == alice.String() {
			t.Errorf("alice's inside address on the outside port: %q", ln)
		}
		if f[2] == "0" || f[3] == "0" { // 0: bad, 1: good, 2: unverified
			t.Errorf("bad checksum on the outside port: %q", ln)
		}
	}
	if from6 < 100 {
		t.Errorf("%d packets from %s on the outside port, want the transfer's", from6, got)
	}
}
