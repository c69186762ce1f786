package tests

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
)

// A standard third-party STUN client (Debian's stun-client, RFC 3489)
// behind `gonat run` classifies each preset as its classic type, against
// `gonat stun-server` in the public namespace.
func TestThirdPartySTUNClient(t *testing.T) {
	privtest.Tool(t, "stun")
	cases := []struct{ preset, want string }{
		{"full-cone", "Independent Mapping, Independent Filter"},
		{"restricted-cone", "Independent Mapping, Address Dependent Filter"},
		{"port-restricted-cone", "Independent Mapping, Port Dependent Filter"},
		{"symmetric", "Dependent Mapping"},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			tp.startNAT("--preset", c.preset)
			srv := exec.Command("ip", "netns", "exec", tp.WAN, gonatBin, "stun-server", "--primary", srv1.String(), "--alternate", srv2.String())
			out := newLineBuffer()
			srv.Stdout, srv.Stderr = out, out
			srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
			for deadline := time.Now().Add(10 * time.Second); !out.contains("ready"); {
				if time.Now().After(deadline) {
					t.Fatalf("stun-server not ready: %s", out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			got, _ := inNS(t, 60*time.Second, tp.A, "stun", srv1.String())
			var primary string
			for _, l := range strings.Split(got, "\n") {
				if strings.HasPrefix(l, "Primary:") {
					primary = l
				}
			}
			if !strings.HasPrefix(primary, "Primary: "+c.want+",") {
				t.Errorf("stun client says %q; want %q\n%s", primary, c.want, got)
			}
		})
	}
}
