// Package privtest holds the one rule for tests that need what a machine
// may lack (root and a TUN device, or a program such as tshark): they run
// where they can, and under CI (CI=true), where they must run, whatever
// is missing fails them instead of skipping them.
package privtest

import (
	"fmt"
	"os"
	"os/exec"
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

// debianPackages names the Debian package of each program the tests run
// that `scripts/deps.sh test` installs when it is missing (a test keeps
// the two lists equal).
var debianPackages = map[string]string{
	"ip":        "iproute2",
	"ping":      "iputils-ping",
	"tracepath": "iputils-tracepath",
	"stun":      "stun-client",
	// coturn's RFC 5780 client, which speaks IPv6 (stun-client does not).
	"turnutils_natdiscovery": "coturn",
	"tshark":                 "tshark",
	"curl":                   "curl",
	"iperf3":                 "iperf3",
	"chromium":               "chromium",
	"nft":                    "nftables",
	"zsh":                    "zsh",
	"fish":                   "fish",
}

// otherNames lists the other names a program goes by on some systems,
// tried after its own.
var otherNames = map[string][]string{"chromium": {"chromium-browser"}}

// LookTool returns the path of the program name, or an error saying it is
// not installed and, for a program scripts/deps.sh installs, from which
// Debian package.
func LookTool(name string) (string, error) {
	for _, n := range append([]string{name}, otherNames[name]...) {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	if pkg, ok := debianPackages[name]; ok {
		return "", fmt.Errorf("%s not installed (Debian package %s; `scripts/deps.sh test` installs it)", name, pkg)
	}
	return "", fmt.Errorf("%s not installed", name)
}

// Tool returns the path of the program name, which the test runs. When
// the program is not installed it skips t, and under CI fails it, with a
// message naming the Debian package to install.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := LookTool(name)
	if err == nil {
		return p
	}
	if CI() {
		t.Fatalf("%v, and CI must run this test", err)
	}
	t.Skip(err)
	return ""
}
