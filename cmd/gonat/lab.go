package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gonat/gonat/experiment"
	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/ns"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/table"
)

const labHelp = `Usage: gonat lab COMMAND [flags]

A lab is a whole network from one topology file (see examples/): NATs,
NATs behind NATs, hosts behind them, public servers, and the commands the
hosts run. Every namespace of lab NAME is called NAME.NODE, so nothing of
two labs collides and 'gonat lab down' finds everything, even after a crash.

Commands:
  up FILE [--name N] [-d]           build the lab and run it until Ctrl-C (-d: in the background)
  validate FILE [--name N]          check FILE and print what up would build, creating nothing
                                    (the same as up FILE --dry-run)
  exec [--lab N] NODE -- CMD ARGS   run a program on a node (exit code passed through)
  logs [--lab N] NODE [-f]          the output of a host's command (-f: follow it)
  status [N] [--json]               nodes, NATs, mappings and packet counters
  table [N] [--nat NAT] [--json]    the live mappings
  list                              labs on this machine
  set [--lab N] NAT [--preset P] [--mapping M] ...   change a NAT's behaviour (drops its mappings)
  flush [--lab N] NAT               drop a NAT's mappings (a NAT reboot: rebinding)
  down [N] [--all] [--keep-logs DIR]  remove a lab (also after kill -9 of its process)
  verify [N] [--json]               probe every NAT (RFC 5780) and compare with its configuration

N is a lab's name, given as --lab N or, where the command takes no other
argument, as the argument; it may be left out when exactly one lab runs.
All but validate need root. 'gonat lab help COMMAND' shows a command's flags.
`

func labCmd(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, labHelp)
		return usageErr("which lab command? (up, validate, exec, logs, status, table, list, set, flush, down, verify)")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "up":
		return labUp(rest)
	case "validate":
		return labValidate(rest)
	case "exec":
		return labExec(rest)
	case "logs":
		return labLogs(rest)
	case "status":
		return labStatus(rest)
	case "table":
		return labTable(rest)
	case "list":
		return labList(rest)
	case "set":
		return labSet(rest, false)
	case "flush":
		return labSet(rest, true)
	case "down":
		return labDown(rest)
	case "verify":
		return labVerify(rest)
	case "-h", "--help", "help":
		if sub == "help" && len(rest) > 0 && !isHelp(rest[0]) {
			return labCmd(append(rest, "--help"))
		}
		fmt.Print(labHelp)
		return errHelp
	}
	return usageErr("unknown lab command %q (up, validate, exec, logs, status, table, list, set, flush, down, verify)", sub)
}

