package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gonat/gonat/lab"
)

const labLogsHelp = `Usage: gonat lab logs [--lab N] NODE [-f]

Prints what the command of host NODE (its topology 'run') has printed,
stdout and stderr, since the lab started; -f keeps printing new output
until the lab stops or Ctrl-C. 'gonat lab down --keep-logs DIR' keeps the
logs after the lab is gone.

Flags:
`

func labLogs(args []string) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	follow := fs.Bool("f", false, "follow: print new output as it comes, until the lab stops")
	pos, err := parseMixed(fs, args, labLogsHelp)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("want one NODE, e.g. gonat lab logs stun")
	}
	name, err := pickLab(*labName)
	if err != nil {
		return err
	}
	node := pos[0]
	path := filepath.Join(lab.HostLogDir(name), node+".log")
	f, err := os.Open(path)
	if err != nil {
		if _, serr := os.Stat(lab.StateDir(name)); serr != nil {
			// Only its namespaces are left: no process, no logs.
			return noLab(name)
		}
		have := hostLogs(name)
		return usageErr("lab %s has no output of %q: only hosts with a run command have logs (%s)", name, node, strings.Join(have, ", "))
	}
	defer f.Close()
	if _, err := io.Copy(os.Stdout, f); err != nil {
		return err
	}
	if !*follow {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := io.Copy(os.Stdout, f); err != nil {
			return err
		}
		st, err := lab.ReadState(name)
		if err != nil || !st.Alive() {
			// Gone: what it wrote last was read above.
			_, err := io.Copy(os.Stdout, f)
			return err
		}
	}
}

// hostLogs lists the hosts of lab name that have a log.
func hostLogs(name string) []string {
	ents, _ := os.ReadDir(lab.HostLogDir(name))
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".log"); ok && !e.IsDir() {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return []string{"none has"}
	}
	return out
}

// keepLabLogs copies lab name's host logs and its own log (gonat.log,
// of a lab started with -d) into dir.
func keepLabLogs(name, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--keep-logs: %w", err)
	}
	files, _ := filepath.Glob(filepath.Join(lab.HostLogDir(name), "*.log"))
	files = append(files, filepath.Join(lab.StateDir(name), "gonat.log"))
	var kept []string
	for _, src := range files {
		err := copyFile(src, filepath.Join(dir, filepath.Base(src)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("--keep-logs: %w", err)
		}
		kept = append(kept, filepath.Base(src))
	}
	sort.Strings(kept)
	if len(kept) == 0 {
		fmt.Printf("lab %s: no logs to keep\n", name)
		return nil
	}
	fmt.Printf("lab %s: logs kept in %s (%s)\n", name, dir, strings.Join(kept, ", "))
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// printCommands shows the hosts' commands and their state; for one that
// failed, its last lines.
func printCommands(w io.Writer, cmds []lab.HostCommand) {
	if len(cmds) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "HOST\tSTATE\tPID\tCOMMAND")
	for _, c := range cmds {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", c.Host, c.State, c.PID, c.CommandLine())
	}
	tw.Flush()
	for _, c := range cmds {
		if len(c.LastOutput) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s %s; its last output:\n", c.Host, c.State)
		for _, l := range c.LastOutput {
			fmt.Fprintf(w, "  %s | %s\n", c.Host, l)
		}
	}
}
