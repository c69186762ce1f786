package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDNSRecords(t *testing.T) {
	topo, err := Parse([]byte(`
[[nat]]
name = "home1"
external = "198.51.100.1"
inside = "10.0.1.0/24"

[[host]]
name = "alice"
network = "home1"

[[host]]
name = "server"
network = "public"
`), "dns.toml")
	if err != nil {
		t.Fatal(err)
	}
	rec := topo.DNSRecords()
	for name, want := range map[string]string{"home1": "198.51.100.1", "alice": "10.0.1.2", "server": "203.0.113.10", "ns": "203.0.113.53"} {
		if got := rec[name]; !slices.Equal(got, []netip.Addr{netip.MustParseAddr(want)}) {
			t.Errorf("%s: %v, want %s", name, got, want)
		}
	}
	if ZoneOf("dns") != "dns.test." {
		t.Errorf("zone %q", ZoneOf("dns"))
	}
}

// TestPublicPoolSkipsDNS: the 44th public host would get 203.0.113.53
// from the pool; it gets .54, as the DNS server has .53.
func TestPublicPoolSkipsDNS(t *testing.T) {
	var src []byte
	for i := range 44 {
		src = append(src, []byte("[[host]]\nname = \"h"+string(rune('a'+i/26))+string(rune('a'+i%26))+"\"\nnetwork = \"public\"\n")...)
	}
	topo, err := Parse(src, "pool.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range topo.Hosts {
		if h.Addresses[0] == DNSAddr {
			t.Fatalf("%s got the DNS server's address", h.Name)
		}
	}
	if last := topo.Hosts[43].Addresses[0]; last != netip.MustParseAddr("203.0.113.54") {
		t.Errorf("44th host: %s, want 203.0.113.54", last)
	}
}

// TestResolvConfCleanup: teardown removes the files the lab wrote (and
// their directory when that empties it), never a user's file.
func TestResolvConfCleanup(t *testing.T) {
	dir := t.TempDir()
	old := NetnsEtc
	NetnsEtc = dir
	t.Cleanup(func() { NetnsEtc = old })
	write := func(ns, content string) {
		os.MkdirAll(filepath.Join(dir, ns), 0o755)
		if err := os.WriteFile(filepath.Join(dir, ns, "resolv.conf"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lab1.alice", resolvConf("lab1", DNSAddr))
	write("lab1.bob", resolvConf("lab1", DNSAddr))
	os.WriteFile(filepath.Join(dir, "lab1.bob", "hosts"), []byte("# a user's\n"), 0o644)
	write("lab1.carol", "nameserver 192.0.2.1\n")     // a user's own
	write("lab10.dave", resolvConf("lab10", DNSAddr)) // another lab's
	if err := removeStaleResolvConfs("lab1"); err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Stat(filepath.Join(dir, p)); return err == nil }
	for p, want := range map[string]bool{
		"lab1.alice":             false,
		"lab1.bob/resolv.conf":   false,
		"lab1.bob/hosts":         true,
		"lab1.carol/resolv.conf": true,
		"lab10.dave/resolv.conf": true,
	} {
		if exists(p) != want {
			t.Errorf("%s exists: %v, want %v", p, !want, want)
		}
	}
}
