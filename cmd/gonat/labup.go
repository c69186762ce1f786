package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/web"
)

func labUp(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	name := fs.String("name", "", "lab name (default: the file's name = ...); also the namespace prefix")
	detach := fs.Bool("d", false, "run in the background")
	dryRun := fs.Bool("dry-run", false, "check everything and print what would be built (namespaces, addresses, NATs); create nothing")
	child := fs.Bool("daemon-child", false, internalFlag+"the background process of -d")
	trace := fs.Bool("trace", false, "print every packet before and after translation, or why it was dropped")
	verbose := fs.Bool("v", false, "print every mapping created and expired")
	webAddr := fs.String("web", "", "serve a live web view of the lab on `ADDR`, e.g. 127.0.0.1:8080; loopback only unless --expose")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics of every NAT on `ADDR` at /metrics; loopback only unless --expose")
	webStreams := webStreamsFlag(fs)
	expose := exposeFlag(fs)
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
	if err := checkExposure(*webAddr, *metricsAddr, *expose, *webStreams); err != nil {
		return err
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
	if !*child {
		warnWritable(os.Stderr, file)
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
		if *expose {
			extra = append(extra, "--expose")
		}
		if *webStreams != web.DefaultMaxStreams {
			extra = append(extra, "--web-streams", strconv.Itoa(*webStreams))
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
	// Its namespaces are its NATs': no gonat run may put a NAT there.
	release, err := lab.ClaimNamespaces(l.Namespaces())
	if err != nil {
		return err
	}
	defer release()
	if err := lab.WriteState(l, absPath(file)); err != nil {
		return err
	}
	go l.ServeControl(ctx, func() { downAsked.Store(true); stop() })
	empty := ""
	if err := startObservers(ctx, l, &observers{web: webAddr, webStreams: webStreams, metrics: metricsAddr, expose: expose, pcapInside: &empty, pcapOutside: &empty}); err != nil {
		return err
	}
	l.StartEvents(opts.Logf)
	printStatus(os.Stdout, l.Status())
	fmt.Printf("ready: lab %s up in %s; gonat lab exec --lab %s NODE -- CMD to use it, Ctrl-C or gonat lab down to remove it\n",
		labName, time.Since(start).Round(time.Millisecond), labName)
	<-ctx.Done()
	fmt.Fprintf(os.Stderr, "lab %s: removing\n", labName)
	return l.Close()
}

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
		if resp, err := lab.Call(name, lab.Request{Op: lab.OpStatus}); err == nil {
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

// warnWritable warns when the topology file can be changed by users other
// than its owner: its hosts' commands run as root.
func warnWritable(w io.Writer, file string) {
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm()&0o022 == 0 {
		return
	}
	who := "group and others"
	switch fi.Mode().Perm() & 0o022 {
	case 0o020:
		who = "its group"
	case 0o002:
		who = "others"
	}
	fmt.Fprintf(w, "gonat: warning: %s is writable by %s (mode %04o), and its hosts' commands run as root; chmod go-w %s\n",
		file, who, fi.Mode().Perm(), file)
}
