package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gonat/gonat/experiment"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/table"
)

func labSet(args []string, flush bool) error {
	op := "set"
	if flush {
		op = "flush"
	}
	fs := flag.NewFlagSet(op, flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	preset := fs.String("preset", "", "behaviour preset: "+strings.Join(table.PresetNames(), ", "))
	var settings settingValues
	if !flush {
		settings = settingFlags(fs)
	}
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
	given, err := givenBehavior(*preset, settings)
	if err != nil {
		return err
	}
	req := lab.Request{Op: op, NAT: pos[0], Preset: *preset, Settings: given}
	if !flush && *preset == "" && len(req.Settings) == 0 {
		return usageErr("nothing to set: give --preset and/or behaviour flags")
	}
	if _, err := lab.Call(name, req); err != nil {
		return err
	}
	fmt.Printf("lab %s: nat %s %s\n", name, pos[0], map[bool]string{true: "flushed", false: "updated (its mappings were dropped)"}[flush])
	return nil
}

func labDown(args []string) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	all := fs.Bool("all", false, "remove every lab on this machine")
	keepLogs := fs.String("keep-logs", "", "copy the lab's logs (HOST.log of every host command, gonat.log) into `DIR` before removing it")
	pos, err := parseMixed(fs, args, labHelp)
	if err != nil {
		return err
	}
	given, err := labArg(*labName, pos, "down")
	if err != nil {
		return err
	}
	if err := needsRoot(); err != nil {
		return err
	}
	var names []string
	if given == "" && len(lab.Labs()) == 0 {
		// As compose does: nothing to remove is not an error.
		fmt.Println("no lab is running; nothing to remove")
		return nil
	}
	if *all {
		names = lab.Labs()
	} else {
		name, err := pickLab(given)
		if err != nil {
			return err
		}
		names = []string{name}
	}
	var errs []error
	for _, name := range names {
		if err := downOne(name, *keepLogs, len(names) > 1); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// downOne asks a live lab to stop, and then removes whatever is left in
// any case: a crashed lab leaves namespaces and host processes. With
// keepLogs, the lab's logs are copied there first (into keepLogs/NAME
// when several labs go down).
func downOne(name, keepLogs string, several bool) error {
	st, stErr := lab.ReadState(name)
	if stErr == nil && st.Alive() {
		if _, err := lab.Call(name, lab.Request{Op: lab.OpDown}); err == nil {
			for deadline := time.Now().Add(15 * time.Second); st.Alive() && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if st.Alive() {
			syscall.Kill(st.PID, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
		}
	}
	var keepErr error
	if keepLogs != "" {
		if several {
			keepLogs = filepath.Join(keepLogs, name)
		}
		keepErr = keepLabLogs(name, keepLogs)
	}
	removed, err := lab.Remove(name)
	if keepErr != nil {
		// The logs are not safe anywhere else: leave them.
		return errors.Join(keepErr, err)
	}
	os.RemoveAll(lab.StateDir(name))
	if err != nil {
		return err
	}
	if len(removed) == 0 && stErr != nil {
		return noLab(name)
	}
	if len(removed) > 0 {
		fmt.Printf("lab %s removed (cleaned up %d namespaces it left behind)\n", name, len(removed))
	} else {
		fmt.Printf("lab %s removed\n", name)
	}
	return nil
}

func labVerify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseMixed(fs, args, labHelp)
	if err != nil {
		return err
	}
	given, err := labArg(*labName, pos, "verify")
	if err != nil {
		return err
	}
	_, st, err := statusOf(given)
	if err != nil {
		return err
	}
	used := map[netip.Addr]bool{}
	for _, n := range st.Nodes {
		for _, a := range n.Addresses {
			if ap, err := netip.ParseAddr(a); err == nil {
				used[ap] = true
			}
		}
	}
	// Two addresses of TEST-NET-1 no node uses, for the probe's server.
	var servers []netip.Addr
	for a := netip.MustParseAddr("192.0.2.254"); len(servers) < 2 && a.As4()[3] > 0; a = a.Prev() {
		if !used[a] {
			servers = append(servers, a)
		}
	}
	var targets []experiment.VerifyTarget
	for _, n := range st.NATs {
		c := table.DefaultConfig()
		err := table.ApplySettings(&c, map[string]string{table.SettingMapping: n.Mapping,
			table.SettingFiltering: n.Filtering, table.SettingPortAssignment: n.PortAssignment})
		if err != nil {
			return fmt.Errorf("nat %s reports a behaviour gonat does not know: %v", n.Name, err)
		}
		c.Hairpin = n.Hairpin
		tg := experiment.VerifyTarget{NAT: n.Name, Configured: c}
		for _, node := range st.Nodes {
			if node.Kind == "nat" && node.Name == n.Name {
				tg.Outside = node.Namespace
			}
			if node.Kind == "host" && node.Network == n.Name && tg.From == "" {
				tg.From, tg.FromName = node.Namespace, node.Name
			}
		}
		targets = append(targets, tg)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results := experiment.Verify(ctx, targets, [2]netip.Addr{servers[0], servers[1]})
	bad := 0
	for _, r := range results {
		if !r.OK() {
			bad++
		}
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(results)
	} else {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAT\tPROBED FROM\tPROPERTY\tCONFIGURED\tOBSERVED\t")
		for _, r := range results {
			switch {
			case r.Err != "":
				fmt.Fprintf(tw, "%s\t%s\terror: %s\t\t\t\n", r.NAT, r.From, r.Err)
			case r.Skipped != "":
				fmt.Fprintf(tw, "%s\t-\tskipped: %s\t\t\t\n", r.NAT, r.Skipped)
			}
			for _, c := range r.Checks {
				mark := "ok"
				if !c.OK {
					mark = "MISMATCH"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.NAT, r.From, c.Property, c.Configured, c.Observed, mark)
			}
		}
		tw.Flush()
	}
	if bad > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d NATs do not behave as configured", bad)}
	}
	return nil
}
