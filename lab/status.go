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
	for _, n := range l.Nodes() {
		ns := NodeStatus{Name: n.Name, Kind: n.Kind, Namespace: n.Namespace, Network: n.Network}
		for _, a := range n.Addresses {
			ns.Addresses = append(ns.Addresses, a.String())
		}
		st.Nodes = append(st.Nodes, ns)
	}
	now := time.Now()
	for _, name := range l.natOrder {
		e := l.nats[name].Engine
		c := e.Config().Table
		s := NATStatus{Name: name, Mapping: c.Mapping.String(), Filtering: c.Filtering.String(),
			PortAssignment: c.PortAssignment.String(), Hairpin: c.Hairpin, Seed: c.Seed, Packets: map[string]uint64{}}
		e.Mappings(now, func(nat.MappingInfo) { s.Mappings++ })
		s.ICMPErrorsLimited = e.ICMPErrorsLimited()
		for _, v := range nat.Verdicts() {
			if n := e.Count(v); n > 0 {
				s.Packets[v.String()] = n
			}
		}
		st.NATs = append(st.NATs, s)
	}
	st.Commands = l.HostCommands()
	return st
}

// Table lists the live mappings of one NAT ("" for all).
func (l *Lab) Table(natName string) ([]observe.Mapping, error) {
	if natName != "" && l.nats[natName] == nil {
		return nil, fmt.Errorf("no NAT %q in lab %s (NATs: %s)", natName, l.Name, strings.Join(l.natOrder, ", "))
	}
	var rows []observe.Mapping
	now := time.Now()
	for _, name := range l.natOrder {
		if natName == "" || name == natName {
			rows = append(rows, observe.Mappings(name, l.nats[name].Engine, now)...)
		}
	}
	return rows, nil
}
