// Package privtest holds the one rule for tests that need root and a TUN
// device: they run where they can, and under CI (CI=true), where they
// must run, a missing privilege fails them instead of skipping them.
package privtest

import (
	"os"
	"testing"
)

// Missing says what keeps this process from creating network namespaces
// and TUN devices, or "" when nothing does.
func Missing() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return "/dev/net/tun: " + err.Error()
	}
	f.Close()
	return ""
}

// CI reports whether this is a CI run, where nothing may be skipped.
func CI() bool { return os.Getenv("CI") == "true" }

// Require fails t under CI, and skips it elsewhere, when Missing says
// something is missing.
func Require(t testing.TB) {
	t.Helper()
	why := Missing()
	if why == "" {
		return
	}
	if CI() {
		t.Fatalf("needs root and /dev/net/tun, and CI must run it: %s", why)
	}
	t.Skipf("needs root and /dev/net/tun: %s", why)
}
