package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/gonat/gonat/lab"
)

// labImpair is `gonat lab impair [--lab L] NODE SPEC`: a NAT's uplink, a
// host's link to its NAT, or a public host's wire takes SPEC, both ways,
// while the lab runs; "off" (or an empty SPEC) clears it.
func labImpair(args []string) error {
	fs := flag.NewFlagSet("impair", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	pos, err := parseMixed(fs, args, labHelp)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageErr(`want a node and a spec, e.g. gonat lab impair home1 "delay=50ms loss=1%%" (or off)`)
	}
	spec := ""
	if len(pos) == 2 {
		spec = strings.TrimSpace(pos[1])
	}
	name, err := pickLab(*labName)
	if err != nil {
		return err
	}
	if _, err := lab.Call(name, lab.Request{Op: lab.OpImpair, Node: pos[0], Spec: spec}); err != nil {
		return err
	}
	if spec == "" || spec == "off" {
		fmt.Printf("lab %s: %s: impairment off\n", name, pos[0])
	} else {
		fmt.Printf("lab %s: %s: impair %s\n", name, pos[0], spec)
	}
	return nil
}
