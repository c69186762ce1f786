package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gonat/gonat/ns"
)

// A 10 MB transfer each way arrives byte-identical through the NAT.
func TestTCPTransfer(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT()
	const size = 10 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)

	l, err := ns.Listen(tp.WAN, "tcp4", "203.0.113.1:9100")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		sum  [32]byte
		n    int64
		from string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		h := sha256.New()
		n, err := io.CopyN(h, c, size) // upload from A
		var r result
		r.n, r.err, r.from = n, err, c.RemoteAddr().String()
		copy(r.sum[:], h.Sum(nil))
		got <- r
		if err == nil {
			c.Write(data) // download to A, checked by the client
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := ns.DialContext(ctx, tp.A, nil, "tcp4", "203.0.113.1:9100")
	if err != nil {
		t.Fatalf("dial through NAT: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(data); err != nil {
		t.Fatalf("upload: %v", err)
	}
	r := <-got
	if r.err != nil || r.n != size || r.sum != want {
		t.Fatalf("upload arrived %d bytes, sum match %v, err %v", r.n, r.sum == want, r.err)
	}
	if host, _, _ := net.SplitHostPort(r.from); host != ext1.String() {
		t.Errorf("server saw the connection from %s, want %s", r.from, ext1)
	}
	h := sha256.New()
	if n, err := io.CopyN(h, c, size); err != nil || n != size || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("download: %d bytes, err %v, sum match %v", n, err, bytes.Equal(h.Sum(nil), want[:]))
	}
}

// TCP simultaneous open (RFC 5382 REQ-2): both ends connect() at once,
// the way TCP hole punching works; through a port-restricted cone NAT.
func TestTCPSimultaneousOpen(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT("--preset", "port-restricted-cone")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type res struct {
		c   net.Conn
		err error
	}
	inside, outside := make(chan res, 1), make(chan res, 1)
	// The outside end connects first: its SYN meets no mapping and is
	// dropped (unsolicited), and its kernel waits in SYN-SENT to resend.
	// Neither end listens, so only a simultaneous open can connect them.
	go func() {
		// Port preservation maps A:7001 to 198.51.100.1:7001.
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IP(srv1.AsSlice()), Port: 7000}}
		c, err := ns.DialContext(ctx, tp.WAN, d, "tcp4", "198.51.100.1:7001")
		outside <- res{c, err}
	}()
	// Until gonat has dropped that SYN: a socket in SYN-SENT has sent
	// it, but on a busy machine the NAT may not have read it yet, and an
	// inside SYN read first would make the mapping it then meets.
	for tp.packetCounts()["unsolicited-syn"] == 0 {
		if ctx.Err() != nil {
			out, _ := inNS(t, 5*time.Second, tp.WAN, "ss", "-Htn", "state", "syn-sent")
			t.Fatalf("the outside SYN was never dropped as unsolicited (sockets in SYN-SENT: %q)", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	go func() {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{Port: 7001}}
		c, err := ns.DialContext(ctx, tp.A, d, "tcp4", "203.0.113.1:7000")
		inside <- res{c, err}
	}()
	a, w := <-inside, <-outside
	if a.err != nil || w.err != nil {
		t.Fatalf("simultaneous open: inside %v, outside %v", a.err, w.err)
	}
	defer a.c.Close()
	defer w.c.Close()
	a.c.Write([]byte("hi"))
	buf := make([]byte, 2)
	w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(w.c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("data after simultaneous open: %q %v", buf, err)
	}
	// The outside's first SYN was dropped silently (RFC 5382 REQ-4),
	// and did not stop the later outbound SYN from connecting.
	tp.stopNAT()
	if !tp.stderr.contains("unsolicited-syn=") {
		t.Errorf("the early outside SYN was not counted as unsolicited:\n%s", tp.stderr.String())
	}
}

// An unsolicited SYN gets nothing back: no RST, no ICMP (RFC 5382 REQ-4),
// and it is counted.
func TestTCPUnsolicitedSYN(t *testing.T) {
	tp := newTopo(t)
	tp.startNAT()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := ns.DialContext(ctx, tp.WAN, nil, "tcp4", "198.51.100.1:7777")
	if err == nil {
		t.Fatal("an unsolicited connection got through the NAT")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dial failed with %v after %v; want silence until the deadline", err, time.Since(start))
	}
	tp.stopNAT()
	if !tp.stderr.contains("unsolicited-syn=") {
		t.Errorf("no unsolicited-syn drop counted:\n%s", tp.stderr.String())
	}
}
