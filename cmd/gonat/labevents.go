package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/gonat/gonat/lab"
)

// The network event commands: a link fails and returns, a NAT rebinds or
// reboots, a host moves. Each is one control op (lab/events.go) and appears in
// `gonat table --watch`.

func labLink(args []string) error {
	fs := flag.NewFlagSet("link", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	pos, err := parseMixed(fs, args, labHelp)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[1] != "down" && pos[1] != "up") {
		return usageErr("want a node and down or up, e.g. gonat lab link alice down")
	}
	name, err := pickLab(*labName)
	if err != nil {
		return err
	}
	if _, err := lab.Call(name, lab.Request{Op: lab.OpLink, Node: pos[0], State: pos[1]}); err != nil {
		return err
	}
	fmt.Printf("lab %s: link of %s %s\n", name, pos[0], pos[1])
	return nil
}

// labRenumber is lab rebind (reboot false) and lab reboot.
func labRenumber(args []string, reboot bool) error {
	op := map[bool]string{false: lab.OpRebind, true: lab.OpReboot}[reboot]
	fs := flag.NewFlagSet(op, flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	address := fs.String("address", "", "the NAT's new external `ADDR`ess (a NAT on the public network with one external address)")
	pos, err := parseMixed(fs, args, labHelp)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("want one NAT name, e.g. gonat lab %s home1", op)
	}
	name, err := pickLab(*labName)
	if err != nil {
		return err
	}
	if _, err := lab.Call(name, lab.Request{Op: op, NAT: pos[0], Address: *address}); err != nil {
		return err
	}
	what := map[bool]string{false: "rebound: its live mappings moved to new external ports", true: "rebooted: its mappings are gone"}[reboot]
	if *address != "" {
		what += "; external address " + *address
	}
	fmt.Printf("lab %s: nat %s %s\n", name, pos[0], what)
	return nil
}

func labMove(args []string) error {
	fs := flag.NewFlagSet("move", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	pos, err := parseMixed(fs, args, labHelp)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageErr("want a host and the network it moves to (a NAT's name), e.g. gonat lab move alice work")
	}
	name, err := pickLab(*labName)
	if err != nil {
		return err
	}
	if _, err := lab.Call(name, lab.Request{Op: lab.OpMove, Node: pos[0], NAT: pos[1]}); err != nil {
		return err
	}
	st, err := lab.Call(name, lab.Request{Op: lab.OpStatus})
	if err != nil {
		return err
	}
	for _, n := range st.Status.Nodes {
		if n.Name == pos[0] {
			fmt.Printf("lab %s: %s moved to network %s, address %s\n", name, pos[0], n.Network, strings.Join(n.Addresses, ", "))
			return nil
		}
	}
	fmt.Printf("lab %s: %s moved to network %s\n", name, pos[0], pos[1])
	return nil
}
