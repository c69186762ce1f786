package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
)

func printStatus(w io.Writer, st *lab.LabStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tNETWORK\tNAMESPACE\tADDRESSES")
	for _, n := range st.Nodes {
		if n.Kind == "public" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind, n.Network, n.Namespace, strings.Join(n.Addresses, ","))
	}
	tw.Flush()
	if len(st.NATs) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "NAT\tMAPPING\tFILTERING\tPORTS\tHAIRPIN\tSEED\tMAPPINGS\tPACKETS")
		for _, n := range st.NATs {
			var ps []string
			for k, v := range n.Packets {
				ps = append(ps, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(ps)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%d\t%d\t%s\n", n.Name, short(n.Mapping, false), short(n.Filtering, true), n.PortAssignment, n.Hairpin, n.Seed, n.Mappings, strings.Join(ps, " "))
		}
		tw.Flush()
	}
	printLinks(tw, st.Nodes)
	printCommands(w, st.Commands)
}

// printLinks lists the public hosts' impaired links (their wires), if
// any: the impairment in force, its seed and the packets counted.
func printLinks(tw *tabwriter.Writer, nodes []lab.NodeStatus) {
	header := false
	for _, n := range nodes {
		if n.Link == nil {
			continue
		}
		if !header {
			fmt.Fprintln(tw)
			fmt.Fprintln(tw, "LINK\tIMPAIR\tSEED\tPACKETS")
			header = true
		}
		var ps []string
		for k, v := range n.Link.Packets {
			ps = append(ps, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(ps)
		im := n.Link.Impair
		if im == "" {
			im = "off"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", n.Name, im, n.Link.Seed, strings.Join(ps, " "))
	}
	tw.Flush()
}

func short(behavior string, filtering bool) string {
	b, err := table.ParseBehavior(behavior)
	if err != nil {
		return behavior
	}
	return b.Short(filtering)
}

func labExec(args []string) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	// Everything after NODE belongs to the command: stop at the first
	// positional argument.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(labExecHelp)
			printFlags(os.Stdout, fs)
			return errHelp
		}
		return usageErr("%v (see gonat lab exec --help)", err)
	}
	rest := fs.Args()
	if len(rest) < 2 {
		return usageErr("want NODE -- CMD [ARGS...], e.g. gonat lab exec alice -- ping -c1 203.0.113.10")
	}
	node, cmd := rest[0], rest[1:]
	if cmd[0] == "--" {
		cmd = cmd[1:]
	}
	if len(cmd) == 0 {
		return usageErr("no command after NODE --")
	}
	name, err := pickLab(*labName)
	if err != nil {
		return err
	}
	nsName := lab.NamespacePrefix(name) + node
	if resp, err := lab.Call(name, lab.Request{Op: lab.OpStatus}); err == nil {
		found := false
		var known []string
		for _, n := range resp.Status.Nodes {
			known = append(known, n.Name)
			if n.Name == node {
				nsName, found = n.Namespace, true
			}
		}
		if !found {
			return usageErr("lab %s has no node %q (nodes: %s)", name, node, strings.Join(known, ", "))
		}
	} else if !ns.Exists(nsName) {
		return usageErr("lab %s has no node %q (its process is gone; gonat lab status --lab %s)", name, node, name)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return errors.New("needs iproute2 (ip)")
	}
	if cmd[0] == "gonat" {
		// The gonat lab up gives the hosts' "gonat": this executable,
		// whatever else PATH holds.
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd = append([]string{self}, cmd[1:]...)
	}
	// Replace this process: the command's exit code is ours.
	return syscall.Exec(ip, append([]string{"ip", "netns", "exec", nsName}, cmd...), os.Environ())
}

