//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun"
)

// natSpec makes two namespaces (removed when t ends) and a NAT spec
// between them: one inside host, the offload backend.
func natSpec(t *testing.T, prefix string) NATSpec {
	t.Helper()
	inside, outside := fmt.Sprintf("%s%x-a", prefix, os.Getpid()), fmt.Sprintf("%s%x-w", prefix, os.Getpid())
	for _, n := range []string{inside, outside} {
		if err := ns.Create(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Delete(n) })
	}
	behavior, _ := table.Preset("port-restricted-cone")
	behavior.External = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	return NATSpec{
		Inside:   []InsideSpec{{Namespace: inside, Hosts: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}},
		Outside:  outside,
		Behavior: behavior,
		Backend:  tun.BackendOffload,
	}
}

// noDeviceLeft fails t if spec's namespaces still hold a gnat0.
func noDeviceLeft(t *testing.T, spec NATSpec) {
	t.Helper()
	for _, name := range []string{spec.Inside[0].Namespace, spec.Outside} {
		if err := ns.Do(name, func() error {
			if _, err := net.InterfaceByName("gnat0"); err == nil {
				return fmt.Errorf("device gnat0 left behind")
			}
			return nil
		}); err != nil {
			t.Errorf("namespace %s: %v", name, err)
		}
	}
}

// noSteering makes TUN devices as tun.Create does, except that an
// inside port's device steered by CPU fails: per-CPU reading cannot
// work, after the outside device is made.
func noSteering(c tun.Config) (tun.Device, error) {
	if c.SteerByCPU && len(c.Addresses) > 0 {
		return nil, errors.New("no steering program here")
	}
	return tun.Create(c)
}

// forward.ReadersAuto reads per CPU, and falls back to per device, saying
// why, when per-CPU reading cannot work (here devices steered by CPU
// cannot be made); asked for, per CPU fails instead, saying why, and
// leaves no device behind. A ReadMode that does not validate is refused.
func TestStartNATReaders(t *testing.T) {
	privtest.Require(t)
	spec := natSpec(t, "glr")
	var logged []string
	spec.Logf = func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }

	n, err := StartNAT(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if n.ReadMode().Readers != forward.ReadersPerCPU || len(tun.QueuesOf(n.devices[0])) != tun.CPUQueues() || !strings.Contains(n.Describe(), "; readers per-cpu") {
		t.Errorf("default: readers %v, %d queues (want per-cpu, %d); %s", n.ReadMode().Readers, len(tun.QueuesOf(n.devices[0])), tun.CPUQueues(), n.Describe())
	}
	n.Close()

	spec.ReadMode.Readers, spec.newDevice = forward.ReadersPerCPU, noSteering
	if n, err := StartNAT(context.Background(), spec); err == nil {
		n.Close()
		t.Error("per-CPU readers started without devices steered by CPU")
	} else if !strings.Contains(err.Error(), "no steering program") {
		t.Errorf("per-CPU readers without steering: %q does not say why", err)
	}
	noDeviceLeft(t, spec)

	spec.ReadMode.Readers = forward.ReadersAuto
	n, err = StartNAT(context.Background(), spec)
	if err != nil {
		t.Fatalf("auto readers without steering: %v, want a fall back to per device", err)
	}
	if n.ReadMode().Readers != forward.ReadersPerDevice || !strings.Contains(n.Describe(), "; readers per-device") {
		t.Errorf("fallen back: readers %v; %s", n.ReadMode().Readers, n.Describe())
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "per-CPU readers unavailable") || !strings.Contains(logged[0], "no steering program") {
		t.Errorf("logged %q, want one line saying per-CPU readers are unavailable and why", logged)
	}
	if err := n.Close(); err != nil {
		t.Error(err)
	}

	spec.ReadMode.Readers, spec.newDevice = forward.Readers(7), nil
	if n, err := StartNAT(context.Background(), spec); err == nil {
		n.Close()
		t.Error("StartNAT took Readers(7)")
	} else if !errors.Is(err, forward.ErrUnknownReaders) {
		t.Errorf("StartNAT with Readers(7): %v, want %v", err, forward.ErrUnknownReaders)
	}
	noDeviceLeft(t, spec)
}

// Up starts NATs in parallel, yet reports the first failure in topology
// order and leaves nothing behind; the outside ports in the public core
// are named in topology order whichever NAT starts first.
func TestUpParallelFailsInOrder(t *testing.T) {
	privtest.Require(t)
	var b strings.Builder
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "[[nat]]\nname = \"n%d\"\nexternal = \"198.51.100.%d\"\ninside = \"10.0.0.0/24\"\n[[host]]\nname = \"h%d\"\nnetwork = \"n%d\"\n", i, i, i, i)
	}
	topo, err := Parse([]byte(b.String()), "parallel.toml")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("lp%x", os.Getpid())
	opt := Options{Name: name, Backend: tun.BackendOffload}
	// Two NATs whose engine refuses its behaviour (no external address):
	// StartNAT fails for them, the others start.
	broken := *topo
	broken.NATs = append([]NATNode(nil), topo.NATs...)
	for _, i := range []int{3, 6} {
		broken.NATs[i].Behavior.External = nil
	}
	for range 3 {
		_, err := Up(context.Background(), &broken, opt)
		if err == nil || !strings.HasPrefix(err.Error(), "nat n4: ") {
			t.Fatalf("Up: %v, want nat n4's error", err)
		}
		if left, _ := NamespacesOf(name); len(left) > 0 {
			t.Fatalf("left behind: %v", left)
		}
	}

	l, err := Up(context.Background(), topo, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, n := range l.NATNames() {
		if want := fmt.Sprintf("n%d", i+1); n != want {
			t.Fatalf("NATNames() = %v, want topology order", l.NATNames())
		}
		if got, want := l.NAT(n).devices[0].Name(), fmt.Sprintf("gnat%d", i); got != want {
			t.Errorf("nat %s: outside port %s, want %s", n, got, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := NamespacesOf(name); len(left) > 0 {
		t.Fatalf("left behind after Close: %v", left)
	}
}
