package table

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func v6(i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i))
}

func TestAliases6RoundTrip(t *testing.T) {
	s := NewAliases6(0, time.Minute)
	seen := map[netip.Addr]netip.Addr{}
	for i := 1; i <= 1000; i++ {
		a := v6(i)
		al, ok := s.Alias(a, t0)
		if !ok || !al.Is4() || al.As4()[0] != 0 || al == netip.IPv4Unspecified() {
			t.Fatalf("Alias(%s) = %s, %v; want an alias in 0.0.0.0/8 other than 0.0.0.0", a, al, ok)
		}
		if prev, dup := seen[al]; dup {
			t.Fatalf("alias %s given to %s and %s", al, prev, a)
		}
		seen[al] = a
		if again, _ := s.Alias(a, t0); again != al {
			t.Fatalf("Alias(%s) again = %s, want %s", a, again, al)
		}
	}
	for al, a := range seen {
		if got, ok := s.Addr(al); !ok || got != a {
			t.Fatalf("Addr(%s) = %s, %v; want %s", al, got, ok, a)
		}
		if got, ok := s.Lookup(a, t0); !ok || got != al {
			t.Fatalf("Lookup(%s) = %s, %v; want %s", a, got, ok, al)
		}
	}
	if s.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", s.Len())
	}
	for _, bad := range []netip.Addr{{}, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.1")} {
		if _, ok := s.Alias(bad, t0); ok {
			t.Errorf("Alias(%s) made an alias", bad)
		}
	}
	for _, bad := range []netip.Addr{{}, netip.MustParseAddr("1.0.0.1"), netip.MustParseAddr("0.0.0.0"), aliasOf(5000), netip.MustParseAddr("2001:db8::1")} {
		if a, ok := s.Addr(bad); ok {
			t.Errorf("Addr(%s) = %s, want none", bad, a)
		}
	}
	if _, ok := s.Lookup(v6(5000), t0); ok {
		t.Error("Lookup of an address never aliased found one")
	}
	if s.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", s.Dropped())
	}
}

func TestAliases6LimitCountsDrops(t *testing.T) {
	s := NewAliases6(3, time.Minute)
	for i := 1; i <= 3; i++ {
		if _, ok := s.Alias(v6(i), t0); !ok {
			t.Fatalf("alias %d of 3 refused", i)
		}
	}
	for i := 4; i <= 5; i++ {
		if _, ok := s.Alias(v6(i), t0); ok {
			t.Fatalf("alias %d made past the limit 3", i)
		}
	}
	if s.Dropped() != 2 || s.Len() != 3 || s.Limit() != 3 {
		t.Fatalf("Dropped %d Len %d Limit %d, want 2 3 3", s.Dropped(), s.Len(), s.Limit())
	}
	if _, ok := s.Alias(v6(2), t0); !ok {
		t.Fatal("a full map refused an address it holds")
	}
}

func TestAliases6FreedOnlyWhenIdle(t *testing.T) {
	const idle = 10 * time.Minute
	s := NewAliases6(2, idle)
	a1, _ := s.Alias(v6(1), t0)
	a2, _ := s.Alias(v6(2), t0)
	// Uses within a second of the last stored one are not stored (touch),
	// so the steps here are longer.
	s.Lookup(v6(1), t0.Add(5*time.Minute))
	s.Touch(a2, t0.Add(8*time.Minute))
	if n := s.Sweep(t0.Add(5*time.Minute + idle)); n != 0 {
		t.Fatalf("Sweep at the idle time freed %d, want 0", n)
	}
	// A stored use may lag the last one by touchGrain: that long more.
	if n := s.Sweep(t0.Add(5*time.Minute + idle + touchGrain + time.Nanosecond)); n != 1 {
		t.Fatalf("Sweep freed %d, want 1 (v6(1), last used at 5 min)", n)
	}
	if _, ok := s.Addr(a1); ok {
		t.Fatal("a freed alias still stands for its address")
	}
	if got, ok := s.Addr(a2); !ok || got != v6(2) {
		t.Fatalf("Addr(%s) = %s, %v after the sweep, want %s", a2, got, ok, v6(2))
	}
	// The freed slot is reused: the limit counts live aliases.
	a3, ok := s.Alias(v6(3), t0.Add(20*time.Minute))
	if !ok || a3 != a1 {
		t.Fatalf("Alias after a free = %s, %v; want the freed %s", a3, ok, a1)
	}
	if got, _ := s.Addr(a3); got != v6(3) {
		t.Fatalf("reused alias stands for %s, want %s", got, v6(3))
	}
	s.Reset()
	if s.Len() != 0 {
		t.Fatalf("Len after Reset = %d", s.Len())
	}
	if _, ok := s.Addr(a2); ok {
		t.Fatal("an alias survived Reset")
	}
}

var aliasSink netip.Addr

func TestAliases6HitAllocatesNothing(t *testing.T) {
	s := NewAliases6(0, time.Minute)
	a := v6(7)
	al, _ := s.Alias(a, t0)
	now := t0
	n := testing.AllocsPerRun(1000, func() {
		now = now.Add(2 * time.Second)
		aliasSink, _ = s.Lookup(a, now)
		s.Touch(al, now)
		aliasSink, _ = s.Addr(al)
	})
	if n != 0 {
		t.Fatalf("Lookup, Touch, Addr: %v allocs, want 0", n)
	}
}

// TestAliases6ConcurrentHits runs lookups from several readers at once,
// as the hit path does (go test -race checks them).
func TestAliases6ConcurrentHits(t *testing.T) {
	s := NewAliases6(0, time.Minute)
	for i := 1; i <= 64; i++ {
		s.Alias(v6(i), t0)
	}
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 2000; j++ {
				a := v6(1 + j%64)
				al, ok := s.Lookup(a, t0.Add(time.Duration(j)*time.Second))
				if back, _ := s.Addr(al); !ok || back != a {
					t.Errorf("alias of %s came back as %s", a, back)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkAliases6Lookup(b *testing.B) {
	s := NewAliases6(0, time.Minute)
	for i := 1; i <= 1024; i++ {
		s.Alias(v6(i), t0)
	}
	a := v6(500)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		aliasSink, _ = s.Lookup(a, t0)
	}
}
