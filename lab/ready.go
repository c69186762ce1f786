package lab

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gonat/gonat/ns"
)

// Ready is how Up knows a host's command is serving, from a topology's
// `ready` key: "udp:ADDR:PORT" (a UDP socket is bound there),
// "tcp:ADDR:PORT" (a TCP socket listens there), or "log:TEXT" (a line of
// its output contains TEXT). The zero Ready means "started is enough".
type Ready struct {
	Kind string // "udp", "tcp", "log", or "" for none
	Addr netip.AddrPort
	Text string
}

// ParseReady decodes a `ready` value.
func ParseReady(s string) (Ready, error) {
	kind, rest, ok := strings.Cut(s, ":")
	switch {
	case !ok:
	case kind == "log":
		if rest == "" {
			return Ready{}, fmt.Errorf("%q: log: wants the text of a line to wait for, e.g. \"log:listening\"", s)
		}
		return Ready{Kind: kind, Text: rest}, nil
	case kind == "udp" || kind == "tcp":
		ap, err := netip.ParseAddrPort(rest)
		if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
			return Ready{}, fmt.Errorf("%q: want %s:ADDR:PORT with an IPv4 address and a port, e.g. \"%s:203.0.113.10:3478\"", s, kind, kind)
		}
		return Ready{Kind: kind, Addr: ap}, nil
	}
	return Ready{}, fmt.Errorf("%q: want \"udp:ADDR:PORT\", \"tcp:ADDR:PORT\" or \"log:TEXT\", e.g. \"udp:203.0.113.10:3478\"", s)
}

func (r Ready) String() string {
	switch r.Kind {
	case "log":
		return "log:" + r.Text
	case "udp", "tcp":
		return r.Kind + ":" + r.Addr.String()
	}
	return ""
}

// waiting says what a host not yet ready is waiting for.
func (r Ready) waiting() string {
	switch r.Kind {
	case "log":
		return fmt.Sprintf("no line of its output contains %q", r.Text)
	case "udp":
		return fmt.Sprintf("no UDP socket is bound to %s", r.Addr)
	case "tcp":
		return fmt.Sprintf("no TCP socket listens on %s", r.Addr)
	}
	return ""
}

// socketReady reports whether namespace nsName, where process pid
// runs, has a UDP socket bound to (or a TCP socket listening on) r.Addr,
// on its address or on the wildcard. Reading the socket tables sends
// nothing, so readiness creates no NAT mapping.
func (r Ready) socketReady(pid int, nsName string) bool {
	// Until `ip netns exec` has entered the namespace, the process's
	// tables are those of the namespace it came from.
	var want, got syscall.Stat_t
	if syscall.Stat(filepath.Join(ns.Dir, nsName), &want) != nil ||
		syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &got) != nil || want.Ino != got.Ino || want.Dev != got.Dev {
		return false
	}
	base := r.Kind
	for _, f := range []string{base, base + "6"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/" + f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 {
				continue
			}
			// TCP_LISTEN is 0A; a bound UDP socket may be in any state.
			if r.Kind == "tcp" && fields[3] != "0A" {
				continue
			}
			if ap, ok := procAddrPort(fields[1]); ok && ap.Port() == r.Addr.Port() &&
				(ap.Addr().IsUnspecified() || ap.Addr().Unmap() == r.Addr.Addr()) {
				return true
			}
		}
	}
	return false
}

// procAddrPort decodes an address of /proc/net/{udp,tcp}{,6}: the
// address as 32-bit words in host byte order, in hex, then ":PORT" in hex.
func procAddrPort(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, false
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, uint16(port)), true
}
