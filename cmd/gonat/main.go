// Command gonat is a userspace NAT router emulator for Linux: it puts a
// NAT with any RFC 4787 behaviour between network namespaces, and ships
// the tools NATs are studied with.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

const usage = `gonat: a userspace NAT router emulator for Linux.

gonat captures what hosts in private network namespaces send through TUN
devices, rewrites their source address and port to an external address
(the NAT's mapping), and rewrites the replies back, with any NAT behaviour
that exists in the wild: full cone, restricted cone, port-restricted cone,
symmetric, Linux MASQUERADE, or any RFC 4787 mapping x filtering pair.

Usage:
  gonat demo                  build a throwaway lab and show each NAT type at work
  gonat run [flags]           run one NAT between existing namespaces
  gonat lab up FILE           build a whole network from a topology file (see gonat lab --help)
  gonat table [--watch]       the live mappings of a running NAT or lab; --watch streams events
  gonat stun-server [flags]   an RFC 5780 STUN server (behaviour discovery)
  gonat probe [flags]         discover the NAT in front of this host (RFC 5780)
  gonat rendezvous [flags]    the referral server of hole punching
  gonat peer [flags]          a hole-punching peer: register, exchange candidates, punch, report
  gonat matrix [flags]        hole punching between every pair of NAT types, observed vs expected
  gonat he HOST PORT          race IPv6 and IPv4 connections (Happy Eyeballs, RFC 8305), timed
  gonat completion SHELL      shell completion for bash, zsh or fish
  gonat version               print the version and the commit it was built from

Run 'gonat help COMMAND' (or 'gonat COMMAND --help') for a command's flags. gonat needs root (or
CAP_NET_ADMIN + CAP_SYS_ADMIN) to create TUN devices and enter namespaces.
`

// exitError carries the exit status with the message: 2 for bad usage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(mainCode(os.Args[1:]))
}

func mainCode(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = runCmd(rest)
	case "demo":
		err = demoCmd(rest)
	case "lab":
		err = labCmd(rest)
	case "table":
		err = labTable(rest)
	case "stun-server":
		err = stunServerCmd(rest)
	case "probe":
		err = probeCmd(rest)
	case "rendezvous":
		err = rendezvousCmd(rest)
	case "peer":
		err = peerCmd(rest)
	case "matrix":
		err = matrixCmd(rest)
	case "he":
		err = heCmd(rest)
	case "completion":
		err = completionCmd(rest)
	case "version", "--version", "-version":
		err = versionCmd(rest)
	case "help", "-h", "--help", "-help":
		// gonat help COMMAND [SUBCOMMAND] is COMMAND [SUBCOMMAND] --help.
		if len(rest) == 0 || isHelp(rest[0]) || strings.HasPrefix(rest[0], "-") {
			fmt.Print(usage)
			return 0
		}
		return mainCode(append(rest, "--help"))
	default:
		fmt.Fprintf(os.Stderr, "gonat: unknown command %q (commands: %s; see gonat --help)\n", cmd, strings.Join(commandNames(), ", "))
		return 2
	}
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintf(os.Stderr, "gonat %s: %v\n", cmd, err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
