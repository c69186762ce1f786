package lab

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       procStat
		bad        bool
	}{
		{name: "running", stat: "28542 (gonat) S 1 28542 28542 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 9 0 123456 1000 10 18446744073709551615",
			want: procStat{state: 'S', flags: 4194560, start: 123456}},
		{name: "exiting", stat: "7 (gonat) R 1 7 7 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0",
			want: procStat{state: 'R', flags: 4194564, start: 99}},
		{name: "comm with spaces and parentheses", stat: "9 (a) b (c) Z 1 9 9 0 -1 4 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0 0",
			want: procStat{state: 'Z', flags: 4, start: 42}},
		{name: "truncated", stat: "9 (x) S 1 2 3", bad: true},
		{name: "no comm", stat: "9 x S", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat(tc.stat)
			if tc.bad {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// A state's process counts as alive only while it runs: a zombie (killed,
// not yet reaped by its parent) is dead at once, and so is a PID another
// process took since.
func TestStateAlive(t *testing.T) {
	self, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !(State{PID: os.Getpid(), PIDStart: self.start}).Alive() {
		t.Error("this process: not alive")
	}
	if !(State{PID: os.Getpid()}).Alive() {
		t.Error("this process, start time not recorded: not alive")
	}
	if (State{PID: os.Getpid(), PIDStart: self.start + 1}).Alive() {
		t.Error("a process that started at another time than the state's: alive")
	}

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	st := State{PID: cmd.Process.Pid}
	if ps, err := readProcStat(st.PID); err == nil {
		st.PIDStart = ps.start
	}
	if !st.Alive() {
		t.Error("a running child: not alive")
	}
	cmd.Process.Kill()
	// Not reaped: the child stays a zombie until cmd.Wait.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		ps, err := readProcStat(st.PID)
		if err != nil {
			t.Fatal(err)
		}
		if ps.state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child still in state %c", ps.state)
		}
	}
	if st.Alive() {
		t.Error("a zombie: alive")
	}
}