// parseMixed parses flags that may come before or after positional
// arguments (gonat lab set home1 --preset symmetric).
func parseMixed(fs *flag.FlagSet, args []string, help string) ([]string, error) {
	var pos []string
	for {
		fs.SetOutput(io.Discard)
		fs.Usage = func() {}
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(help)
			printFlags(os.Stdout, fs)
			return nil, errHelp
		}
		if err != nil {
			return nil, usageErr("%v (see gonat lab %s --help)", err, fs.Name())
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		if fs.Arg(0) == "--" {
			return append(pos, fs.Args()...), nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// needsRoot is the one answer of the lab commands run without root: the
// labs' state and namespaces are root's, so they would see nothing.
func needsRoot() error {
	if os.Geteuid() == 0 {
		return nil
	}
	return fmt.Errorf("needs root: labs, their state (%s) and their namespaces are root's; run it with sudo", lab.StateRoot)
}

// runningLabs lists the labs (and gonat run instances) whose process runs.
func runningLabs() []string {
	var out []string
	for _, name := range lab.Labs() {
		if st, err := lab.ReadState(name); err == nil && st.Alive() {
			out = append(out, name)
		}
	}
	return out
}

// noLab is the one error of every command given a lab that is not there.
func noLab(name string) error {
	others := "none is; start one with gonat lab up FILE"
	if running := runningLabs(); len(running) > 0 {
		others = "running: " + strings.Join(running, ", ") + "; see gonat lab list"
	}
	return usageErr("no lab %q is running (%s)", name, others)
}

// labExists reports whether anything of lab name is left: its state or
// its namespaces (a crashed lab keeps them until gonat lab down).
func labExists(name string) bool {
	if _, err := os.Stat(lab.StateDir(name)); err == nil {
		return true
	}
	left, _ := lab.NamespacesOf(name)
	return len(left) > 0
}

// labArg is the lab a command names, as --lab or as its only argument.
func labArg(flagName string, pos []string, cmd string) (string, error) {
	switch {
	case len(pos) > 1:
		return "", usageErr("want at most one lab name, got %s (see gonat lab %s --help)", strings.Join(pos, " "), cmd)
	case len(pos) == 1 && flagName != "" && pos[0] != flagName:
		return "", usageErr("two lab names: --lab %s and %s; give one", flagName, pos[0])
	case len(pos) == 1:
		return pos[0], nil
	}
	return flagName, nil
}

// pickLab resolves a lab's name: the one given, which must exist, or
// the only lab there is.
func pickLab(name string) (string, error) {
	if err := needsRoot(); err != nil {
		return "", err
	}
	if name != "" {
		if err := lab.ValidName(name); err != nil {
			return "", usageErr("lab name: %v", err)
		}
		if !labExists(name) {
			return "", noLab(name)
		}
		return name, nil
	}
	labs := lab.Labs()
	switch len(labs) {
	case 0:
		return "", usageErr("no lab is running (start one with gonat lab up FILE)")
	case 1:
		return labs[0], nil
	}
	return "", usageErr("several labs exist (%s); say which, e.g. --lab %s", strings.Join(labs, ", "), labs[0])
}

const labUpHelp = `Usage: gonat lab up FILE [--name N] [-d] [--dry-run]

Builds the topology in FILE: namespaces, TUN ports, addresses, routes; starts
its NATs (outermost first) and the commands its hosts declare, and waits
until each is ready (its 'ready' key, or 300ms without exiting); prints the
nodes with their addresses; runs until Ctrl-C, then removes everything.
Host commands' output is printed as 'HOST | line' and kept for 'gonat lab
logs'. A host command that exits non-zero during start-up fails 'lab up'
(its output shown, everything removed).
With -d it runs in the background (state, control socket and logs in
/run/gonat/NAME) and 'gonat lab down' stops it ('--keep-logs DIR' keeps the
logs); when the lab already runs from the same FILE, -d says so and exits 0.
--dry-run checks everything and prints what would be built, creating nothing
(as gonat lab validate).

Flags:
`

func labUp(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	name := fs.String("name", "", "lab name (default: the file's name = ...); also the namespace prefix")
	detach := fs.Bool("d", false, "run in the background")
	dryRun := fs.Bool("dry-run", false, "check everything and print what would be built (namespaces, addresses, NATs); create nothing")
	child := fs.Bool("daemon-child", false, internalFlag+"the background process of -d")
	trace := fs.Bool("trace", false, "print every packet before and after translation, or why it was dropped")
	verbose := fs.Bool("v", false, "print every mapping created and expired")
	webAddr := fs.String("web", "", "serve a live web view of the lab on `ADDR`, e.g. 127.0.0.1:8080")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics of every NAT on `ADDR` at /metrics")
	pcapDir := fs.String("pcap-dir", "", "write NAT.inside.pcap and NAT.outside.pcap for every NAT into `DIR` (the same packet before and after each NAT)")
	busyPoll := fs.Duration("busy-poll", 0, "every NAT reads its ports from one goroutine that spins while traffic flows and sleeps after this much quiet (`duration`, e.g. 200ms): lower latency for CPU; needs the offload backend (0: off)")
	queues := tunQueuesFlag(fs)
	perCPU := perCPUFlag(fs)
	pos, err := parseMixed(fs, args, labUpHelp)
	if err != nil {
		return err
	}
	mode, err := readMode(perCPU, *busyPoll, *queues, os.Getenv("GONAT_TUN_BACKEND"), "the offload TUN backend (GONAT_TUN_BACKEND=offload, or unset on a kernel with TUN offload)")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("want exactly one topology FILE (see gonat lab up --help)")
	}
	file := pos[0]
	topo, labName, err := loadLab(file, *name)
	if err != nil {
		return err
	}
	if *dryRun {
		return dryRunLab(topo, labName)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces and TUN devices")
	}
	if st, err := lab.ReadState(labName); err == nil && st.Alive() {
		// As compose does: asking for what already runs is not an error.
		if *detach && st.File == absPath(file) {
			fmt.Printf("lab %s is already running (pid %d, %s); gonat lab down --lab %s removes it\n", labName, st.PID, st.File, labName)
			return nil
		}
		return alreadyRunning(labName, st)
	}
	if *detach {
		var extra []string
		// The background process prints mappings and packets to its log.
		if *verbose {
			extra = append(extra, "-v")
		}
		if *trace {
			extra = append(extra, "--trace")
		}
		if *webAddr != "" {
			extra = append(extra, "--web", *webAddr)
		}
		if *metricsAddr != "" {
			extra = append(extra, "--metrics", *metricsAddr)
		}
		if *pcapDir != "" {
			extra = append(extra, "--pcap-dir", absPath(*pcapDir))
		}
		if *busyPoll > 0 {
			extra = append(extra, "--busy-poll", busyPoll.String())
		}
		if *queues > 1 {
			extra = append(extra, "--tun-queues", strconv.Itoa(*queues))
		}
		extra = append(extra, perCPU.args()...)
		return startDetached(file, labName, extra...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := lab.StateDir(labName)
	if !*child {
		// The background process's parent made the directory afresh and
		// holds its log there.
		os.RemoveAll(dir)
	}
	if err := os.MkdirAll(lab.HostLogDir(labName), 0o700); err != nil {
		return err
	}
	// After `gonat lab down`, the state directory is down's to remove: it
	// may keep the logs first (--keep-logs).
	var downAsked atomic.Bool
	defer func() {
		if !downAsked.Load() {
			os.RemoveAll(dir)
		}
	}()
	busyPollProcs(*busyPoll)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	opts := lab.Options{Name: labName, LogDir: lab.HostLogDir(labName), GonatPath: self, Trace: *trace, ReadMode: mode, Logf: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "lab %s: %s\n", labName, fmt.Sprintf(f, a...))
	}}
	if !*child {
		opts.HostOutput = os.Stdout
	}
	if *trace || *verbose {
		p := newPrinter(os.Stdout, 200)
		opts.Observer = func(natName string, ev nat.Event) {
			if !*trace && (ev.Kind == nat.EventTranslated || ev.Kind == nat.EventDrop) {
				return
			}
			p.offer(natName + ": " + ev.String())
		}
		go p.run(ctx)
	}
	if *pcapDir != "" {
		taps, closeAll, err := labPcaps(*pcapDir, topo)
		if err != nil {
			return err
		}
		defer closeAll()
		opts.Tap = taps
	}
	start := time.Now()
	l, err := lab.Up(ctx, topo, opts)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := lab.WriteState(l, absPath(file)); err != nil {
		return err
	}
	go l.ServeControl(ctx, func() { downAsked.Store(true); stop() })
	empty := ""
	if err := startObservers(ctx, l, &observers{web: webAddr, metrics: metricsAddr, pcapInside: &empty, pcapOutside: &empty}); err != nil {
		return err
	}
	printStatus(os.Stdout, l.Status())
	fmt.Printf("ready: lab %s up in %s; gonat lab exec --lab %s NODE -- CMD to use it, Ctrl-C or gonat lab down to remove it\n",
		labName, time.Since(start).Round(time.Millisecond), labName)
	<-ctx.Done()
	fmt.Fprintf(os.Stderr, "lab %s: removing\n", labName)
	return l.Close()
}

const labValidateHelp = `Usage: gonat lab validate FILE [--name N]

Checks the topology in FILE as gonat lab up does, and prints what up would
build: the namespaces, every NAT with its addresses and behaviour, every
host with its address and command. Creates nothing and needs no root.
Exit 0 when up would build it, 2 for a problem in FILE, 1 when the lab
exists already. The same as gonat lab up FILE --dry-run.

Flags:
`

func labValidate(args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	name := fs.String("name", "", "lab name (default: the file's name = ...); also the namespace prefix")
	pos, err := parseMixed(fs, args, labValidateHelp)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("want exactly one topology FILE (see gonat lab validate --help)")
	}
	topo, labName, err := loadLab(pos[0], *name)
	if err != nil {
		return err
	}
	return dryRunLab(topo, labName)
}

// loadLab reads and checks a topology file for lab up and validate, and
// names the lab: --name, else the file's name.
func loadLab(file, name string) (*lab.Topology, string, error) {
	topo, err := lab.Load(file)
	if err != nil {
		return nil, "", &exitError{code: 2, err: err}
	}
	if name == "" {
		name = topo.Name
	}
	if err := lab.ValidName(name); err != nil {
		return nil, "", usageErr("--name: %v", err)
	}
	return topo, name, nil
}

func alreadyRunning(name string, st lab.State) error {
	return fmt.Errorf("lab %s is already running (pid %d, %s); gonat lab down --lab %s removes it, or --name gives this one another name", name, st.PID, st.File, name)
}

// dryRunLab prints what lab up would build from topo as labName, after
// the checks that need nothing created: the name is free, the hosts'
// programs exist here.
func dryRunLab(topo *lab.Topology, labName string) error {
	again := "gonat lab up " + topo.File
	if labName != topo.Name {
		again += " --name " + labName
	}
	if err := topo.SetName(labName); err != nil {
		return usageErr("--name: %v", err)
	}
	if st, err := lab.ReadState(labName); err == nil && st.Alive() {
		return alreadyRunning(labName, st)
	}
	if labExists(labName) {
		return fmt.Errorf("lab %s already exists (left by a crash?); gonat lab down --lab %s removes it, or --name gives this one another name", labName, labName)
	}
	fmt.Print(topo.Describe())
	fmt.Printf("namespaces: %s\n", strings.Join(topo.Namespaces(), " "))
	for _, h := range topo.Hosts {
		if len(h.Run) == 0 || h.Run[0] == "gonat" {
			continue
		}
		if _, err := exec.LookPath(h.Run[0]); err != nil {
			fmt.Printf("warning: host %s runs %q, which is not found here (%v)\n", h.Name, h.Run[0], err)
		}
	}
	fmt.Printf("dry run: nothing created; %s builds it", again)
	if os.Geteuid() != 0 {
		fmt.Print(" (as root)")
	}
	fmt.Println()
	return nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// startDetached re-runs `gonat lab up` in its own session, waits until it
// answers on its control socket, and prints its nodes.
func startDetached(file, name string, extra ...string) error {
	dir := lab.StateDir(name)
	// What a crashed run of this name left; the child keeps this
	// directory (and the log opened below) for its whole life.
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "gonat.log")
	// Read-write: if the child fails, its words are read back through
	// this descriptor, since a child that fails removes its state
	// directory (the log's path with it) on the way out.
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, append([]string{"lab", "up", file, "--name", name, "--daemon-child"}, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		if resp, err := lab.Call(name, lab.Request{Op: "status"}); err == nil {
			printStatus(os.Stdout, resp.Status)
			if len(resp.Status.Commands) > 0 {
				fmt.Printf("host output: gonat lab logs --lab %s HOST (files in %s)\n", name, lab.HostLogDir(name))
			}
			fmt.Printf("ready: lab %s running in the background (pid %d, log %s); gonat lab down --lab %s removes it\n",
				name, cmd.Process.Pid, logPath, name)
			return nil
		}
		select {
		case err := <-exited:
			var out []byte
			if _, serr := logf.Seek(0, io.SeekStart); serr == nil {
				out, _ = io.ReadAll(logf)
			}
			return fmt.Errorf("lab %s failed to start (%v):\n%s", name, err, strings.TrimRight(string(out), "\n"))
		case <-deadline:
			return fmt.Errorf("lab %s did not come up within 60s; see %s", name, logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

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
	printCommands(w, st.Commands)
}

func short(behavior string, filtering bool) string {
	b, err := table.ParseBehavior(behavior)
	if err != nil {
		return behavior
	}
	return b.Short(filtering)
}

const labExecHelp = `Usage: gonat lab exec [--lab N] NODE -- CMD [ARGS...]

Runs CMD in NODE's network namespace and passes its exit code through.
A CMD of "gonat" is this gonat executable, as in a topology's run, even
where PATH holds another gonat or none.

Flags:
`

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
	if resp, err := lab.Call(name, lab.Request{Op: "status"}); err == nil {
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
	resp, err := lab.Call(name, lab.Request{Op: "status"})
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

const tableHelp = `Usage: gonat table [--lab N] [--nat NAME] [--json] [--watch]

The live mappings of a running NAT (gonat run, or a lab's NATs): protocol,
inside endpoint, external endpoint, the remote endpoints its filter admits
(with TCP state), expiry, packets each way. --watch streams events instead,
like conntrack -E: NEW, REFRESH (at most once a second per mapping), EXPIRE,
and DROP with its reason (filtered, no-mapping, unsolicited-syn,
bad-checksum, malformed, pool-exhausted, ttl-exceeded, hairpin-off, ...),
as text or JSON lines. In JSON, expires_in is in seconds, and every endpoint
an event's text names is a field too (DROP: source, destination, direction).
--lab names the lab or the gonat run instance (its --name, run-PID by
default); it may be left out when only one runs.

Flags:
`

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
	resp, err := lab.Call(name, lab.Request{Op: "table", NAT: *natName})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(resp.Table)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAT\tPROTO\tINSIDE\tEXTERNAL\tREMOTES (STATE)\tEXPIRES IN\tPKTS OUT/IN")
	for _, r := range resp.Table {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\n", r.NAT, r.Proto, r.Internal, r.External, strings.Join(r.Remotes, ","), time.Duration(r.ExpiresIn)*time.Second, r.PacketsOut, r.PacketsIn)
	}
	return tw.Flush()
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

func labSet(args []string, flush bool) error {
	op := "set"
	if flush {
		op = "flush"
	}
	fs := flag.NewFlagSet(op, flag.ContinueOnError)
	labName := fs.String("lab", "", "lab name")
	preset := fs.String("preset", "", "behaviour preset: "+strings.Join(table.PresetNames(), ", "))
	settings := map[string]*textFlag{}
	if !flush {
		for _, n := range lab.SettingNames() {
			f := &textFlag{isBool: lab.IsBoolSetting(n)}
			settings[n] = f
			fs.Var(f, n, "behaviour setting (as in gonat run)")
		}
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
	req := lab.Request{Op: op, NAT: pos[0], Preset: *preset, Settings: map[string]string{}}
	if *preset != "" {
		if _, err := table.Preset(*preset); err != nil {
			return usageErr("--preset: %v", err)
		}
	}
	for n, f := range settings {
		if f.set {
			var c table.Config
			if err := lab.ApplySetting(&c, n, f.val); err != nil {
				return usageErr("--%v", err)
			}
			req.Settings[n] = f.val
		}
	}
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
		if _, err := lab.Call(name, lab.Request{Op: "down"}); err == nil {
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
		lab.ApplySetting(&c, lab.SetMapping, n.Mapping)
		lab.ApplySetting(&c, lab.SetFiltering, n.Filtering)
		lab.ApplySetting(&c, lab.SetPortAssignment, n.PortAssignment)
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

// labPcaps opens two capture files per NAT of topo in dir.
func labPcaps(dir string, topo *lab.Topology) (func(natName string) forward.Tap, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, usageErr("--pcap-dir: %v", err)
	}
	type pair struct{ in, out *observe.Pcap }
	files := map[string]pair{}
	closeAll := func() {
		for _, p := range files {
			p.in.Close()
			p.out.Close()
		}
	}
	for _, n := range topo.NATs {
		in, err := observe.CreatePcap(filepath.Join(dir, n.Name+".inside.pcap"))
		if err != nil {
			closeAll()
			return nil, nil, usageErr("--pcap-dir: %v", err)
		}
		out, err := observe.CreatePcap(filepath.Join(dir, n.Name+".outside.pcap"))
		if err != nil {
			in.Close()
			closeAll()
			return nil, nil, usageErr("--pcap-dir: %v", err)
		}
		files[n.Name] = pair{in, out}
	}
	return func(natName string) forward.Tap {
		p := files[natName]
		return observe.Sides(&observe.Tap{Pcap: p.out}, &observe.Tap{Pcap: p.in})
	}, closeAll, nil
}
