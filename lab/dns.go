package lab

// The lab's DNS server: Up runs a labdns server in the public core's
// namespace at DNSAddr, authoritative for ZoneOf(lab) with every host and
// every NAT by name, and gives each host namespace a resolv.conf pointing
// at it, with the zone as search domain so bare names ("server") resolve.
// Hosts behind a NAT64 reach it through the NAT64 and get DNS64 answers
// (lab/nat64.go).
//
// The resolv.conf files live in /etc/netns/NAMESPACE/, which `ip netns
// exec` bind-mounts over /etc for the command it runs: host commands and
// Node.Command see them; code run with Node.Run (setns on a thread) does
// not, as it keeps the process's mount namespace. They are removed by
// Close, and by Remove after a crash.

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/gonat/gonat/labdns"
	"github.com/gonat/gonat/ns"
)

// DNSAddr is the lab DNS server's address on the public network. It is
// reserved in every lab: the public pool skips it and a topology that
// gives it to a host or a NAT is rejected (TEST-NET-3, RFC 5737; .53 for
// the port it serves).
var DNSAddr = netip.MustParseAddr("203.0.113.53")

// NetnsEtc is where `ip netns exec` finds a namespace's own /etc files.
var NetnsEtc = "/etc/netns"

// resolvMarker starts every resolv.conf the lab writes, so that teardown
// removes those and nothing a user put there.
const resolvMarker = "# gonat lab DNS"

// ZoneOf is the DNS zone of lab name: NAME.test. ".test" is reserved for
// testing (RFC 6761 §6.2) and never delegated, so lab names cannot leak
// to or shadow real ones; one zone per lab keeps two labs' names apart.
func ZoneOf(name string) string { return name + ".test." }

// DNSRecords is the table the lab's DNS server answers from: every host's
// and every NAT's addresses (a NAT's external ones) by name, and "ns" for
// the server itself unless a node takes that name.
func (t *Topology) DNSRecords() map[string][]netip.Addr {
	rec := map[string][]netip.Addr{}
	for _, n := range t.NATs {
		rec[n.Name] = append(append([]netip.Addr(nil), n.External...), n.External6...)
	}
	for _, h := range t.Hosts {
		rec[h.Name] = append([]netip.Addr(nil), h.Addresses...)
	}
	if _, taken := rec["ns"]; !taken {
		rec["ns"] = []netip.Addr{DNSAddr}
	}
	return rec
}

// resolvConf is the resolv.conf of a host in lab name that reaches the
// DNS server at server.
func resolvConf(name string, server netip.Addr) string {
	return fmt.Sprintf("%s (lab %s): removed by `gonat lab down`\nnameserver %s\nsearch %s\noptions ndots:1 timeout:1 attempts:3\n",
		resolvMarker, name, server, strings.TrimSuffix(ZoneOf(name), "."))
}

// startDNS serves the lab's names from the core namespace and writes each
// host's resolv.conf. What it made is in l, for Close, on failure too. A
// resolv.conf that cannot be written (a read-only /etc) is reported with
// logf and leaves the lab up: only names are missing then.
func (l *Lab) startDNS(topo *Topology, core string, logf func(string, ...any)) error {
	h, err := labdns.NewHandler(labdns.Config{Zone: ZoneOf(l.Name), Records: topo.DNSRecords(), Views: topo.DNS64Views()})
	if err != nil {
		return err
	}
	if err := ns.AddLocalAddrs(core, netip.PrefixFrom(DNSAddr, 32)); err != nil {
		return err
	}
	addr := netip.AddrPortFrom(DNSAddr, 53).String()
	pc, err := ns.ListenPacket(core)("udp", addr)
	if err != nil {
		return fmt.Errorf("lab DNS server: %w", err)
	}
	ln, err := ns.Listen(core, "tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("lab DNS server: %w", err)
	}
	l.dns, l.names = labdns.Serve(pc, ln, h), h
	for _, hn := range topo.Hosts {
		conf := resolvConf(l.Name, topo.DNSServer(hn.Network))
		dir := filepath.Join(NetnsEtc, l.nodes[hn.Name].Namespace)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			logf("hosts get no resolv.conf for the lab DNS server: %v", err)
			return nil
		}
		l.resolv = append(l.resolv, dir)
		if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(conf), 0o644); err != nil {
			logf("hosts get no resolv.conf for the lab DNS server: %v", err)
			return nil
		}
	}
	return nil
}

// stopDNS stops the server and removes the resolv.conf files.
func (l *Lab) stopDNS() error {
	var errs []error
	if l.dns != nil {
		errs = append(errs, l.dns.Close())
	}
	for _, dir := range l.resolv {
		errs = append(errs, removeResolvConf(dir))
	}
	return errors.Join(errs...)
}

// removeStaleResolvConfs removes the resolv.conf files a lab named name
// left behind (a crash, a kill), whether its namespaces still exist or not.
func removeStaleResolvConfs(name string) error {
	dirs, _ := filepath.Glob(filepath.Join(NetnsEtc, NamespacePrefix(name)+"*"))
	var errs []error
	for _, d := range dirs {
		if ownResolvConf(filepath.Join(d, "resolv.conf")) {
			errs = append(errs, removeResolvConf(d))
		}
	}
	return errors.Join(errs...)
}

// removeResolvConf removes dir/resolv.conf if the lab wrote it, then dir
// if that left it empty.
func removeResolvConf(dir string) error {
	f := filepath.Join(dir, "resolv.conf")
	if ownResolvConf(f) {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) && !isNotEmpty(err) {
		return err
	}
	return nil
}

func isNotEmpty(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && (strings.Contains(pe.Err.Error(), "not empty") || strings.Contains(pe.Err.Error(), "exists"))
}

// ownResolvConf reports whether file is a resolv.conf the lab wrote.
func ownResolvConf(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	return s.Scan() && strings.HasPrefix(s.Text(), resolvMarker)
}
