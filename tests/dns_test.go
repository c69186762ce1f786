package tests

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/lab/labtest"
)

const dnsTopo = `
[[nat]]
name = "home"
external = "198.51.100.1"
inside = "10.0.1.0/24"

[[host]]
name = "alice"
network = "home"

[[host]]
name = "bob"
network = "home"

[[host]]
name = "server"
network = "public"
`

// getent resolves name from node with the system resolver (glibc, through
// the resolv.conf the lab gave the node's namespace).
func getent(t *testing.T, n *lab.Node, name string) string {
	t.Helper()
	out, err := n.Command("getent", "hosts", name).CombinedOutput()
	if err != nil {
		t.Fatalf("getent hosts %s on %s: %v\n%s", name, n.Name, err, out)
	}
	return strings.Fields(string(out))[0]
}

// etcNetns lists what lab name has in /etc/netns.
func etcNetns(name string) []string {
	m, _ := filepath.Glob(filepath.Join(lab.NetnsEtc, lab.NamespacePrefix(name)+"*"))
	return m
}

// Hosts behind a NAT and on the public network resolve each other, the
// public server and the NAT by bare name through the lab DNS server; a
// fully qualified name works too, and Close leaves nothing in /etc/netns.
func TestLabDNS(t *testing.T) {
	l := labtest.Up(t, labtest.Parse(t, dnsTopo), labOpts())
	for _, c := range []struct{ from, name, want string }{
		{"alice", "server", "203.0.113.10"},
		{"alice", "bob", "10.0.1.3"},
		{"alice", "home", "198.51.100.1"},
		{"bob", "server." + strings.TrimSuffix(lab.ZoneOf(l.Name), "."), "203.0.113.10"},
		{"server", "alice", "10.0.1.2"},
	} {
		if got := getent(t, l.Node(c.from), c.name); got != c.want {
			t.Errorf("%s: getent hosts %s = %s, want %s", c.from, c.name, got, c.want)
		}
	}
	if out, err := l.Node("alice").Command("getent", "hosts", "nobody").CombinedOutput(); err == nil {
		t.Errorf("getent hosts nobody found %q; want not found", out)
	}
	if len(etcNetns(l.Name)) != 3 {
		t.Errorf("/etc/netns for lab %s: %v, want one directory per host", l.Name, etcNetns(l.Name))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left := etcNetns(l.Name); len(left) > 0 {
		t.Errorf("left in /etc/netns after close: %v", left)
	}
}

// After a crash the lab's process never closes it: lab.Remove (what `lab
// down` calls) removes the resolv.conf files as well as the namespaces.
func TestLabDNSRemoveAfterCrash(t *testing.T) {
	l := labtest.Up(t, labtest.Parse(t, dnsTopo), labOpts())
	if len(etcNetns(l.Name)) == 0 {
		t.Fatal("no resolv.conf written")
	}
	if _, err := lab.Remove(l.Name); err != nil {
		t.Fatal(err)
	}
	if left := etcNetns(l.Name); len(left) > 0 {
		t.Errorf("left in /etc/netns after remove: %v", left)
	}
}
