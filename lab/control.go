package lab

// The control protocol of a running lab (or gonat run), server and
// client side, in one place. docs/control.md describes it for users.
//
// Socket: ControlSocket(name), a Unix socket with mode 0600 in the lab's
// state directory. Encoding: JSON objects, one per line. The client
// writes one Request; the server answers with one Response and closes,
// except for OpWatch, whose Response (OK or the error) is followed by one
// observe.Event per line until either side closes. OpTable's Response is
// written, and read by Table, a mapping at a time.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gonat/gonat/observe"
)

// The operations a Request names.
const (
	OpStatus = "status" // Response.Status
	OpTable  = "table"  // Response.Table, of Request.NAT or of every NAT
	OpSet    = "set"    // Request.NAT takes Request.Preset, then Request.Settings
	OpFlush  = "flush"  // Request.NAT forgets its mappings
	OpWatch  = "watch"  // a stream of events; Request.Packets adds per-packet ones
	OpDown   = "down"   // the lab answers, then stops
	OpImpair = "impair" // Request.Node's link takes Request.Spec (impair.go)
)

var ops = []string{OpStatus, OpTable, OpSet, OpFlush, OpWatch, OpDown, OpImpair, OpLink, OpRebind, OpReboot, OpMove}

// ControlSocket is the path of lab name's control socket.
func ControlSocket(name string) string { return filepath.Join(StateDir(name), "control.sock") }

// Request is one call on a lab's control socket.
type Request struct {
	Op       string            `json:"op"`                // one of the Op constants
	Packets  bool              `json:"packets,omitempty"` // watch: per-packet events too
	NAT      string            `json:"nat,omitempty"`     // move: the network the host moves to
	Preset   string            `json:"preset,omitempty"`
	Settings map[string]string `json:"settings,omitempty"` // setting name to value, as text
	// impair and network events (lab/impair.go, lab/events.go):
	Node    string `json:"node,omitempty"`    // impair: a NAT or a host behind one; link: the host or NAT whose link changes; move: the host
	Spec    string `json:"spec,omitempty"`    // impair: an impairment spec; "" or "off" clears
	State   string `json:"state,omitempty"`   // link: down or up
	Address string `json:"address,omitempty"` // rebind, reboot: the NAT's new external address
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
	// Link is a public host's impaired link (its wire), nil for others.
	Link *LinkStatus `json:"link,omitempty"`
}

// NATStatus is a NAT's behaviour and counters (the fields the web view
// shows too), its seed and how many mappings it has.
type NATStatus struct {
	observe.NAT
	Seed     int64 `json:"seed"`     // of random port choice: set it to repeat a run
	Mappings int   `json:"mappings"` // how many are live (OpTable lists them)
	// ICMPErrorsLimited counts the ICMP errors held back by the rate
	// limits; their packets count in Packets under their own verdict.
	ICMPErrorsLimited uint64 `json:"icmp_errors_limited"`
}

// ErrNotRunning means no process answers for the lab.
var ErrNotRunning = errors.New("lab is not running")

// ServeControl answers requests on the lab's control socket until ctx
// ends. OpDown calls stop.
func (l *Lab) ServeControl(ctx context.Context, stop func()) error {
	if err := os.MkdirAll(StateDir(l.Name), 0o700); err != nil {
		return err
	}
	path := ControlSocket(l.Name)
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
		case OpStatus:
			resp.Status = l.Status()
		case OpTable:
			if err := l.checkNAT(req.NAT); err != nil {
				fail(err)
				break
			}
			l.writeTable(c, req.NAT)
			return
		case OpWatch:
			l.watch(c, req.Packets)
			return
		case OpImpair:
			if err := l.Impair(req.Node, req.Spec); err != nil {
				fail(err)
			}
		case OpDown:
			defer stop()
		case OpSet, OpFlush, OpLink, OpRebind, OpReboot, OpMove:
			if err := l.handleEvent(req); err != nil {
				fail(err)
			}
		default:
			fail(fmt.Errorf("unknown op %q (%s)", req.Op, strings.Join(ops, ", ")))
		}
	}
	json.NewEncoder(c).Encode(resp)
}

