package lab

import (
	"strings"
	"testing"
)

func TestHostOutput(t *testing.T) {
	var echo strings.Builder
	o := &hostOutput{prefix: "stun | ", echo: &lockedWriter{w: &echo}, want: "listening"}
	for _, w := range []string{"starting\nlis", "ten", "ing on :3478\npartial"} {
		o.Write([]byte(w))
	}
	if !o.seen() {
		t.Error("the readiness text, split over three writes, was not seen")
	}
	o.close()
	want := "stun | starting\nstun | listening on :3478\nstun | partial\n"
	if echo.String() != want {
		t.Errorf("echoed\n%q\nwant\n%q", echo.String(), want)
	}
	if got := o.lastLines(2); strings.Join(got, "|") != "listening on :3478|partial" {
		t.Errorf("lastLines(2) = %q", got)
	}
}

func TestHostOutputKeepsTail(t *testing.T) {
	o := &hostOutput{want: "never"}
	line := strings.Repeat("x", 99) + "\n"
	for range 2 * outputKeep / len(line) {
		o.Write([]byte(line))
	}
	o.Write([]byte("last\n"))
	if n := len(o.String()); n > outputKeep {
		t.Errorf("kept %d bytes, want at most %d", n, outputKeep)
	}
	if got := o.lastLines(1); len(got) != 1 || got[0] != "last" {
		t.Errorf("lastLines(1) = %q", got)
	}
	if o.seen() {
		t.Error("matched text that never came")
	}
	if got := (&hostOutput{}).lastLines(3); got != nil {
		t.Errorf("no output: lastLines = %q", got)
	}
}
