package lab

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
)

// Status describes the lab.
func (l *Lab) Status() *LabStatus {
	st := &LabStatus{Name: l.Name, PID: os.Getpid()}
	l.mu.Lock() // Renumber changes a NAT's addresses
	for _, n := range l.Nodes() {
		ns := NodeStatus{Name: n.Name, Kind: n.Kind, Namespace: n.Namespace, Network: n.Network, Link: l.linkStatus(n.Name)}
		for _, a := range n.Addresses {
			ns.Addresses = append(ns.Addresses, a.String())
		}
		st.Nodes = append(st.Nodes, ns)
	}
	l.mu.Unlock()
	now := time.Now()
	for _, name := range l.natOrder {
		e := l.nats[name].Engine
		c := e.Config().Table
		s := NATStatus{NAT: observe.NAT{Name: name, Mapping: c.Mapping.String(), Filtering: c.Filtering.String(),
			PortAssignment: c.PortAssignment.String(), Hairpin: c.Hairpin, Packets: map[string]uint64{}}, Seed: c.Seed}
		for _, n := range e.LiveMappings(now) {
			s.Mappings += n
		}
		s.ICMPErrorsLimited = e.ICMPErrorsLimited()
		for _, v := range []nat.Verdict{nat.Forward, nat.HeldFragment} {
			if n := e.Count(v); n > 0 {
				s.Packets[v.String()] = n
			}
		}
		l.nats[name].Drops().Drops(func(reason string, n uint64) {
			if n > 0 {
				s.Packets[reason] = n
			}
		})
		if r := l.nats[name].Router; r != nil && r.Fragmented() > 0 {
			s.Packets["fragmented"] = r.Fragmented() // forwarded, and cut for a smaller link
		}
		st.NATs = append(st.NATs, s)
	}
	st.Commands = l.HostCommands()
	return st
}

// tablePage bounds the copies one table request holds at a time: a page
// of mappings of this many entries, a mapping and each of its sessions
// counting one (nat.Engine.MappingPages).
const tablePage = 1024

// checkNAT reports an error unless natName is "" or one of the lab's NATs.
func (l *Lab) checkNAT(natName string) error {
	if natName != "" && l.nats[natName] == nil {
		return fmt.Errorf("no NAT %q in lab %s (NATs: %s)", natName, l.Name, strings.Join(l.natOrder, ", "))
	}
	return nil
}

// TablePages lists the live mappings of one NAT ("" for all), NAT by NAT
// in the lab's order, a page at a time: fn gets each page (which it must
// not keep) until it returns an error, which TablePages returns.
func (l *Lab) TablePages(natName string, fn func([]observe.Mapping) error) error {
	if err := l.checkNAT(natName); err != nil {
		return err
	}
	var rows []observe.Mapping
	var err error
	now := time.Now()
	for _, name := range l.natOrder {
		if natName != "" && name != natName {
			continue
		}
		l.nats[name].Engine.MappingPages(now, tablePage, func(page []nat.MappingInfo) bool {
			rows = rows[:0]
			for _, m := range page {
				rows = append(rows, observe.MappingOf(name, m, now))
			}
			err = fn(rows)
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Drops is every drop of the NAT, by reason: its engine's and its links'.
func (n *NAT) Drops() observe.DropCounter { return observe.NATDrops(n.Engine, n.Router) }

// dropLinesEvery is how often a watcher of packet events is told of the
// drops no packet event reports: those of the links beyond the engines.
const dropLinesEvery = time.Second

// linkDropLines makes a DropLines for the links of each of the lab's
// NATs and for each public host's wire, their counts taken: each later
// Poll reports what rose since.
func (l *Lab) linkDropLines() []*observe.DropLines {
	var out []*observe.DropLines
	for _, name := range l.natOrder {
		if r := l.nats[name].Router; r != nil {
			d := &observe.DropLines{NAT: name, Counter: r}
			d.Poll(time.Now())
			out = append(out, d)
		}
	}
	return append(out, l.wireDropLines()...)
}

// pollDropLines polls each of ds and hands every event to emit until
// emit returns false; it reports whether all were taken.
func pollDropLines(ds []*observe.DropLines, emit func(observe.Event) bool) bool {
	now := time.Now()
	for _, d := range ds {
		for _, ev := range d.Poll(now) {
			if !emit(ev) {
				return false
			}
		}
	}
	return true
}
