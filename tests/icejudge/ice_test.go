// Package icejudge checks gonat's traversal model against a real ICE
// agent (pion/ice): two agents in a lab's hosts, behind NATs of the two
// types that decide between an RFC 8445 agent and a permissive one.
//
// It is a module of its own so that gonat does not depend on pion/ice.
// Run it as root with GONAT set to a gonat binary:
//
//	GONAT=$PWD/bin/gonat go test -count=1 ./...   (in tests/icejudge)
//
// tests/ice_test.go does that from the end-to-end suite.
package icejudge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonat/gonat/experiment"
	"github.com/gonat/gonat/internal/privtest"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/lab/labtest"
	"github.com/gonat/gonat/stun"
	"github.com/gonat/gonat/table"
)

// agentEnv makes the test binary run one ICE agent instead of the tests
// (see TestMain); the lab's hosts start it that way.
const agentEnv = "ICEJUDGE_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(agentEnv) != "" {
		os.Exit(agentMain())
	}
	os.Exit(m.Run())
}

var stunPrimary = netip.MustParseAddr("203.0.113.10")

func topology(a, b experiment.NATType) string {
	nat := func(name string, t experiment.NATType, ext, inside string) string {
		return fmt.Sprintf("[[nat]]\nname = %q\nexternal = [%q]\ninside = %q\nmapping = %q\nfiltering = %q\n",
			name, ext, inside, t.Mapping.String(), t.Filter.String())
	}
	return "name = \"ice\"\n" + nat("home-a", a, "198.51.100.1", "10.0.1.0/24") + nat("home-b", b, "198.51.100.2", "10.0.2.0/24") + `
[[host]]
name = "alice"
network = "home-a"
[[host]]
name = "bob"
network = "home-b"
[[host]]
name = "stun"
network = "public"
address = ["203.0.113.10", "203.0.113.11"]
run = ["gonat", "stun-server", "--primary", "203.0.113.10", "--alternate", "203.0.113.11"]
`
}

func natType(m, f table.Behavior) experiment.NATType {
	for _, t := range experiment.AllCombinations() {
		if t.Mapping == m && t.Filter == f {
			return t
		}
	}
	panic("no such combination")
}

// The two decisive pairs: both NATs APDM with no filtering (packets pass
// both ways, but every response leaves from a new mapping: an RFC 8445
// agent fails where permissive punching connects), and full cone with
// symmetric (peer-reflexive candidates make it work).
func TestICEAgentAgreesWithModel(t *testing.T) {
	gonat := os.Getenv("GONAT")
	if gonat == "" {
		if privtest.CI() {
			t.Fatal("GONAT (a gonat binary for the lab's stun-server host) is not set")
		}
		t.Skip("set GONAT to a gonat binary")
	}
	apdmEIF := natType(table.AddressAndPortDependent, table.EndpointIndependent)
	fullCone := natType(table.EndpointIndependent, table.EndpointIndependent)
	symmetric := natType(table.AddressAndPortDependent, table.AddressAndPortDependent)
	cases := []struct {
		a, b experiment.NATType
		want bool
	}{
		{apdmEIF, apdmEIF, false},
		{fullCone, symmetric, true},
	}
	for _, c := range cases {
		t.Run(c.a.Name+" x "+c.b.Name, func(t *testing.T) {
			t.Parallel()
			if got := experiment.Expected(c.a, c.b, false); got != c.want {
				t.Fatalf("experiment.Expected = %v, want %v", got, c.want)
			}
			l := labtest.Up(t, labtest.Parse(t, topology(c.a, c.b)), lab.Options{GonatPath: gonat})
			waitForSTUN(t, l.Node("alice"))
			dir := t.TempDir()
			var wg sync.WaitGroup
			reps := make([]agentReport, 2)
			for i, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					reps[i] = runAgent(t, l.Node(p[0]), p[0], p[1], dir)
				}()
			}
			wg.Wait()
			for _, r := range reps {
				if r.Connected != c.want {
					t.Errorf("%s: pion/ice connected %v, the model says %v (%s; pair %s)", r.Name, r.Connected, c.want, r.Error, r.Pair)
				}
			}
		})
	}
}

// waitForSTUN waits until the lab's STUN server answers from node.
func waitForSTUN(t *testing.T, node *lab.Node) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := node.Run(func() error {
			c, err := net.ListenPacket("udp4", ":0")
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err = stun.Binding(ctx, c, netip.AddrPortFrom(stunPrimary, stun.DefaultPort), 0, 100*time.Millisecond, 3)
			return err
		})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lab's STUN server does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type agentReport struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	Pair      string `json:"pair,omitempty"`
	Message   string `json:"message,omitempty"`
	Error     string `json:"error,omitempty"`
}

// runAgent runs this test binary as an ICE agent in node's namespace.
func runAgent(t *testing.T, node *lab.Node, name, peer, dir string) agentReport {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := node.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), agentEnv+"=1", "ICEJUDGE_NAME="+name, "ICEJUDGE_PEER="+peer, "ICEJUDGE_DIR="+dir,
		"ICEJUDGE_STUN="+netip.AddrPortFrom(stunPrimary, stun.DefaultPort).String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r agentReport
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Errorf("%s: agent output is no report (%v, exit %v):\n%s\n%s", name, jerr, err, out, stderr.String())
		return agentReport{Name: name, Error: "no report"}
	}
	t.Logf("%s: %+v", name, r)
	return r
}

var errNoPeer = errors.New("the peer's offer never appeared")

// readOffer polls dir for the peer's offer until ctx ends.
func readOffer(ctx context.Context, dir, peer string) (offer, error) {
	for {
		b, err := os.ReadFile(filepath.Join(dir, peer+".json"))
		if err == nil {
			var o offer
			if err := json.Unmarshal(b, &o); err != nil {
				return o, err
			}
			return o, nil
		}
		select {
		case <-ctx.Done():
			return offer{}, errNoPeer
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// writeOffer publishes an offer atomically (write, then rename).
func writeOffer(dir, name string, o offer) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name+".json"))
}

// offer is what an agent tells its peer: credentials and candidates. The
// two agents share a file system, so a directory is their signalling
// channel.
type offer struct {
	Ufrag      string   `json:"ufrag"`
	Pwd        string   `json:"pwd"`
	Candidates []string `json:"candidates"`
}
