package table

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/gonat/gonat/internal/privtest"
)

// The hit path is reached only through a Reader's lock: code that calls
// it on a bare *Table does not compile. Each case is built as a package
// of this module (an overlay: nothing is written to the tree); the one
// that holds the lock must build, the others must fail with the error
// quoted.
func TestHitPathNeedsReaderLock(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if testing.Short() {
		t.Skip("builds packages")
	}
	gotool := privtest.Tool(t, "go")
	for _, c := range []struct {
		name, body, wantErr string
	}{
		{"reader lock held", `r := table.NewShared(tab).NewReader()
	defer r.Unlock()
	return r.Lock().OutboundHit(table.UDP, a, a, 0, 0, time.Time{})`, ""},
		{"outbound hit without a lock", `return tab.OutboundHit(table.UDP, a, a, 0, 0, time.Time{})`,
			"tab.OutboundHit undefined (type *table.Table has no field or method OutboundHit"},
		{"inbound hit without a lock", `m, _, _ := tab.InboundHit(table.UDP, a, a, 0, 0, time.Time{})
	return m`, "tab.InboundHit undefined (type *table.Table has no field or method InboundHit"},
		{"prefetch without a lock", `tab.Prefetch(nil)
	return nil`, "tab.Prefetch undefined (type *table.Table has no field or method Prefetch"},
		{"hits made by hand", `return table.Hits{t: tab}.OutboundHit(table.UDP, a, a, 0, 0, time.Time{})`,
			"cannot refer to unexported field t in struct literal of type table.Hits"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "misuse.go")
			code := `package misuse

import (
	"net/netip"
	"time"

	"github.com/gonat/gonat/table"
)

func hit(tab *table.Table, a netip.AddrPort) *table.Mapping {
	` + c.body + `
}
`
			if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
				t.Fatal(err)
			}
			overlay, _ := json.Marshal(map[string]map[string]string{
				"Replace": {filepath.Join(wd, "internal", "misuse", "misuse.go"): src},
			})
			ov := filepath.Join(dir, "overlay.json")
			if err := os.WriteFile(ov, overlay, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(gotool, "build", "-overlay", ov, "./internal/misuse").CombinedOutput()
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("does not build: %v\n%s", err, out)
			case c.wantErr != "" && err == nil:
				t.Fatalf("builds; want %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(string(out), c.wantErr):
				t.Fatalf("fails with\n%s\nwant %q", out, c.wantErr)
			}
		})
	}
}

// Lock waits for every reader holding its lock, and counts the wait; a
// reader waits for Lock; hits of different readers take no lock of each
// other's.
func TestSharedLock(t *testing.T) {
	tab := newTable(t, nil)
	a, r := ep(hostA, 5000), ep(srvA1, portP1)
	m := out(t, tab, UDP, a, r, 0, t0)
	s := NewShared(tab)
	r1, r2 := s.NewReader(), s.NewReader()
	if got := s.Lock(); got != tab || s.Waits() != 0 {
		t.Fatalf("uncontended Lock: %p (want %p), %d waits", got, tab, s.Waits())
	}
	s.Unlock()

	h1 := r1.Lock() // a reader mid-packet
	if got := r2.Lock().OutboundHit(UDP, a, r, 0, 100, t0); got != m || s.Waits() != 0 {
		t.Fatalf("a second reader's hit: %p (want %p), %d waits", got, m, s.Waits())
	}
	r2.Unlock()
	locked := make(chan *Table)
	go func() { locked <- s.Lock() }()
	stopped(t, s, 0, locked, r1.Unlock, "a Lock with a reader's lock held")
	if got := h1.OutboundHit(UDP, a, r, 0, 100, t0); got != m {
		t.Fatalf("hit under the reader's lock: %p, want %p", got, m)
	}
	r1.Unlock()
	<-locked
	waited := make(chan struct{})
	go func() {
		r2.Lock()
		r2.Unlock()
		close(waited)
	}()
	stopped(t, s, 1, waited, s.Unlock, "a reader with the table locked")
	s.Unlock()
	<-waited
	if s.Waits() != 2 {
		t.Errorf("%d waits, want 2", s.Waits())
	}
}

// After LockReplace, hits use the new table, and its stripes count their
// waits in the Shared's.
func TestSharedLockReplace(t *testing.T) {
	old, tab := newTable(t, nil), newTable(t, nil)
	a, r := ep(hostA, 5000), ep(srvA1, portP1)
	m := out(t, tab, UDP, a, r, 0, t0)
	s := NewShared(old)
	rd := s.NewReader()
	if got := s.LockReplace(tab); got != old {
		t.Fatalf("LockReplace returned %p, want the old table %p", got, old)
	}
	s.Unlock()
	if got := rd.Lock().OutboundHit(UDP, a, r, 0, 100, t0); got != m {
		t.Fatalf("hit after LockReplace: %p, want %p", got, m)
	}
	rd.Unlock()
	if tab.stripeWaits != &s.waits {
		t.Error("the new table's stripe waits are not counted in the Shared's")
	}
}

// Each reader's lock has a pair of cache lines of its own.
func TestReadersAligned(t *testing.T) {
	s := NewShared(newTable(t, nil))
	for range 5 {
		if r := s.NewReader(); uintptr(unsafe.Pointer(r))%128 != 0 || unsafe.Sizeof(*r) != 128 {
			t.Errorf("reader at %p, %d bytes: not a line pair of its own", r, unsafe.Sizeof(*r))
		}
	}
}

// Taking a reader's lock and making a hit allocate nothing.
func TestReaderNoAllocs(t *testing.T) {
	tab := newTable(t, nil)
	a, r := ep(hostA, 5000), ep(srvA1, portP1)
	out(t, tab, UDP, a, r, 0, t0)
	rd := NewShared(tab).NewReader()
	if n := testing.AllocsPerRun(100, func() {
		sinkMapping = rd.Lock().OutboundHit(UDP, a, r, 0, 100, t0)
		rd.Unlock()
	}); n != 0 {
		t.Errorf("%v allocs", n)
	}
}
