package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Addresses: the client is 10.0.0.2 in every row, the server 203.0.113.1.
// The kernel router has 10.0.0.1 inside and 203.0.113.254 outside (its
// MASQUERADE address); gonat's external address is 198.51.100.1.
const (
	clientAddr = "10.0.0.2"
	serverAddr = "203.0.113.1"
	gonatExt   = "198.51.100.1"
)

// The IPv6 rows: the server is 2001:db8:2::1; the client 2001:db8:1::2
// (the kernel's forwarding and routed) or fd00:1::2 (nptv6, which maps
// it into the prefix of gonat's external 2001:db8:4000::1).
const (
	server6    = "2001:db8:2::1"
	client6    = "2001:db8:1::2"
	clientULA6 = "fd00:1::2"
	gonatExt6  = "2001:db8:4000::1"
)

type bench struct {
	prefix string
	gonat  string
	secs   int
	runs   int // TCP runs per figure, the best counted
	flows  int

	mu    sync.Mutex
	procs []*exec.Cmd // everything started, to stop by pid
	nss   []string    // every namespace made
	seq   int
}

// sh runs a command with a time bound and returns its combined output.
func sh(ctx context.Context, d time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ip runs `ip` commands (one per line of script), stopping at the first
// failure.
func ip(ctx context.Context, script string) error {
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if _, err := sh(ctx, 10*time.Second, "ip", strings.Fields(line)...); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) newNS(ctx context.Context, role string) (string, error) {
	b.mu.Lock()
	b.seq++
	name := fmt.Sprintf("%s%d%s", b.prefix, b.seq, role)
	b.nss = append(b.nss, name)
	b.mu.Unlock()
	if err := ip(ctx, "netns add "+name+"\n-n "+name+" link set lo up"); err != nil {
		return "", err
	}
	return name, nil
}

// start runs a long-lived command (in a namespace: ip netns exec) and
// remembers it for cleanup.
func (b *bench) start(args ...string) (*exec.Cmd, *bufio.Scanner, error) {
	c := exec.Command(args[0], args[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	c.Stderr = c.Stdout
	if err := c.Start(); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, c)
	b.mu.Unlock()
	return c, bufio.NewScanner(out), nil
}

// stop ends one process this run started: SIGTERM, then SIGKILL.
func stop(c *exec.Cmd) {
	if c == nil || c.Process == nil || c.ProcessState != nil {
		return
	}
	c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.Process.Kill()
		<-done
	}
}

// cleanup stops every process and removes every namespace of this run.
func (b *bench) cleanup() {
	b.mu.Lock()
	procs, nss := b.procs, b.nss
	b.procs, b.nss = nil, nil
	b.mu.Unlock()
	for _, c := range procs {
		stop(c)
	}
	for _, n := range nss {
		exec.Command("ip", "netns", "del", n).Run()
	}
	// Anything of ours a crash left behind.
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), b.prefix) {
				exec.Command("ip", "netns", "del", e.Name()).Run()
			}
		}
	}
}

// topo is one row's client and server namespaces, joined somehow.
type topo struct {
	client, server string
	serverAddr     string    // what the client sends to
	gonat          *exec.Cmd // gonat rows
	teardown       func()
}

