package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/ns"
)

// The limits of RFC 6888 REQ-3/4 against the floods of issue 19: one
// inside host opening flows as fast as it can, and spoofed SYNs from
// outside to a full-cone mapping.

// count313 counts the ICMP 3/13 errors that reach namespace n until
// the returned function is called; it returns the count.
func count313(t *testing.T, n string) func() int {
	t.Helper()
	var c net.PacketConn
	err := ns.Do(n, func() error {
		var err error
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		t.Fatalf("raw ICMP socket in %s: %v", n, err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			ic := header.ICMPv4(buf[:k])
			if k >= 8 && ic.Type() == header.ICMPDestUnreachable && ic.Code() == header.ICMPCodeAdminProhibited {
				got.Add(1)
			}
		}
	}()
	stopped := false
	stop := func() int {
		if !stopped {
			stopped = true
			c.Close()
			<-done
		}
		return int(got.Load())
	}
	t.Cleanup(func() { stop() })
	return stop
}

// packetCount reads reason's count from the counters gonat prints on
// exit (0 if not printed).
func packetCount(stderr, reason string) int {
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "gonat: packets: ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, reason+"="); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
	}
	return 0
}

type tableRow struct {
	Proto, Internal, External string
	Remotes                   []string
}

func (tp *topo) tableRows() []tableRow {
	t := tp.t
	t.Helper()
	out, err := exec.Command(gonatBin, "table", "--lab", tp.Name, "--json").Output()
	if err != nil {
		t.Fatalf("gonat table: %v\n%s", err, out)
	}
	var rows []tableRow
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("gonat table: %v\n%s", err, out)
	}
	return rows
}

// maxReplies is the most ICMP errors gonat's limit in all (--icmp-rate
// rate, the per-destination one off) lets out over d: its burst of 50,
// then the rate, with a little slack for the clocks of gonat and the
// test.
func maxReplies(rate int, d time.Duration) int {
	return 50 + int(float64(rate)*(d.Seconds()+0.5))
}

