package lab

import (
	"encoding/json"
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