// statusOf resolves --lab and asks the lab for its status, saying so
// clearly when its process is gone.
func statusOf(labName string) (string, *lab.LabStatus, error) {
	name, err := pickLab(labName)
	if err != nil {
		return "", nil, err
	}
	resp, err := lab.Call(name, lab.Request{Op: lab.OpStatus})
	if err != nil {
		st, serr := lab.ReadState(name)
		switch {
		case serr == nil && !st.Alive():
			return "", nil, fmt.Errorf("lab %s is not running (its process %d is gone: crashed or killed); gonat lab down --lab %s cleans up", name, st.PID, name)
		case errors.Is(serr, os.ErrNotExist):
			return "", nil, fmt.Errorf("lab %s is not running (its namespaces are left); gonat lab down --lab %s cleans up", name, name)
		}
		return "", nil, err
	}
	return name, resp.Status, nil
}

func labStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseMixed(fs, args, labHelp)
	if err != nil {
		return err
	}
	given, err := labArg(*labName, pos, "status")
	if err != nil {
		return err
	}
	_, st, err := statusOf(given)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(st)
	}
	printStatus(os.Stdout, st)
	return nil
}

func labTable(args []string) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab (or gonat run --name) to show")
	natName := fs.String("nat", "", "only this NAT")
	asJSON := fs.Bool("json", false, "JSON output (JSON lines with --watch)")
	watch := fs.Bool("watch", false, "stream events until Ctrl-C")
	pos, err := parseMixed(fs, args, tableHelp)
	if err != nil {
		return err
	}
	given, err := labArg(*labName, pos, "table")
	if err != nil {
		return err
	}
	name, err := pickLab(given)
	if err != nil {
		return err
	}
	if *watch {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		enc := json.NewEncoder(os.Stdout)
		go func() { <-ctx.Done(); os.Exit(0) }()
		return lab.Watch(name, true, func(ev observe.Event) bool {
			if *natName != "" && ev.NAT != *natName {
				return true
			}
			if *asJSON {
				return enc.Encode(ev) == nil
			}
			_, err := fmt.Printf("%s %s: %s\n", ev.Time.Format("15:04:05.000"), ev.NAT, ev.Text)
			return err == nil
		})
	}
	read := func(fn func(observe.Mapping) error) error { return lab.Table(name, *natName, fn) }
	if *asJSON {
		return printTableJSON(os.Stdout, read)
	}
	return printTable(os.Stdout, read)
}

// printTable prints the rows read gives as the table's text, a row a
// mapping under a header. The columns' widths need every row, so the
// text is held until the last.
func printTable(w io.Writer, read func(func(observe.Mapping) error) error) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAT\tPROTO\tINSIDE\tEXTERNAL\tREMOTES (STATE)\tEXPIRES IN\tPKTS OUT/IN")
	err := read(func(r observe.Mapping) error {
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\n", r.NAT, r.Proto, r.Internal, r.External, strings.Join(r.Remotes, ","), time.Duration(r.ExpiresIn)*time.Second, r.PacketsOut, r.PacketsIn)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}

// printTableJSON prints the rows read gives as one JSON list (null when
// empty), the bytes encoding the whole list would make, each mapping as
// it comes.
func printTableJSON(w io.Writer, read func(func(observe.Mapping) error) error) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	rows := 0
	err := read(func(m observe.Mapping) error {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if rows++; rows == 1 {
			bw.WriteByte('[')
		} else {
			bw.WriteByte(',')
		}
		_, err = bw.Write(b)
		return err
	})
	switch {
	case err != nil:
		bw.Flush() // what came, then the error
		return err
	case rows == 0:
		bw.WriteString("null\n")
	default:
		bw.WriteString("]\n")
	}
	return bw.Flush()
}

func labList(args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	if _, err := parseMixed(fs, args, labHelp); err != nil {
		return err
	}
	if err := needsRoot(); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAB\tSTATE\tPID\tFILE")
	for _, name := range lab.Labs() {
		st, err := lab.ReadState(name)
		state := "running"
		if err != nil {
			state = "starting"
		} else if !st.Alive() {
			state = "dead (gonat lab down cleans up)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", name, state, st.PID, st.File)
	}
	return tw.Flush()
}
