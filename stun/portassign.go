package stun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/gonat/gonat/table"
)

// DefaultPortSamples is how many sockets the port assignment test opens
// when ProbeConfig.PortSamples is zero.
const DefaultPortSamples = 8

// The port assignment test binds its sockets to local ports drawn from this
// range: registered ports that are usually free, and few enough that the
// sorted sample spreads over it.
const (
	portSampleLo = 30000
	portSampleHi = 49999
)

// probePortAssignment opens n fresh sockets on distinct local ports drawn at
// random from [portSampleLo, portSampleHi], no two of them adjacent (so that
// preserved ports can never also look sequential), and sends one Binding
// request from each to server in ascending order of local port, one after
// the other: the NAT sees n new mappings in that order and nothing else from
// the probe in between. All mapped ports equal to the local ports: preserve;
// each mapped port one above the previous: sequential; else random. A
// sample that gets no answer leaves the verdict unknown without an error.
func probePortAssignment(ctx context.Context, fresh func(string) (net.PacketConn, error), server netip.AddrPort, n int, rto time.Duration, retries int) (ObservedPorts, error) {
	var unknown ObservedPorts
	type sample struct {
		conn  net.PacketConn
		local uint16
	}
	samples := make([]sample, 0, n)
	defer func() {
		for _, s := range samples {
			_ = s.conn.Close()
		}
	}()
	tried := map[uint16]bool{}
	apart := func(p uint16) bool {
		for _, s := range samples {
			if p+1 >= s.local && p <= s.local+1 {
				return false
			}
		}
		return true
	}
	for attempts := 0; len(samples) < n; attempts++ {
		if attempts >= 20*n+20 {
			return unknown, fmt.Errorf("stun: port assignment test: found only %d of %d free local ports in %d-%d",
				len(samples), n, portSampleLo, portSampleHi)
		}
		p := uint16(portSampleLo + rand.IntN(portSampleHi-portSampleLo+1))
		if tried[p] || !apart(p) {
			continue
		}
		tried[p] = true
		c, err := fresh(":" + strconv.Itoa(int(p)))
		if errors.Is(err, syscall.EADDRINUSE) {
			continue // taken on this host: draw another
		}
		if err != nil {
			return unknown, err
		}
		local := addrPortOf(c.LocalAddr()).Port()
		if local == 0 {
			local = p
		}
		samples = append(samples, sample{conn: c, local: local})
	}
	slices.SortFunc(samples, func(a, b sample) int { return cmp.Compare(a.local, b.local) })

	preserve, sequential := true, n >= 2
	var prev uint16
	for i, s := range samples {
		r, err := Binding(ctx, s.conn, server, 0, rto, retries)
		if errors.Is(err, ErrTimeout) {
			return unknown, nil
		}
		if err != nil {
			return unknown, fmt.Errorf("stun: port assignment test from local port %d: %w", s.local, err)
		}
		m := r.Mapped.Port()
		if m != s.local {
			preserve = false
		}
		if i > 0 && m != prev+1 {
			sequential = false
		}
		prev = m
	}
	switch {
	case preserve:
		return Seen(table.Preserve), nil
	case sequential:
		return Seen(table.Sequential), nil
	case n < 2:
		return unknown, nil // one moved port says nothing about the next
	}
	return Seen(table.Random), nil
}
