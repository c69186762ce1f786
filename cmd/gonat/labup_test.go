package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lab up warns, in one line, when users other than the owner can change
// the topology file whose commands it runs as root.
func TestWarnWritable(t *testing.T) {
	for _, c := range []struct {
		mode os.FileMode
		want string // "" for no warning
	}{
		{0o644, ""},
		{0o600, ""},
		{0o664, "writable by its group (mode 0664)"},
		{0o646, "writable by others (mode 0646)"},
		{0o666, "writable by group and others (mode 0666)"},
	} {
		file := filepath.Join(t.TempDir(), "lab.toml")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, c.mode); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		warnWritable(&out, file)
		got := out.String()
		switch {
		case c.want == "" && got != "":
			t.Errorf("mode %04o: warned %q", c.mode, got)
		case c.want != "" && (!strings.Contains(got, c.want) || strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "gonat: warning: ")):
			t.Errorf("mode %04o: %q, want one warning line saying %q", c.mode, got, c.want)
		}
	}
}
