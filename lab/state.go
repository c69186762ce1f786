package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
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
	Name string `json:"name"`
	Kind string `json:"kind"` // "lab", or "run" for gonat run
	File string `json:"file"`
	PID  int    `json:"pid"`
	// PIDStart is when the process started, in clock ticks after boot
	// (field 22 of /proc/PID/stat): a PID reused by another process
	// after a crash does not pass for the lab's.
	PIDStart   uint64    `json:"pid_start,omitempty"`
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
	if ps, err := readProcStat(st.PID); err == nil {
		st.PIDStart = ps.start
	}
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

// Alive reports whether the lab's process still runs. A process that
// is exiting (killed, its devices going) or a zombie (finished, waiting
// for its parent to reap it) no longer runs, nor does another process
// that got the PID later.
func (st State) Alive() bool {
	if st.PID <= 0 || syscall.Kill(st.PID, 0) != nil {
		return false
	}
	ps, err := readProcStat(st.PID)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	if st.PIDStart != 0 && ps.start != st.PIDStart {
		return false
	}
	return ps.state != 'Z' && ps.state != 'X' && ps.flags&pfExiting == 0
}

// pfExiting is the kernel's PF_EXITING task flag: set as soon as the
// process starts to exit, long before it is a zombie when it has
// devices to tear down.
const pfExiting = 0x4

// procStat is what Alive reads of /proc/PID/stat.
type procStat struct {
	state byte
	flags uint64
	start uint64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads "PID (COMM) STATE PPID ..." (proc(5)); COMM may
// hold spaces and parentheses, so the fields start after the last ')'.
func parseProcStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), f[6] field 9 (flags), f[19] field 22
	// (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed stat %q", s)
	}
	flags, err1 := strconv.ParseUint(f[6], 10, 64)
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("malformed stat %q", s)
	}
	return procStat{state: f[0][0], flags: flags, start: start}, nil
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