// writeTable answers OpTable with the bytes one Response carrying the
// whole table would be, written as the NATs' mappings are walked, a page
// at a time: the table is never held whole, neither as mappings nor as
// JSON. A client that stops reading for the write deadline is dropped.
func (l *Lab) writeTable(c net.Conn, natName string) {
	w := bufio.NewWriterSize(c, 64<<10)
	// One buffer for every mapping's JSON: an Encoder reuses its own
	// state, where json.Marshal would leave a copy per mapping for the
	// collector.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	rows := 0
	err := l.TablePages(natName, func(page []observe.Mapping) error {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for _, m := range page {
			buf.Reset()
			if err := enc.Encode(m); err != nil {
				return err
			}
			if rows == 0 {
				w.WriteString(`{"ok":true,"table":[`)
			} else {
				w.WriteByte(',')
			}
			rows++
			if _, err := w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return // the client left; nothing can tell it more
	}
	if rows == 0 {
		w.WriteString(`{"ok":true}` + "\n") // Table is omitted when empty
	} else {
		w.WriteString("]}\n")
	}
	w.Flush()
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
	// A packet watcher also gets a DROP line per reason for the drops of
	// the links, which no packet event reports.
	var tick <-chan time.Time
	var lines []*observe.DropLines
	if packets {
		t := time.NewTicker(dropLinesEvery)
		defer t.Stop()
		tick, lines = t.C, l.linkDropLines()
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok || enc.Encode(ev) != nil {
				return
			}
		case <-tick:
			if !pollDropLines(lines, func(ev observe.Event) bool { return enc.Encode(ev) == nil }) {
				return
			}
		case <-gone:
			return
		}
	}
}

// call sends req to lab name and reads the first Response; the caller
// closes the connection.
func call(name string, req Request, deadline time.Duration) (net.Conn, *json.Decoder, Response, error) {
	var resp Response
	c, err := net.DialTimeout("unix", ControlSocket(name), 2*time.Second)
	if err != nil {
		return nil, nil, resp, fmt.Errorf("%w: %s (%v)", ErrNotRunning, name, err)
	}
	if deadline > 0 {
		c.SetDeadline(time.Now().Add(deadline))
	}
	dec := json.NewDecoder(c)
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return c, dec, resp, err
	}
	if err := dec.Decode(&resp); err != nil {
		return c, dec, resp, fmt.Errorf("lab %s: no answer: %w", name, err)
	}
	if !resp.OK {
		return c, dec, resp, errors.New(resp.Error)
	}
	return c, dec, resp, nil
}

// Call sends one request to lab name's control socket.
func Call(name string, req Request) (Response, error) {
	c, _, resp, err := call(name, req, 15*time.Second)
	if c != nil {
		c.Close()
	}
	return resp, err
}

// Table reads the table of lab name's NAT natName ("" for all) and
// calls fn with each mapping as it arrives, never holding the table
// whole; an error fn returns ends the read and is returned.
func Table(name, natName string, fn func(observe.Mapping) error) error {
	c, err := net.DialTimeout("unix", ControlSocket(name), 2*time.Second)
	if err != nil {
		return fmt.Errorf("%w: %s (%v)", ErrNotRunning, name, err)
	}
	defer c.Close()
	// The deadline is for the answer to start and then to keep coming:
	// each page of rows moves it on.
	const wait = 15 * time.Second
	c.SetDeadline(time.Now().Add(wait))
	if err := json.NewEncoder(c).Encode(Request{Op: OpTable, NAT: natName}); err != nil {
		return err
	}
	var resp Response
	var fnErr error
	rows := 0
	err = decodeTable(json.NewDecoder(bufio.NewReaderSize(c, 64<<10)), &resp, func(m observe.Mapping) bool {
		if rows++; rows%tablePage == 0 {
			c.SetDeadline(time.Now().Add(wait))
		}
		fnErr = fn(m)
		return fnErr == nil
	})
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return fmt.Errorf("lab %s: no answer: %w", name, err)
	case !resp.OK:
		return errors.New(resp.Error)
	}
	return nil
}

// decodeTable reads one Response from dec into resp, except that the
// mappings of its table go to fn one by one, as they are decoded, until
// fn returns false.
func decodeTable(dec *json.Decoder, resp *Response, fn func(observe.Mapping) bool) error {
	if err := delim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		switch key {
		case "ok":
			err = dec.Decode(&resp.OK)
		case "error":
			err = dec.Decode(&resp.Error)
		case "table":
			if err := delim(dec, '['); err != nil {
				return err
			}
			for dec.More() {
				var m observe.Mapping
				if err := dec.Decode(&m); err != nil {
					return err
				}
				if !fn(m) {
					return nil
				}
			}
			err = delim(dec, ']')
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return err
		}
	}
	return delim(dec, '}')
}

// delim reads the next token of dec, which must be d.
func delim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("got %v, want %v", tok, d)
	}
	return nil
}

// Watch subscribes to lab name's events; fn gets each until it returns
// false or the lab goes away.
func Watch(name string, packets bool, fn func(observe.Event) bool) error {
	c, dec, _, err := call(name, Request{Op: OpWatch, Packets: packets}, 0)
	if c != nil {
		defer c.Close()
	}
	if err != nil {
		return err
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
