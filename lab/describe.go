package lab

// The description of a lab: the table `gonat lab validate` (and `lab up
// --dry-run`) prints, one line per node.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gonat/gonat/table"
)

// Summary describes a NAT's behaviour in one phrase, e.g.
// "preset full-cone: EIM/EIF, preserve, hairpin on", with the settings
// given over the preset in parentheses.
func (n *NATNode) Summary() string {
	var b strings.Builder
	b.WriteString("preset ")
	b.WriteString(n.Preset)
	if len(n.Settings) > 0 {
		b.WriteString(" (")
		first := true
		for _, k := range table.SettingNames() {
			if v, ok := n.Settings[k]; ok {
				if !first {
					b.WriteString(", ")
				}
				first = false
				fmt.Fprintf(&b, "%s=%s", k, v)
			}
		}
		b.WriteString(")")
	}
	c := n.Behavior
	hairpin := "off"
	if c.Hairpin {
		hairpin = "on"
	}
	fmt.Fprintf(&b, ": %s/%s, %s, hairpin %s", c.Mapping.Short(false), c.Filtering.Short(true), c.PortAssignment, hairpin)
	return b.String()
}

// Describe returns a table of the lab: one line per node (NATs outermost
// first, then hosts) with its kind, name, network (a NAT's upstream),
// addresses and behaviour (a host's command).
func (t *Topology) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s: %s, %s", t.Name, plural(len(t.NATs), "NAT"), plural(len(t.Hosts), "host"))
	if t.File != "" {
		fmt.Fprintf(&b, " (%s)", t.File)
	}
	b.WriteString("\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAME\tNETWORK\tADDRESSES\tBEHAVIOUR / RUN")
	nats := t.Order()
	listed := map[*NATNode]bool{}
	for _, n := range nats {
		listed[n] = true
	}
	for i := range t.NATs { // a hand-made topology may hold NATs Order cannot reach
		if !listed[&t.NATs[i]] {
			nats = append(nats, &t.NATs[i])
		}
	}
	for _, n := range nats {
		addrs := fmt.Sprintf("external %s, inside %s", joinAddrs(n.External), n.Inside)
		if !n.Inside.IsValid() {
			addrs = fmt.Sprintf("external %s, IPv6-only inside", joinAddrs(n.External))
		}
		if n.Inside6.IsValid() {
			addrs += fmt.Sprintf("; external6 %s, inside6 %s", joinAddrs(n.External6), n.Inside6)
		}
		beh := n.Summary()
		if im := n.impairSummary(); im != "" {
			beh += "; " + im
		}
		if m := n.mtuSummary(); m != "" {
			beh += "; " + m
		}
		if k := t.FreePortsOf(n); k > 0 {
			beh += fmt.Sprintf("; %s for hosts moving in", plural(k, "free port"))
		}
		fmt.Fprintf(w, "nat\t%s\t%s\t%s\t%s\n", n.Name, n.Upstream, addrs, beh)
	}
	for _, h := range t.Hosts {
		run := "-"
		if len(h.Run) > 0 {
			run = "run: " + quoteArgs(h.Run)
			if h.Ready.Kind != "" {
				run += " (ready " + h.Ready.String() + ")"
			}
		}
		if w := impairWays(h.Impair); w != "" {
			im := "link impair " + w
			if run == "-" {
				run = im
			} else {
				run += "; " + im
			}
		}
		if h.MTU > 0 {
			if run == "-" {
				run = ""
			} else {
				run += "; "
			}
			run += "link mtu " + strconv.Itoa(h.MTU)
		}
		fmt.Fprintf(w, "host\t%s\t%s\t%s\t%s\n", h.Name, h.Network, joinAddrs(h.Addresses), run)
	}
	w.Flush()
	for _, ev := range t.Events {
		when := "at " + ev.At.String()
		if ev.Every > 0 {
			when += ", every " + ev.Every.String()
		}
		fmt.Fprintf(&b, "event %s: %s\n", when, ev)
	}
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

func quoteArgs(args []string) string {
	s := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>()*?#~") {
			a = strconv.Quote(a)
		}
		s[i] = a
	}
	return strings.Join(s, " ")
}