// kernelTopo joins client and server through a router namespace with
// veths; with nat, the router masquerades what leaves towards the server;
// with v6, it forwards IPv6 too, and the client sends to server6.
func (b *bench) kernelTopo(ctx context.Context, nat, v6 bool, tool string) (*topo, error) {
	c, err := b.newNS(ctx, "c")
	if err != nil {
		return nil, err
	}
	r, err := b.newNS(ctx, "r")
	if err != nil {
		return nil, err
	}
	s, err := b.newNS(ctx, "s")
	if err != nil {
		return nil, err
	}
	err = ip(ctx, fmt.Sprintf(`
		link add c0 netns %[1]s type veth peer name l0 netns %[2]s
		link add w0 netns %[2]s type veth peer name s0 netns %[3]s
		-n %[1]s addr add 10.0.0.2/24 dev c0
		-n %[1]s link set c0 up
		-n %[1]s route add default via 10.0.0.1
		-n %[2]s addr add 10.0.0.1/24 dev l0
		-n %[2]s addr add 203.0.113.254/24 dev w0
		-n %[2]s link set l0 up
		-n %[2]s link set w0 up
		-n %[3]s addr add 203.0.113.1/24 dev s0
		-n %[3]s link set s0 up
		-n %[3]s route add default via 203.0.113.254`, c, r, s))
	if err != nil {
		return nil, err
	}
	if _, err := sh(ctx, 10*time.Second, "ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return nil, err
	}
	t := &topo{client: c, server: s, serverAddr: serverAddr, teardown: func() { b.delNS(c, r, s) }}
	if v6 {
		t.serverAddr = server6
		err = ip(ctx, fmt.Sprintf(`
			-n %[1]s addr add %[4]s/64 dev c0 nodad
			-n %[1]s route add ::/0 via 2001:db8:1::1
			-n %[2]s addr add 2001:db8:1::1/64 dev l0 nodad
			-n %[2]s addr add 2001:db8:2::fe/64 dev w0 nodad
			-n %[3]s addr add %[5]s/64 dev s0 nodad
			-n %[3]s route add ::/0 via 2001:db8:2::fe`, c, r, s, client6, server6))
		if err == nil {
			_, err = sh(ctx, 10*time.Second, "ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
		}
		if err != nil {
			return nil, err
		}
	}
	if nat {
		switch tool {
		case "nft":
			rules := `table ip gonatbench {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "w0" masquerade
	}
}`
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", r, "nft", "-f", "-")
			cmd.Stdin = strings.NewReader(rules)
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("nft: %v: %s", err, out)
			}
		default:
			if _, err := sh(ctx, 10*time.Second, "ip", "netns", "exec", r, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "w0", "-j", "MASQUERADE"); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// gonatTopo joins client and server through gonat, the way `gonat run`
// is documented: its inside TUN in the client namespace, its outside one
// in the server namespace, whose address is on loopback.
func (b *bench) gonatTopo(ctx context.Context, backend string, extra ...string) (*topo, error) {
	return b.gonatRun(ctx, clientAddr+"/24", append([]string{"--tun-backend", backend}, extra...))
}

// gonatTopo6 is gonatTopo, offload backend, carrying IPv6 in --ipv6 mode:
// the client sends to server6.
func (b *bench) gonatTopo6(ctx context.Context, mode string) (*topo, error) {
	client := client6
	if mode != "routed" {
		client = clientULA6 // translated into gonatExt6's prefix
	}
	t, err := b.gonatRun(ctx, clientAddr+"/24,"+client+"/64",
		[]string{"--tun-backend", "offload", "--external", gonatExt6, "--ipv6", mode})
	if err == nil {
		t.serverAddr = server6
	}
	return t, err
}

// gonatRun starts gonat with the client namespace's port at inside
// (ADDR/PREFIX list) and the flags extra.
func (b *bench) gonatRun(ctx context.Context, inside string, extra []string) (*topo, error) {
	c, err := b.newNS(ctx, "c")
	if err != nil {
		return nil, err
	}
	s, err := b.newNS(ctx, "s")
	if err != nil {
		return nil, err
	}
	if err := ip(ctx, "-n "+s+" addr add 203.0.113.1/32 dev lo\n-n "+s+" addr add "+server6+"/128 dev lo"); err != nil {
		return nil, err
	}
	// The new-mappings figure opens --flows flows from one host: more
	// than its default limit, which the kernel NAT compared has not.
	args := append([]string{"run", "--inside", c + "=" + inside, "--outside", s,
		"--external", gonatExt, "--limit-mappings-per-host", "0"}, extra...)
	cmd, out, err := b.start(append([]string{b.gonat}, args...)...)
	if err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		var lines []string
		for out.Scan() {
			if strings.HasPrefix(out.Text(), "ready") {
				ready <- nil
				for out.Scan() { // keep the pipe drained
				}
				return
			}
			lines = append(lines, out.Text())
		}
		ready <- fmt.Errorf("gonat exited before ready: %s", strings.Join(lines, "; "))
	}()
	select {
	case err := <-ready:
		if err != nil {
			return nil, err
		}
	case <-time.After(15 * time.Second):
		stop(cmd)
		return nil, fmt.Errorf("gonat not ready after 15 s")
	}
	return &topo{client: c, server: s, serverAddr: serverAddr, gonat: cmd, teardown: func() { stop(cmd); b.delNS(c, s) }}, nil
}

func (b *bench) delNS(names ...string) {
	for _, n := range names {
		exec.Command("ip", "netns", "del", n).Run()
	}
}

// busyPoll is the --busy-poll of the busypoll row: longer than the gap
// between two pings of the RTT column, so the loop spins through it as
// it would under steady traffic.
const busyPoll = 200 * time.Millisecond
