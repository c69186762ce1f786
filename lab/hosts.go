package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// How long Up watches host commands that declare no readiness before it
// calls them started: long enough to catch bad arguments and commands
// that exit at once.
const startGrace = 300 * time.Millisecond

// DefaultReadyTimeout bounds the wait for hosts' `ready` conditions.
const DefaultReadyTimeout = 30 * time.Second

// tailLines is how many lines of a failed command's output are shown.
const tailLines = 10

// outputKeep is how much of each host's output stays in memory.
const outputKeep = 64 << 10

// HostCommand is a host's command and what became of it.
type HostCommand struct {
	Host    string   `json:"host"`
	Command []string `json:"command"`
	PID     int      `json:"pid"`
	// State is "running", "exited N", or "killed by SIGNAL".
	State   string `json:"state"`
	Running bool   `json:"running"`
	// ExitCode is set once the command exited by itself.
	ExitCode *int `json:"exit_code,omitempty"`
	// Log is the file holding all its output (Options.LogDir).
	Log string `json:"log,omitempty"`
	// LastOutput holds its last lines when it exited non-zero or was
	// killed by a signal not of the lab's making.
	LastOutput []string `json:"last_output,omitempty"`
}

// CommandLine is Command as one line, quoted where needed.
func (c HostCommand) CommandLine() string { return quoteArgs(c.Command) }

// Failed reports whether the command ended badly.
func (c HostCommand) Failed() bool {
	return !c.Running && (c.ExitCode == nil || *c.ExitCode != 0)
}

// hostProc is one running host command.
type hostProc struct {
	host      string
	namespace string
	argv      []string // as the topology says
	ready     Ready
	cmd       *exec.Cmd
	out       *hostOutput
	log       string
	done      chan struct{} // closed when it has exited and its output is in
}

func (p *hostProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// status describes p; stopping says the lab itself is ending it.
func (p *hostProc) status(stopping bool) HostCommand {
	c := HostCommand{Host: p.host, Command: p.argv, Log: p.log, State: "running", Running: true}
	if p.cmd.Process != nil {
		c.PID = p.cmd.Process.Pid
	}
	if !p.exited() {
		return c
	}
	c.Running = false
	ps := p.cmd.ProcessState
	ws, _ := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		c.State = "killed by " + signalName(ws.Signal())
	} else {
		code := ps.ExitCode()
		c.ExitCode = &code
		c.State = fmt.Sprintf("exited %d", code)
	}
	if c.Failed() && !stopping {
		c.LastOutput = p.out.lastLines(tailLines)
	}
	return c
}

func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
}

// isReady checks p's readiness condition once.
func (p *hostProc) isReady() bool {
	switch p.ready.Kind {
	case "":
		return true
	case "log":
		return p.out.seen()
	}
	return p.ready.socketReady(p.cmd.Process.Pid, p.namespace)
}

// hostOutput receives a host command's stdout and stderr: into its log
// file, line by line to the echo writer as "HOST | line", and the last
// outputKeep bytes into memory (for status and test failures).
type hostOutput struct {
	mu      sync.Mutex
	prefix  string
	file    *os.File
	echo    *lockedWriter
	partial []byte // echo: a line not yet ended
	tail    []byte
	want    string // readiness text
	matched bool
}

func (o *hostOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.file != nil {
		o.file.Write(b)
	}
	if o.echo != nil {
		o.partial = append(o.partial, b...)
		for {
			i := bytes.IndexByte(o.partial, '\n')
			if i < 0 {
				break
			}
			o.echo.line(o.prefix, o.partial[:i+1])
			o.partial = o.partial[i+1:]
		}
	}
	keep := len(o.want) + len(b)
	o.tail = append(o.tail, b...)
	if o.want != "" && !o.matched {
		from := max(0, len(o.tail)-keep)
		o.matched = bytes.Contains(o.tail[from:], []byte(o.want))
	}
	if len(o.tail) > outputKeep {
		o.tail = append(o.tail[:0], o.tail[len(o.tail)-outputKeep:]...)
	}
	return len(b), nil
}

func (o *hostOutput) seen() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.matched
}

// close flushes an unfinished last line and closes the log file.
func (o *hostOutput) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.echo != nil && len(o.partial) > 0 {
		o.echo.line(o.prefix, append(o.partial, '\n'))
		o.partial = nil
	}
	if o.file != nil {
		o.file.Close()
		o.file = nil
	}
}

func (o *hostOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.tail)
}

