// Package browser drives a real headless Chromium over the DevTools
// protocol for tests of gonat's web view (the web package's own tests
// and the end-to-end suite).
package browser

// The page in a real browser: headless Chromium loads it from a fake
// source on 127.0.0.1, and the test reads the live DOM through the
// DevTools protocol while the source changes underneath.
//
// The protocol runs over --remote-debugging-pipe (Chromium reads commands
// from fd 3 and writes replies and events to fd 4, each message JSON
// ending in a NUL byte), so no WebSocket client and no extra module are
// needed. `chromium --dump-dom --virtual-time-budget=N` cannot do this
// job: virtual time waits for pending network fetches, and the page's
// event stream never finishes, so the dump never comes (measured: still
// hanging after 120 s); and the source changes in real time anyway.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonat/gonat/internal/privtest"
)

// Timeout bounds each browser run, start to finish.
const Timeout = 30 * time.Second

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type cdpMsg struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
}

type Browser struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   *os.File // commands: Chromium's fd 3
	out  *os.File // replies and events: Chromium's fd 4
	done chan struct{}

	wmu    sync.Mutex
	nextID atomic.Int64

	mu       sync.Mutex
	pending  map[int64]chan cdpMsg
	loaded   chan string // sessions whose page fired its load event
	problems []string    // script exceptions and console/log errors
	stderr   tailBuffer
}

// tailBuffer keeps the end of Chromium's stderr for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > 8<<10 {
		w.b = w.b[len(w.b)-8<<10:]
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// Start starts headless Chromium in a process group of its own,
// with a fresh profile. The browser is killed, the whole group, when the
// test ends or after Timeout, whichever comes first.
func Start(t *testing.T) *Browser {
	path := privtest.Tool(t, "chromium")
	// Profile, configuration and caches (the crash handler's database
	// too) all go in a directory of the test's own.
	dir := t.TempDir()
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{t: t, in: cmdW, out: resR, done: make(chan struct{}),
		pending: map[int64]chan cdpMsg{}, loaded: make(chan string, 16)}
	b.cmd = exec.Command(path,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
		"--no-default-browser-check", "--password-store=basic", "--use-mock-keychain",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--remote-debugging-pipe", "--window-size=1280,900", "about:blank")
	b.cmd.ExtraFiles = []*os.File{cmdR, resW} // fds 3 and 4
	b.cmd.Stdout = &b.stderr
	b.cmd.Stderr = &b.stderr
	b.cmd.Env = append(os.Environ(), "TZ=UTC", "HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	cmdR.Close()
	resW.Close()
	go b.read()
	exited := make(chan struct{})
	go func() {
		b.cmd.Wait()
		close(exited)
	}()
	watchdog := time.AfterFunc(Timeout, b.kill)
	// Registered after t.TempDir, so it runs before the profile is
	// removed.
	t.Cleanup(func() {
		watchdog.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b.call(ctx, "", "Browser.close", nil, nil)
		cancel()
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
		}
		b.kill() // the whole group: renderers, GPU and utility processes
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("chromium (pid %d) did not exit", b.cmd.Process.Pid)
		}
		b.in.Close()
		b.reap(dir)
	})
	return b
}

func (b *Browser) kill() {
	syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
}

// leftovers lists the live processes of this browser: those in its
// process group, and those that left it (Chromium's crash handler starts
// in a session of its own) but carry its temporary directory, dir, on
// their command line.
func leftovers(pgid int, dir string) map[int]string {
	left := map[int]string{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		if f[2] == strconv.Itoa(pgid) || bytes.Contains(cmdline, []byte(dir)) {
			left[pid] = s[:i+1]
		}
	}
	return left
}

// reap kills what is left of the browser and reports what will not go.
func (b *Browser) reap(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := leftovers(b.cmd.Process.Pid, dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.t.Errorf("chromium processes left behind: %v", left)
			return
		}
		for pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *Browser) read() {
	defer close(b.done)
	r := bufio.NewReader(b.out)
	for {
		data, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMsg
		if json.Unmarshal(data[:len(data)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.pending[m.ID]
			delete(b.pending, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		switch m.Method {
		case "Page.loadEventFired":
			select {
			case b.loaded <- m.SessionID:
			default:
			}
		case "Runtime.exceptionThrown":
			var p struct {
				ExceptionDetails struct {
					Text      string `json:"text"`
					Exception struct {
						Description string `json:"description"`
					} `json:"exception"`
				} `json:"exceptionDetails"`
			}
			json.Unmarshal(m.Params, &p)
			b.problem("script exception: " + p.ExceptionDetails.Text + " " + p.ExceptionDetails.Exception.Description)
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Level, Source, Text, URL string
				} `json:"entry"`
			}
			json.Unmarshal(m.Params, &p)
			if p.Entry.Level == "error" {
				b.problem(fmt.Sprintf("%s error: %s %s", p.Entry.Source, p.Entry.Text, p.Entry.URL))
			}
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string            `json:"type"`
				Args []json.RawMessage `json:"args"`
			}
			json.Unmarshal(m.Params, &p)
			if p.Type == "error" || p.Type == "assert" {
				b.problem(fmt.Sprintf("console.%s: %s", p.Type, p.Args))
			}
		}
	}
}

