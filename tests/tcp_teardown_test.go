package tests

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonat/gonat/header"
	"github.com/gonat/gonat/ns"
)

// The queues of TCP_REPAIR_QUEUE (linux/tcp.h), which x/sys does not name.
const (
	tcpRecvQueue = 1
	tcpSendQueue = 2
)

// tcpSeqs reads a connected socket's next sequence number to send and
// next to receive, through TCP_REPAIR (root): what a forger on the path
// would have to guess.
func tcpSeqs(t *testing.T, c *net.TCPConn) (sndNxt, rcvNxt uint32) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		s := int(fd)
		if serr = unix.SetsockoptInt(s, unix.SOL_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_ON); serr != nil {
			return
		}
		// Out of repair mode without the window probe leaving it sends.
		defer unix.SetsockoptInt(s, unix.SOL_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_OFF_NO_WP)
		var v int
		for _, q := range []struct {
			queue int
			seq   *uint32
		}{{tcpSendQueue, &sndNxt}, {tcpRecvQueue, &rcvNxt}} {
			if serr = unix.SetsockoptInt(s, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, q.queue); serr != nil {
				return
			}
			if v, serr = unix.GetsockoptInt(s, unix.SOL_TCP, unix.TCP_QUEUE_SEQ); serr != nil {
				return
			}
			*q.seq = uint32(v)
		}
	})
	if err != nil || serr != nil {
		t.Fatalf("reading the sequence numbers: %v %v", err, serr)
	}
	return sndNxt, rcvNxt
}

// tcpSessionState is the state gonat's table shows for the TCP session
// of inside endpoint internal with remote, "" if there is none.
func (tp *topo) tcpSessionState(internal, remote netip.AddrPort) string {
	tp.t.Helper()
	out, err := exec.Command(gonatBin, "table", "--lab", tp.Name, "--json").CombinedOutput()
	if err != nil {
		tp.t.Fatalf("gonat table: %v\n%s", err, out)
	}
	var rows []struct {
		Proto, Internal string
		Remotes         []string
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		tp.t.Fatalf("%v\n%s", err, out)
	}
	for _, r := range rows {
		if r.Proto != "tcp" || r.Internal != internal.String() {
			continue
		}
		for _, rem := range r.Remotes {
			if st, ok := strings.CutPrefix(rem, remote.String()+" ("); ok {
				return strings.TrimSuffix(st, ")")
			}
		}
	}
	return ""
}

