//go:build linux

package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/table"
	"github.com/gonat/gonat/tun"
)

// hidingWrapper wraps a device without passing tun.MultiQueue on.
type hidingWrapper struct{ tun.Device }

// A Wrap hook that hides a multi-queue device's further queues would
// leave them unread (and the flows the kernel hashes there dead):
// StartNAT refuses it, and leaves no device behind. A wrapper that passes
// the queues on is taken.
func TestStartNATWrapMustKeepQueues(t *testing.T) {
	privtest.Require(t)
	inside, outside := fmt.Sprintf("glq%x-a", os.Getpid()), fmt.Sprintf("glq%x-w", os.Getpid())
	for _, n := range []string{inside, outside} {
		if err := ns.Create(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Delete(n) })
	}
	behavior, _ := table.Preset("port-restricted-cone")
	behavior.External = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	spec := NATSpec{
		Inside:   []InsideSpec{{Namespace: inside, Hosts: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}},
		Outside:  outside,
		Behavior: behavior,
		Backend:  tun.BackendOffload,
		Queues:   2,
		Wrap:     func(_ int, d tun.Device) tun.Device { return hidingWrapper{d} },
	}
	n, err := StartNAT(context.Background(), spec)
	if err == nil {
		n.Close()
		t.Fatal("StartNAT took a Wrap hook that hides a queue")
	}
	if !strings.Contains(err.Error(), "queues") {
		t.Errorf("error %q does not say what is wrong", err)
	}
	for _, name := range []string{inside, outside} {
		if err := ns.Do(name, func() error {
			if _, err := net.InterfaceByName("gnat0"); err == nil {
				return fmt.Errorf("device gnat0 left behind")
			}
			return nil
		}); err != nil {
			t.Errorf("namespace %s: %v", name, err)
		}
	}

	spec.Wrap = func(_ int, d tun.Device) tun.Device { return d }
	n, err = StartNAT(context.Background(), spec)
	if err != nil {
		t.Fatalf("StartNAT with a wrapper that keeps the queues: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Error(err)
	}
}