func (b *Browser) problem(s string) {
	b.mu.Lock()
	b.problems = append(b.problems, s)
	b.mu.Unlock()
}

// call sends one command (to a page when session is set) and decodes its
// result into result.
func (b *Browser) call(ctx context.Context, session, method string, params, result any) error {
	id := b.nextID.Add(1)
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	ch := make(chan cdpMsg, 1)
	b.mu.Lock()
	b.pending[id] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
	}()
	b.wmu.Lock()
	_, err = b.in.Write(append(data, 0))
	b.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %v", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %v", method, ctx.Err())
	case <-b.done:
		return fmt.Errorf("%s: chromium went away; its output:\n%s", method, b.stderr.String())
	}
}

func (b *Browser) Must(ctx context.Context, session, method string, params, result any) {
	b.t.Helper()
	if err := b.call(ctx, session, method, params, result); err != nil {
		b.t.Fatal(err)
	}
}

// open makes a page of width x height CSS pixels and returns its session.
func (b *Browser) Open(ctx context.Context, width, height int) string {
	b.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.Must(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.Must(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	s := attached.SessionID
	for _, domain := range []string{"Page", "Runtime", "Log"} {
		b.Must(ctx, s, domain+".enable", nil, nil)
	}
	b.Resize(ctx, s, width, height)
	return s
}

func (b *Browser) Resize(ctx context.Context, session string, width, height int) {
	b.t.Helper()
	b.Must(ctx, session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
}

func (b *Browser) Navigate(ctx context.Context, session, url string) {
	b.t.Helper()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	b.Must(ctx, session, "Page.navigate", map[string]any{"url": url}, &nav)
	if nav.ErrorText != "" {
		b.t.Fatalf("navigate %s: %s", url, nav.ErrorText)
	}
	for {
		select {
		case s := <-b.loaded:
			if s == session {
				return
			}
		case <-ctx.Done():
			b.t.Fatalf("%s did not load: %v", url, ctx.Err())
		}
	}
}

// eval runs a JavaScript expression in the page and decodes its value.
func (b *Browser) Eval(ctx context.Context, session, expr string, out any) {
	b.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	b.Must(ctx, session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		b.t.Fatalf("eval %s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			b.t.Fatalf("eval %s: %v (%s)", expr, err, r.Result.Value)
		}
	}
}

// PageState is what the test reads from the live DOM.
type PageState struct {
	Title    string   `json:"title"`
	Live     bool     `json:"live"`
	Marker   bool     `json:"marker"` // set by the test: gone if the page reloaded
	Mappings []string `json:"mappings"`
	Counts   []string `json:"counts"`
	Log      []struct {
		Kind   string `json:"kind"`
		Text   string `json:"text"`
		Reason string `json:"reason"`
		Live   bool   `json:"live"` // added by the script, not rendered by the server
	} `json:"log"`
}

const stateJS = `({
  title: document.title,
  live: document.getElementById('status').classList.contains('live'),
  marker: window.__gonatTestMarker === 42,
  mappings: Array.from(document.querySelectorAll('table.mappings tbody tr[data-key]'), tr => tr.innerText),
  counts: Array.from(document.querySelectorAll('[data-count-nat]'), e => e.textContent),
  log: Array.from(document.querySelectorAll('#log tbody tr'), tr => ({
    kind: tr.dataset.kind,
    text: tr.querySelector('.text').textContent,
    reason: (tr.querySelector('.reason') || {}).textContent || '',
    live: tr.classList.contains('fresh'),
  })),
})`

func (b *Browser) State(ctx context.Context, session string) PageState {
	b.t.Helper()
	var s PageState
	b.Eval(ctx, session, stateJS, &s)
	return s
}

// WaitState polls the DOM until cond holds.
func (b *Browser) WaitState(ctx context.Context, session, what string, cond func(PageState) bool) PageState {
	b.t.Helper()
	for {
		s := b.State(ctx, session)
		if cond(s) {
			return s
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("timed out waiting for %s; the page has: %+v", what, s)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *Browser) CheckProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("in the browser: %s", p)
	}
}

// Screenshot captures the whole page as a PNG.
func (b *Browser) Screenshot(ctx context.Context, session string, width int) []byte {
	b.t.Helper()
	// Still rows, not half-faded highlights.
	b.Must(ctx, session, "Emulation.setEmulatedMedia", map[string]any{
		"features": []map[string]string{{"name": "prefers-reduced-motion", "value": "reduce"}}}, nil)
	var height int
	b.Eval(ctx, session, `Math.ceil(document.documentElement.getBoundingClientRect().height)`, &height)
	b.Resize(ctx, session, width, height)
	// Let layout settle after the resize.
	b.Eval(ctx, session, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, nil)
	var shot struct {
		Data string `json:"data"`
	}
	b.Must(ctx, session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	return png
}

func HasMapping(s PageState, internal string) bool {
	for _, m := range s.Mappings {
		if strings.Contains(m, internal) {
			return true
		}
	}
	return false
}

// ScrollbarWidth is room left for a classic scrollbar: headless Chromium
// hides them (--hide-scrollbars), a desktop browser's takes about 15 px
// of the page's width.
const ScrollbarWidth = 17

// Layout is where the page's parts are, in CSS pixels of the viewport.
type Layout struct {
	ViewportWidth  float64 `json:"viewportWidth"`
	ViewportHeight float64 `json:"viewportHeight"`
	ScrollY        float64 `json:"scrollY"`
	LogTop         float64 `json:"logTop"`       // the event log panel's top
	LogRowBottom   float64 `json:"logRowBottom"` // the newest event row's bottom (0: no rows)
	LogVisible     float64 `json:"logVisible"`   // height of the log's scroll box inside the viewport
	Tables         []struct {
		NAT          string  `json:"nat"`
		Width        float64 `json:"width"`        // the scroll box around the mapping table
		ScrollWidth  float64 `json:"scrollWidth"`  // what scrolls in it
		MinWidth     float64 `json:"minWidth"`     // the table at its narrowest
		LastColRight float64 `json:"lastColRight"` // the last column's right edge
		BoxRight     float64 `json:"boxRight"`     // the scroll box's right edge
	} `json:"tables"`
}

const layoutJS = `(() => {
  const log = document.querySelector('.log-panel').getBoundingClientRect();
  const row = document.querySelector('#log tbody tr');
  const scroll = document.querySelector('.log-scroll').getBoundingClientRect();
  return {
    viewportWidth: innerWidth, viewportHeight: innerHeight, scrollY: scrollY,
    logTop: log.top,
    logRowBottom: row ? row.getBoundingClientRect().bottom : 0,
    logVisible: Math.max(0, Math.min(scroll.bottom, innerHeight) - Math.max(scroll.top, 0)),
    tables: Array.from(document.querySelectorAll('section.nat'), sec => {
      const box = sec.querySelector('.table-scroll');
      const table = box.querySelector('table');
      const ths = table.querySelectorAll('thead th');
      table.style.width = 'min-content';
      const minWidth = table.getBoundingClientRect().width;
      table.style.width = '';
      return {
        nat: sec.dataset.nat, width: box.clientWidth, scrollWidth: box.scrollWidth, minWidth: minWidth,
        lastColRight: ths[ths.length - 1].getBoundingClientRect().right,
        boxRight: box.getBoundingClientRect().right,
      };
    }),
  };
})()`

// Layout measures the page as it is now.
func (b *Browser) Layout(ctx context.Context, session string) Layout {
	b.t.Helper()
	var l Layout
	b.Eval(ctx, session, layoutJS, &l)
	return l
}

// CheckLayout fails the test unless, unscrolled, the event log shows its
// newest event and at least minLog pixels of itself, and every NAT's
// mapping table shows all its columns with room left for a scrollbar.
func (b *Browser) CheckLayout(ctx context.Context, session string, minLog float64) Layout {
	b.t.Helper()
	l := b.Layout(ctx, session)
	if l.ScrollY != 0 {
		b.t.Errorf("layout measured scrolled by %v px", l.ScrollY)
	}
	if l.LogTop >= l.ViewportHeight || l.LogRowBottom == 0 || l.LogRowBottom > l.ViewportHeight || l.LogVisible < minLog {
		b.t.Errorf("at %vx%v the event log is not in view: its panel starts at y=%v, its newest row ends at y=%v, %v px of it visible (want >= %v)",
			l.ViewportWidth, l.ViewportHeight, l.LogTop, l.LogRowBottom, l.LogVisible, minLog)
	}
	for _, t := range l.Tables {
		if t.ScrollWidth > t.Width || t.LastColRight > t.BoxRight+0.5 || t.MinWidth > t.Width-ScrollbarWidth {
			b.t.Errorf("at %vx%v NAT %s's mapping table does not fit: box %v px wide (%v scroll), last column ends at %v of %v, the table needs %v px (+%v for a scrollbar)",
				l.ViewportWidth, l.ViewportHeight, t.NAT, t.Width, t.ScrollWidth, t.LastColRight, t.BoxRight, t.MinWidth, ScrollbarWidth)
		}
	}
	return l
}
