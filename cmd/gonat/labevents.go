package main

import (
	"flag"
	"fmt"

	"github.com/gonat/gonat/lab"
)

// The network event commands: a link fails and returns, a NAT rebinds or
// reboots. Each is one control op (lab/events.go) and appears in
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
