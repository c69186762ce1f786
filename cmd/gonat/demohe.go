package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/gonat/gonat/examples"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/ns"
)

// demoHEClients are examples/happy-eyeballs.toml's clients, with what
// their NAT does with IPv6 and why the race ends as it does.
var demoHEClients = []struct{ name, ipv6, why string }{
	{"ok", "routed: IPv6 works", "IPv6 is tried first and answers at once."},
	{"dark", "blackhole: IPv6 packets vanish", "IPv6 never answers; IPv4 starts after the attempt delay (250 ms) and wins."},
	{"nope", "reject: ICMPv6 no route", "IPv6 fails at once, so IPv4 starts at once: no delay at all."},
	{"slow", "routed, IPv6 300 ms slower each way", "IPv6 would connect after 600 ms; IPv4, started at 250 ms, wins first."},
}

// demoHappyEyeballs builds examples/happy-eyeballs.toml and runs gonat he
// from each client against the dual-stack server, printing the winner
// and when it connected.
func demoHappyEyeballs(ctx context.Context, prefix string) error {
	data, err := examples.Files.ReadFile("happy-eyeballs.toml")
	if err != nil {
		return err
	}
	topo, err := lab.Parse(data, "examples/happy-eyeballs.toml")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	l, err := lab.Up(ctx, topo, lab.Options{Name: prefix + "he", GonatPath: self})
	if err != nil {
		return err
	}
	defer l.Close()
	// The dual-stack server: a TCP listener on both families, port 8080.
	ln, err := ns.Listen(l.Node("server").Namespace, "tcp", "[::]:8080")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	fmt.Printf(`gonat demo --happy-eyeballs: examples/happy-eyeballs.toml as lab %s

   four dual-stack clients, each behind a NAT that treats IPv6 differently,
   race TCP to the dual-stack server (203.0.113.10 and 2001:db8::10, port
   8080) as RFC 8305 says: gonat he server 8080, on each client.

`, l.Name)
	for _, c := range demoHEClients {
		out, err := l.Node(c.name).CommandContext(ctx, "gonat", "he", "--json", "server", "8080").Output()
		var res struct {
			Winner *struct {
				Addr   string  `json:"addr"`
				Family string  `json:"family"`
				MS     float64 `json:"ms"`
			} `json:"winner"`
		}
		if jerr := json.Unmarshal(out, &res); jerr != nil {
			return fmt.Errorf("gonat he on %s: %v %v\n%s", c.name, err, jerr, out)
		}
		fmt.Printf("   %-5s (%s)\n", c.name, c.ipv6)
		if res.Winner == nil {
			fmt.Printf("         => no connection\n")
			continue
		}
		fmt.Printf("         => %s wins: %s after %.1f ms. %s\n", res.Winner.Family, res.Winner.Addr, res.Winner.MS, c.why)
	}
	fmt.Println("\nDebian's curl races the same way with a 200 ms delay: docs/ipv6.md has both, measured.")
	return nil
}
