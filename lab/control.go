package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
)

// StateRoot holds one directory per lab started with `gonat lab up` (and
// per `gonat run`): its state, its control socket and its hosts' logs.
// GONAT_STATE_DIR overrides it (tests keep their labs apart with it).
var StateRoot = func() string {
	if d := os.Getenv("GONAT_STATE_DIR"); d != "" {
		return d
	}
	return "/run/gonat"
}()

// StateDir is where lab name keeps its state.
func StateDir(name string) string { return filepath.Join(StateRoot, name) }

// HostLogDir is where `gonat lab up` writes lab name's host logs,
// HOST.log, for `gonat lab logs`.
func HostLogDir(name string) string { return filepath.Join(StateDir(name), "hosts") }

// State is what a running lab writes down for the commands that manage
// it later (status, set, down), also after a crash.
type State struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"` // "lab", or "run" for gonat run
	File       string    `json:"file"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	Namespaces []string  `json:"namespaces"`
}

// WriteState records l as run by this process.
func WriteState(l *Lab, file string) error {
	kind := "lab"
	if l.Topo == nil {
		kind = "run"
	}
	dir := StateDir(l.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st := State{Name: l.Name, Kind: kind, File: file, PID: os.Getpid(), Started: time.Now(), Namespaces: l.made}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

// ReadState reads lab name's state; os.ErrNotExist if there is none.
func ReadState(name string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(StateDir(name), "state.json"))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// Alive reports whether the lab's process still runs.
func (st State) Alive() bool {
	if st.PID <= 0 || syscall.Kill(st.PID, 0) != nil {
		return false
	}
	// A zombie has finished: a -d lab's process waits for whoever
	// adopted it to reap it, which may take a while.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) == 0 || f[0] != "Z"
}

// RemoveStaleRuns deletes the state of gonat run instances whose process
// is gone (killed with -9: their devices went with them, their state
// directory did not).
func RemoveStaleRuns() {
	for _, name := range Labs() {
		if st, err := ReadState(name); err == nil && st.Kind == "run" && !st.Alive() {
			os.RemoveAll(StateDir(name))
		}
	}
}

// Labs lists the labs that have state, sorted.
func Labs() []string {
	ents, _ := os.ReadDir(StateRoot)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Request is one call on a lab's control socket (JSON, one per line).
type Request struct {
	Op       string            `json:"op"`                // status | set | flush | table | watch | down
	Packets  bool              `json:"packets,omitempty"` // watch: per-packet events too
	NAT      string            `json:"nat,omitempty"`
	Preset   string            `json:"preset,omitempty"`
	Settings map[string]string `json:"settings,omitempty"`
}

// Response answers a Request.
type Response struct {
	OK     bool              `json:"ok"`
	Error  string            `json:"error,omitempty"`
	Status *LabStatus        `json:"status,omitempty"`
	Table  []observe.Mapping `json:"table,omitempty"`
}

// LabStatus describes a running lab.
type LabStatus struct {
	Name  string       `json:"name"`
	PID   int          `json:"pid"`
	Nodes []NodeStatus `json:"nodes"`
	NATs  []NATStatus  `json:"nats"`
	// Commands are the hosts' commands: running, or how they ended.
	Commands []HostCommand `json:"commands,omitempty"`
}

// NodeStatus is one row of the node table.
type NodeStatus struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Network   string   `json:"network,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// NATStatus is a NAT's behaviour and counters.
type NATStatus struct {
	Name           string            `json:"name"`
	Mapping        string            `json:"mapping"`
	Filtering      string            `json:"filtering"`
	PortAssignment string            `json:"port_assignment"`
	Hairpin        bool              `json:"hairpin"`
	Seed           int64             `json:"seed"` // of random port choice: set it to repeat a run
	Mappings       int               `json:"mappings"`
	Packets        map[string]uint64 `json:"packets"`
}

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

// ServeControl answers requests on the lab's control socket until ctx
// ends. down calls stop.
func (l *Lab) ServeControl(ctx context.Context, stop func()) error {
	dir := StateDir(l.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, "control.sock")
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	os.Chmod(path, 0o600)
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go l.handle(c, stop)
	}
}

func (l *Lab) handle(c net.Conn, stop func()) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var req Request
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	resp := Response{OK: true}
	fail := func(err error) { resp = Response{Error: err.Error()} }
	if err != nil {
		fail(fmt.Errorf("bad request: %v", err))
	} else {
		switch req.Op {
		case "status":
			resp.Status = l.Status()
		case "table":
			rows, err := l.Table(req.NAT)
			if err != nil {
				fail(err)
			}
			resp.Table = rows
		case "set", "flush":
			n := l.NAT(req.NAT)
			if n == nil {
				fail(fmt.Errorf("no NAT %q in lab %s (NATs: %s)", req.NAT, l.Name, strings.Join(l.natOrder, ", ")))
				break
			}
			if req.Op == "flush" {
				n.Flush()
			} else if err := n.Set(req.Preset, req.Settings); err != nil {
				fail(err)
			}
		case "watch":
			l.watch(c, req.Packets)
			return
		case "down":
			defer stop()
		default:
			fail(fmt.Errorf("unknown op %q (status, table, set, flush, watch, down)", req.Op))
		}
	}
	json.NewEncoder(c).Encode(resp)
}

// ErrNotRunning means no process answers for the lab.
var ErrNotRunning = errors.New("lab is not running")

// Call sends one request to lab name's control socket.
func Call(name string, req Request) (Response, error) {
	var resp Response
	c, err := net.DialTimeout("unix", filepath.Join(StateDir(name), "control.sock"), 2*time.Second)
	if err != nil {
		return resp, fmt.Errorf("%w: %s (%v)", ErrNotRunning, name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return resp, err
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return resp, fmt.Errorf("lab %s: no answer: %w", name, err)
	}
	if !resp.OK {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// watch streams events as JSON lines until the client goes away.
func (l *Lab) watch(c net.Conn, packets bool) {
	c.SetDeadline(time.Time{})
	events, cancel := l.Events.Subscribe(packets)
	defer cancel()
	gone := make(chan struct{})
	go func() {
		// The client sends nothing more; a read returning means it left.
		c.Read(make([]byte, 1))
		close(gone)
	}()
	enc := json.NewEncoder(c)
	if enc.Encode(Response{OK: true}) != nil {
		return
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok || enc.Encode(ev) != nil {
				return
			}
		case <-gone:
			return
		}
	}
}

// Watch subscribes to lab name's events; fn gets each until it returns
// false or the lab goes away.
func Watch(name string, packets bool, fn func(observe.Event) bool) error {
	c, err := net.DialTimeout("unix", filepath.Join(StateDir(name), "control.sock"), 2*time.Second)
	if err != nil {
		return fmt.Errorf("%w: %s (%v)", ErrNotRunning, name, err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(Request{Op: "watch", Packets: packets}); err != nil {
		return err
	}
	dec := json.NewDecoder(c)
	var resp Response
	if err := dec.Decode(&resp); err != nil {
		return fmt.Errorf("lab %s: no answer: %w", name, err)
	}
	if !resp.OK {
		return errors.New(resp.Error)
	}
	for {
		var ev observe.Event
		if err := dec.Decode(&ev); err != nil {
			return nil // the lab stopped
		}
		if !fn(ev) {
			return nil
		}
	}
}