// icmpLimited reads the ICMP errors gonat held back from the counters
// it prints when it stops.
func icmpLimited(stderr string) int {
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "gonat: ICMP errors rate-limited: "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// checkReplies checks that the errors the limiter let through or held
// back account for every refused packet: got (those received, which the
// kernel may have dropped some of) at most the refused ones less those
// held back, and some held back.
func checkReplies(t *testing.T, got, refused, limited, rate int, d time.Duration) {
	t.Helper()
	if got == 0 || got > maxReplies(rate, d) {
		t.Errorf("%d 3/13 errors back in %v; want 1..%d (--icmp-rate %d)", got, d, maxReplies(rate, d), rate)
	}
	if limited == 0 || got > refused-limited {
		t.Errorf("%d 3/13 errors back and %d held back for %d refused packets; want some held back, and at most %d back",
			got, limited, refused, refused-limited)
	}
}

// rssBound bounds gonat's resident memory at the default limits: 81 MB
// measured with limit-mappings and limit-sessions full, and room
// (docs/nat-requirements.md, Limits).
const rssBound = 128 << 20

// One inside host opens 1200 flows on a 1000-port range: it is held at
// its limit of 200 mappings, every refusal counted, told so by
// rate-limited 3/13 errors, and a
// second host still gets a mapping; gonat's memory stays under its
// bound. Without the limit the first host takes every port and the
// second is locked out.
func TestLimitOneHostFlood(t *testing.T) {
	const (
		flows   = 1200
		perHost = 200
		rate    = 50
	)
	tp := newTopo(t)
	tp.startNAT("--port-range", "20000-20999",
		"--limit-mappings-per-host", strconv.Itoa(perHost), "--icmp-interval", "0", "--icmp-rate", strconv.Itoa(rate))
	replies := count313(t, tp.A)
	sink := udp(t, tp.WAN, netip.AddrPortFrom(srv1, 9999).String())
	go func() { // drain
		buf := make([]byte, 2048)
		for {
			if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil && !isTimeout(err) {
				return
			}
		}
	}()

	// A flow of A's from before the flood, to check it lives on.
	early := udp(t, tp.A, ":29999")
	peer := udp(t, tp.WAN, netip.AddrPortFrom(srv2, 9997).String())
	early.WriteToUDPAddrPort([]byte("early"), netip.AddrPortFrom(srv2, 9997))
	_, earlyExt, err := recvFrom(peer, 2*time.Second)
	if err != nil {
		t.Fatalf("A's early flow: %v", err)
	}

	start := time.Now()
	for i := range flows - 1 { // the early flow is one
		c := udp(t, tp.A, fmt.Sprintf(":%d", 30000+i))
		c.WriteToUDPAddrPort([]byte("flood"), netip.AddrPortFrom(srv1, 9999))
		c.Close()
	}
	flood := time.Since(start)

	// Host B gets a new mapping: a STUN-less check, its datagram leaves.
	b := udp(t, tp.B, ":5000")
	got := false
	echo := udp(t, tp.WAN, netip.AddrPortFrom(srv2, 9998).String())
	for range 10 {
		b.WriteToUDPAddrPort([]byte("from-b"), netip.AddrPortFrom(srv2, 9998))
		if msg, from, err := recvFrom(echo, 300*time.Millisecond); err == nil && msg == "from-b" {
			got = from.Addr() == ext1
			break
		}
	}
	if !got {
		t.Errorf("host B got no mapping after host A's flood")
	}

	// No eviction: A's early mapping still lets its peer's answer in.
	peer.WriteToUDPAddrPort([]byte("still"), earlyExt)
	if msg, _, err := recvFrom(early, 2*time.Second); err != nil || msg != "still" {
		t.Errorf("A's early flow after the flood: %q, %v", msg, err)
	}

	// gonat's memory stays under its bound at the default limits; the
	// race detector's shadow memory multiplies it, so only a build
	// without it is held to the bound.
	if r := rss(t, tp.gonat.Process.Pid); !raceEnabled && r > rssBound {
		t.Errorf("gonat RSS %d MB after the flood, over the bound of %d MB at the default limits", r>>20, rssBound>>20)
	} else {
		t.Logf("gonat RSS after the flood: %d MB (race detector: %v)", r>>20, raceEnabled)
	}

	perInside := map[string]int{}
	for _, r := range tp.tableRows() {
		host, _, _ := strings.Cut(r.Internal, ":")
		perInside[host]++
	}
	if perInside[hostA.String()] != perHost {
		t.Errorf("host A holds %d mappings, want its limit %d", perInside[hostA.String()], perHost)
	}
	time.Sleep(300 * time.Millisecond) // the last 3/13 errors on their way
	elapsed := time.Since(start)
	n := replies()
	tp.stopNAT()
	refused := packetCount(tp.stderr.String(), "limit-mappings-per-host")
	limited := icmpLimited(tp.stderr.String())
	t.Logf("flood of %d flows in %v: %d refused, %d 3/13 errors back, %d held back in %v", flows, flood, refused, n, limited, elapsed)
	if refused != flows-perHost {
		t.Errorf("limit-mappings-per-host=%d, want %d", refused, flows-perHost)
	}
	checkReplies(t, n, refused, limited, rate, elapsed)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Spoofed SYNs from outside to a full-cone TCP mapping: each would add a
// session; the mapping stops at its limit, the rest are counted, 3/13
// errors go back rate-limited, and the mapping's own connection lives on.
func TestLimitOutsideSYNFlood(t *testing.T) {
	const (
		syns  = 5000
		limit = 100
		rate  = 50
	)
	tp := newTopo(t)
	tp.startNAT("--preset", "full-cone",
		"--limit-sessions-per-mapping", strconv.Itoa(limit), "--icmp-interval", "0", "--icmp-rate", strconv.Itoa(rate))
	tp.tcpObserver(netip.AddrPortFrom(srv1, 80).String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(hostA, 7000))}
	conn, err := ns.DialContext(ctx, tp.A, d, "tcp4", netip.AddrPortFrom(srv1, 80).String())
	if err != nil {
		t.Fatalf("A dials out: %v", err)
	}
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("A's connection: %v", err)
	}
	ma, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("observer said %q: %v", line, err)
	}

	replies := count313(t, tp.WAN)
	start := time.Now()
	// From srv2 (an address of the public namespace, so the 3/13 errors
	// come back to it), each SYN from a port of its own.
	err = ns.Do(tp.WAN, func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		to := &syscall.SockaddrInet4{Addr: ma.Addr().As4()}
		pkt := make([]byte, 64)
		for i := range syns {
			n := header.BuildTCP(pkt, header.IPv4Fields{Src: srv2, Dst: ma.Addr(), TTL: 64},
				header.TCPFields{SrcPort: uint16(10000 + i), DstPort: ma.Port(), Seq: uint32(i), Flags: header.TCPSyn, Window: 1024}, nil)
			if err := syscall.Sendto(fd, pkt[:n], 0, to); err != nil {
				return fmt.Errorf("SYN %d: %w", i, err)
			}
			if i%25 == 24 {
				time.Sleep(2 * time.Millisecond) // within the TUN queue's length
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("SYN flood: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	elapsed := time.Since(start)

	sessions := -1
	for _, r := range tp.tableRows() {
		if r.Proto == "tcp" && r.Internal == netip.AddrPortFrom(hostA, 7000).String() {
			sessions = len(r.Remotes)
		}
	}
	if sessions < 1 || sessions > limit {
		t.Errorf("A's TCP mapping holds %d sessions, want 1..%d", sessions, limit)
	}
	// A's own connection still works.
	if _, err := conn.Write([]byte("still here\n")); err != nil {
		t.Errorf("A's connection after the flood: %v", err)
	}
	n := replies()
	tp.stopNAT()
	refused := packetCount(tp.stderr.String(), "limit-sessions-per-mapping")
	limited := icmpLimited(tp.stderr.String())
	t.Logf("%d SYNs in %v: %d sessions held, %d refused, %d 3/13 errors back, %d held back\n%s", syns, elapsed, sessions, refused, n, limited, tp.stderr.lines("packets:"))
	// The kernel may drop some SYNs on their way in (the TUN queue of a
	// loaded machine); those that reach gonat beyond the limit are all
	// refused.
	if refused < syns/2 || refused > syns-limit+1 {
		t.Errorf("limit-sessions-per-mapping=%d, want %d..%d", refused, syns/2, syns-limit+1)
	}
	checkReplies(t, n, refused, limited, rate, elapsed)
}
