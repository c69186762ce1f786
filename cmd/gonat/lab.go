package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gonat/gonat/lab"
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
  impair [--lab N] NODE SPEC        impair a NAT's uplink, a host's link to its NAT, or the link
                                    of a public host given impair, both ways,
                                    e.g. "delay=50ms loss=1%" (off: none)
  down [N] [--all] [--keep-logs DIR]  remove a lab (also after kill -9 of its process)
  verify [N] [--json]               probe every NAT (RFC 5780) and compare with its configuration
  link [--lab N] NODE down|up       a host's link to its NAT, or a NAT's uplink, fails or returns
                                    (its packets dropped and counted as link-down; mappings stay)
  rebind [--lab N] NAT [--address ADDR]
                                    the NAT's live mappings move to new external ports (and to
                                    ADDR, its new external address); flows carry on
  reboot [--lab N] NAT [--address ADDR]
                                    the NAT loses every mapping (and takes ADDR as its address)
  move [--lab N] HOST NETWORK       a host moves to another NAT's network: new address, new link
                                    (the NAT needs a free port: free-ports on its [[nat]])

N is a lab's name, given as --lab N or, where the command takes no other
argument, as the argument; it may be left out when exactly one lab runs.
All but validate need root. 'gonat lab help COMMAND' shows a command's flags.
`

func labCmd(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, labHelp)
		return usageErr("which lab command? (up, validate, exec, logs, status, table, list, set, flush, impair, down, verify, link, rebind, reboot, move)")
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
	case "impair":
		return labImpair(rest)
	case "down":
		return labDown(rest)
	case "verify":
		return labVerify(rest)
	case "link":
		return labLink(rest)
	case "rebind":
		return labRenumber(rest, false)
	case "reboot":
		return labRenumber(rest, true)
	case "move":
		return labMove(rest)
	case "-h", "--help", "help":
		if sub == "help" && len(rest) > 0 && !isHelp(rest[0]) {
			return labCmd(append(rest, "--help"))
		}
		fmt.Print(labHelp)
		return errHelp
	}
	return usageErr("unknown lab command %q (up, validate, exec, logs, status, table, list, set, flush, impair, down, verify, link, rebind, reboot, move)", sub)
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

const labValidateHelp = `Usage: gonat lab validate FILE [--name N]

Checks the topology in FILE as gonat lab up does, and prints what up would
build: the namespaces, every NAT with its addresses and behaviour, every
host with its address and command. Creates nothing and needs no root.
Exit 0 when up would build it, 2 for a problem in FILE, 1 when the lab
exists already. The same as gonat lab up FILE --dry-run.

Flags:
`

const labExecHelp = `Usage: gonat lab exec [--lab N] NODE -- CMD [ARGS...]

Runs CMD in NODE's network namespace and passes its exit code through.
A CMD of "gonat" is this gonat executable, as in a topology's run, even
where PATH holds another gonat or none.

Flags:
`

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