// A forged RST or FIN from outside does not end an idle connection
// (issue 19, finding 1): neither one with a bad checksum, which the host
// would ignore, nor one outside the connection's window. Each is dropped
// and counted with its reason, the session stays ESTABLISHED, and the
// connection carries data after idling several transitory timeouts,
// where a session moved to CLOSED would have lapsed. The server's own
// RST still ends the session, after the transitory timeout (RFC 7857
// §2.2).
func TestTCPForgedTeardown(t *testing.T) {
	const transitory = 2 * time.Second
	tp := newTopo(t)
	tp.startNAT("--tcp-transitory-timeout", transitory.String())
	srv := netip.AddrPortFrom(srv1, 9100)
	l, err := ns.Listen(tp.WAN, "tcp4", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			close(accepted)
			return
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// No keepalives: the client stays silent while idle, as an
	// application waiting for its server.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{Port: 7100}, KeepAlive: -1}
	cl, err := ns.DialContext(ctx, tp.A, d, "tcp4", srv.String())
	if err != nil {
		t.Fatalf("dial through the NAT: %v", err)
	}
	defer cl.Close()
	sc, ok := <-accepted
	if !ok {
		t.FailNow()
	}
	defer sc.Close()
	internal := netip.AddrPortFrom(hostA, 7100)
	ext := netip.MustParseAddrPort(sc.RemoteAddr().String())

	// A few bytes each way, so both ends' windows have been seen moving;
	// the server's first after an idle time, as in the issue (the
	// client's first would make a new mapping if the old one had gone).
	exchange := func(what string) {
		t.Helper()
		buf := make([]byte, 5)
		for _, p := range []struct {
			from, to net.Conn
			msg      string
		}{{sc, cl, "ping!"}, {cl, sc, "pong!"}} {
			p.to.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := p.from.Write([]byte(p.msg)); err != nil {
				t.Fatalf("%s: write: %v", what, err)
			}
			if _, err := io.ReadFull(p.to, buf); err != nil || string(buf) != p.msg {
				t.Fatalf("%s: read %q, %v; want %q", what, buf, err, p.msg)
			}
		}
	}
	exchange("before")
	if st := tp.tcpSessionState(internal, srv); st != "ESTABLISHED" {
		t.Fatalf("session %q, want ESTABLISHED", st)
	}

	snd, rcv := tcpSeqs(t, sc.(*net.TCPConn))
	send := rawSender(t, tp.WAN)
	forge := func(flags uint8, seq uint32, badSum bool) []byte {
		b := make([]byte, 64)
		n := header.BuildTCP(b, header.IPv4Fields{Src: srv.Addr(), Dst: ext.Addr(), Protocol: header.ProtoTCP, TTL: 64},
			header.TCPFields{SrcPort: srv.Port(), DstPort: ext.Port(), Seq: seq, Ack: rcv, Flags: flags, Window: 502}, nil)
		if badSum {
			b[header.IPv4MinSize+16] ^= 0x5a
		}
		return b[:n]
	}
	for _, f := range []struct {
		name string
		pkt  []byte
	}{
		{"RST out of the window, bad checksum", forge(header.TCPRst, snd+1<<31, true)},
		{"RST in the window, bad checksum", forge(header.TCPRst, snd, true)},
		{"RST out of the window", forge(header.TCPRst, snd+1<<31, false)},
		{"FIN out of the window", forge(header.TCPFin|header.TCPAck, snd-1<<30, false)},
	} {
		send(f.pkt)
		time.Sleep(100 * time.Millisecond)
		if st := tp.tcpSessionState(internal, srv); st != "ESTABLISHED" {
			t.Errorf("after a forged %s: session %q, want ESTABLISHED", f.name, st)
		}
	}

	// Idle for several transitory timeouts: a session the forgeries had
	// moved out of ESTABLISHED would be gone, and the server's data
	// dropped as no-mapping.
	time.Sleep(3 * transitory)
	exchange("after idling")
	if st := tp.tcpSessionState(internal, srv); st != "ESTABLISHED" {
		t.Errorf("after idling: session %q, want ESTABLISHED", st)
	}

	// The server's own RST is in the window: the session closes, and
	// lapses after the transitory timeout, not at once.
	sc.(*net.TCPConn).SetLinger(0)
	sc.Close()
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cl.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the server's RST: the client read %v, want a reset", err)
	}
	if st := tp.tcpSessionState(internal, srv); st != "CLOSED" {
		t.Errorf("after the server's RST: session %q, want CLOSED", st)
	}
	deadline := time.Now().Add(transitory + 3*time.Second)
	for tp.tcpSessionState(internal, srv) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("the reset session outlived the transitory timeout (%v)", transitory)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A connection that moves a few megabytes (scaled windows, segments
	// the kernel batched) and closes with FINs both ways: none of its
	// segments is taken for a forgery.
	closeGracefully(t, tp, l)

	tp.stopNAT()
	for reason, want := range map[string]string{"bad-checksum": "2", "tcp-out-of-window": "2"} {
		m := regexp.MustCompile(`\b` + reason + `=(\d+)`).FindStringSubmatch(tp.stderr.String())
		if m == nil || m[1] != want {
			t.Errorf("%s drops: %v, want %s\n%s", reason, m, want, tp.stderr.String())
		}
	}
}

// closeGracefully runs a connection from A to listener l that downloads
// 4 MB and closes from the server's side, and checks both FINs pass:
// the client reads the end of the stream and the session reaches
// TIME_WAIT.
func closeGracefully(t *testing.T, tp *topo, l net.Listener) {
	t.Helper()
	const size = 4 << 20
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write(make([]byte, size))
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{Port: 7101}}
	c, err := ns.DialContext(ctx, tp.A, d, "tcp4", l.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, c); n != size || err != nil {
		t.Errorf("download: %d bytes, %v; want %d and the server's FIN", n, err, size)
	}
	c.Close()
	internal, srv := netip.AddrPortFrom(hostA, 7101), netip.MustParseAddrPort(l.Addr().String())
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := tp.tcpSessionState(internal, srv)
		if st == "TIME_WAIT" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after both FINs: session %q, want TIME_WAIT", st)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
