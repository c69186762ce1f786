package tests

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/ns"
)

// A TCP connection open through a NAT when the NAT rebinds it, to a new
// port and then to a new address, fails as it would in the field: the
// client's next segment leaves from the new endpoint, the server's
// kernel knows no connection for that 4-tuple and answers with a RST,
// which the NAT carries back through the moved mapping; the client's
// next read is ECONNRESET. The server's socket hears nothing (its peer's
// old endpoint is gone) and stalls until its own timeout. A new
// connection works, from the new endpoint. docs/events.md explains why.
func TestRebindTCP(t *testing.T) {
	l := eventsLab(t)
	srvAddr := netip.AddrPortFrom(eventsServer.Addr(), 9001)
	ln, err := ns.Listen(l.Node("server").Namespace, "tcp4", srvAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() (client, server net.Conn) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := ns.DialContext(ctx, l.Node("alice").Namespace, nil, "tcp4", srvAddr.String())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		select {
		case s := <-accepted:
			t.Cleanup(func() { s.Close() })
			return c, s
		case <-time.After(5 * time.Second):
			t.Fatal("the server accepted nothing")
		}
		return nil, nil
	}
	// exchange checks that a line goes each way on an open connection.
	exchange := func(c, s net.Conn) {
		t.Helper()
		buf := make([]byte, 4)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		s.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("server read %q, %v", buf, err)
		}
		if _, err := s.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
			t.Fatalf("client read %q, %v", buf, err)
		}
	}
	for _, c := range []struct{ name, address string }{{"port", ""}, {"address", "198.51.100.77"}} {
		t.Run(c.name, func(t *testing.T) {
			client, server := dial()
			exchange(client, server)
			// The client's kernel acknowledges "pong" up to 200 ms later
			// (delayed ACK); an ACK that left after the rebind would draw
			// the server's RST before the write below. Let it go first.
			time.Sleep(300 * time.Millisecond)
			before := server.RemoteAddr().String()
			if _, err := lab.Call(l.Name, lab.Request{Op: lab.OpRebind, NAT: "home", Address: c.address}); err != nil {
				t.Fatal(err)
			}
			// The client speaks first after the rebind, as a client
			// sending its next request does.
			client.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := client.Write([]byte("more")); err != nil {
				t.Fatalf("write after the rebind: %v (the RST should come after it)", err)
			}
			start := time.Now()
			_, err := client.Read(make([]byte, 4))
			took := time.Since(start)
			t.Logf("rebind %s: the client's next read: %v after %s", c.name, err, took.Round(time.Millisecond))
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("rebind %s: the client's read after its write returned %v, want ECONNRESET (the server's RST to the new endpoint)", c.name, err)
			}
			// The server's socket, still bound to the old endpoint,
			// hears nothing: no data, no FIN, no RST.
			server.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if n, err := server.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("rebind %s: the server's socket read %d bytes, %v; want nothing until its deadline", c.name, n, err)
			}
			// Reconnecting is the remedy: it comes from the new endpoint.
			client2, server2 := dial()
			exchange(client2, server2)
			after := server2.RemoteAddr().String()
			t.Logf("rebind %s: the server saw the connection from %s, the new one from %s", c.name, before, after)
			if after == before {
				t.Errorf("rebind %s: the new connection comes from %s, as the old one did", c.name, after)
			}
			if c.address != "" {
				if host, _, _ := net.SplitHostPort(after); host != c.address {
					t.Errorf("rebind %s: the new connection comes from %s, want address %s", c.name, after, c.address)
				}
			}
		})
	}
}