func (o *hostOutput) lastLines(n int) []string {
	lines := strings.Split(strings.TrimRight(o.String(), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// lockedWriter keeps the hosts' echoed lines whole.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) line(prefix string, b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w.Write(append([]byte(prefix), b...))
}

// resolveGonat finds what a host's "gonat" runs: Options.GonatPath, else
// gonat on PATH, which is an error only when a host command needs it. The
// running executable is never assumed to be gonat: in a test binary that
// would run the tests again, from every host.
func resolveGonat(topo *Topology, opt Options) (string, error) {
	if opt.GonatPath != "" {
		return opt.GonatPath, nil
	}
	var users []string
	for _, h := range topo.Hosts {
		if len(h.Run) > 0 && h.Run[0] == "gonat" {
			users = append(users, h.Name)
		}
	}
	p, err := exec.LookPath("gonat")
	if err != nil {
		if len(users) == 0 {
			return "", nil
		}
		return "", fmt.Errorf("host %s runs gonat, but gonat is not on PATH and Options.GonatPath is empty: install it (make install), or set Options.GonatPath (from Go tests, lab/labtest builds it or takes $GONAT_BIN)",
			strings.Join(users, ", "))
	}
	return filepath.Abs(p)
}

// startHosts starts every host's command, output to logDir/HOST.log and
// echo.
func (l *Lab) startHosts(topo *Topology, gonat, logDir string, echo io.Writer, logf func(string, ...any)) error {
	var lw *lockedWriter
	if echo != nil {
		lw = &lockedWriter{w: echo}
	}
	width := 0
	for _, h := range topo.Hosts {
		if len(h.Run) > 0 {
			width = max(width, len(h.Name))
		}
	}
	for _, h := range topo.Hosts {
		if len(h.Run) == 0 {
			continue
		}
		argv := append([]string(nil), h.Run...)
		if argv[0] == "gonat" {
			argv[0] = gonat
		}
		p := &hostProc{host: h.Name, namespace: l.nodes[h.Name].Namespace, argv: h.Run, ready: h.Ready, done: make(chan struct{}),
			out: &hostOutput{prefix: fmt.Sprintf("%-*s | ", width, h.Name), echo: lw}}
		if h.Ready.Kind == "log" {
			p.out.want = h.Ready.Text
		}
		if logDir != "" {
			p.log = filepath.Join(logDir, h.Name+".log")
			f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			p.out.file = f
		}
		p.cmd = l.nodes[h.Name].Command(argv[0], argv[1:]...)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		// Dies with us, even after kill -9.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		// A child it left behind may hold its output open: Wait returns
		// anyway.
		p.cmd.WaitDelay = time.Second
		logf("starting on %s: %s", h.Name, quoteArgs(h.Run))
		if err := p.cmd.Start(); err != nil {
			p.out.close()
			return fmt.Errorf("host %s: run %s: %w", h.Name, quoteArgs(h.Run), err)
		}
		l.mu.Lock()
		l.procs = append(l.procs, p)
		l.mu.Unlock()
		go func() {
			p.cmd.Wait()
			p.out.close()
			close(p.done)
			l.mu.Lock()
			closing := l.closed
			l.mu.Unlock()
			if !closing {
				logf("host %s %s", p.host, p.status(false).State)
			}
		}()
	}
	return nil
}

// awaitHosts waits until every host command is ready (its `ready`
// condition holds, or it has run startGrace without exiting), and fails
// as soon as one exits non-zero, or exits before it was ready.
func (l *Lab) awaitHosts(ctx context.Context, timeout time.Duration, logf func(string, ...any)) error {
	l.mu.Lock()
	procs := append([]*hostProc(nil), l.procs...)
	l.mu.Unlock()
	if len(procs) == 0 {
		return nil
	}
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	start := time.Now()
	ready := make([]bool, len(procs))
	for {
		all := true
		for i, p := range procs {
			// Exit first: a command may be ready a moment before it dies.
			if p.exited() {
				st := p.status(false)
				if st.Failed() {
					return startFailure(st, "during start-up", p.out)
				}
				if !ready[i] && !p.isReady() {
					return startFailure(st, "before it was ready ("+p.ready.waiting()+")", p.out)
				}
				ready[i] = true
				continue
			}
			if !ready[i] && p.isReady() {
				ready[i] = true
				if p.ready.Kind != "" {
					logf("host %s ready (%s) after %s", p.host, p.ready, time.Since(start).Round(time.Millisecond))
				}
			}
			all = all && ready[i]
		}
		if all && time.Since(start) >= startGrace {
			return nil
		}
		if time.Since(start) > timeout {
			for i, p := range procs {
				if !ready[i] {
					return startFailure(p.status(false), fmt.Sprintf("not ready after %s: %s", timeout, p.ready.waiting()), p.out)
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StartError is a host command that failed while the lab started.
type StartError struct {
	Command HostCommand
	Why     string
	Output  []string // its last lines
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s: %s %s", e.Command.Host, quoteArgs(e.Command.Command), e.Why)
	if len(e.Output) == 0 {
		b.WriteString("; it printed nothing")
	} else {
		fmt.Fprintf(&b, "; its last output:")
		for _, l := range e.Output {
			fmt.Fprintf(&b, "\n  %s | %s", e.Command.Host, l)
		}
	}
	return b.String()
}

func startFailure(st HostCommand, why string, out *hostOutput) error {
	if !st.Running {
		why = st.State + " " + why
	}
	return &StartError{Command: st, Why: why, Output: out.lastLines(tailLines)}
}

// HostCommands lists the hosts' commands and their state, in topology
// order.
func (l *Lab) HostCommands() []HostCommand {
	l.mu.Lock()
	procs := append([]*hostProc(nil), l.procs...)
	stopping := l.closed
	l.mu.Unlock()
	out := make([]HostCommand, 0, len(procs))
	for _, p := range procs {
		out = append(out, p.status(stopping))
	}
	return out
}

// HostOutput returns the last output (up to 64 KiB) of host's command,
// also after the lab closed.
func (l *Lab) HostOutput(host string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for _, p := range l.procs {
		if p.host == host {
			return p.out.String(), nil
		}
		names = append(names, p.host)
	}
	return "", fmt.Errorf("host %q runs no command in lab %s (hosts with commands: %s)", host, l.Name, strings.Join(names, ", "))
}

// stopHosts ends every host command: SIGTERM to its process group, then
// SIGKILL for those still there after 2s.
func (l *Lab) stopHosts() {
	l.mu.Lock()
	procs := append([]*hostProc(nil), l.procs...)
	l.mu.Unlock()
	// The whole group: a command may have started children of its own.
	for _, p := range procs {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(time.Until(deadline)):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}
