package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/table"
)

// Every behaviour setting of table.Settings is a flag of gonat run and
// gonat lab set with its help in --help, a word completion offers, and a
// topology file key: a setting cannot be half added.
func TestEverySettingReachable(t *testing.T) {
	helps := map[string]string{}
	for _, args := range [][]string{{"run"}, {"lab", "set"}} {
		var code int
		out := captureStdout(t, func() { code = mainCode(append(args, "--help")) })
		if code != 0 {
			t.Fatalf("%s --help: exit %d", strings.Join(args, " "), code)
		}
		helps[strings.Join(args, " ")] = out
	}
	completion := " " + runSettingFlags + " "
	for _, s := range table.Settings() {
		t.Run(s.Name, func(t *testing.T) {
			for cmd, help := range helps {
				head, usage, ok := flagHelp(help, s.Name)
				if !ok {
					t.Errorf("gonat %s --help lists no -%s", cmd, s.Name)
					continue
				}
				if want := strings.ReplaceAll(s.Help, "`", ""); usage != want {
					t.Errorf("gonat %s --help: -%s says %q, want the table's %q", cmd, s.Name, usage, want)
				}
				if isBool := !strings.Contains(strings.TrimSpace(head), " "); isBool != (s.Kind == table.KindBool) {
					t.Errorf("gonat %s --help: -%s shown as %q: a flag takes a value unless the setting is boolean", cmd, s.Name, head)
				}
			}
			word := s.Name + "="
			if s.Kind == table.KindBool {
				word = s.Name
			}
			if !strings.Contains(completion, " "+word+" ") {
				t.Errorf("completion lacks %q", word)
			}

			value := fmt.Sprintf("%q", s.Default())
			switch s.Kind {
			case table.KindBool, table.KindInt:
				value = s.Default()
			}
			file := "[[nat]]\nname = \"n\"\nexternal = \"198.51.100.1\"\ninside = \"10.0.1.0/24\"\n" + s.Name + " = " + value + "\n"
			topo, err := lab.Parse([]byte(file), "")
			if err != nil {
				t.Fatalf("topology key %s = %s: %v", s.Name, value, err)
			}
			if got, ok := topo.NATs[0].Settings[s.Name]; !ok || got != s.Default() {
				t.Errorf("topology key %s = %s: settings %v", s.Name, value, topo.NATs[0].Settings)
			}
		})
	}
}

// gonat run --help describes every preset, and the README's behaviour
// table lists every setting: neither can fall behind the table.
func TestPresetsAndSettingsDocumented(t *testing.T) {
	var code int
	help := captureStdout(t, func() { code = mainCode([]string{"run", "--help"}) })
	if code != 0 {
		t.Fatalf("run --help: exit %d", code)
	}
	for _, name := range table.PresetNames() {
		first, _, _ := strings.Cut(table.PresetHelp(name), "\n")
		if !strings.Contains(help, fmt.Sprintf("  %-20s  %s\n", name, first)) {
			t.Errorf("gonat run --help does not describe preset %s", name)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range table.Settings() {
		if !strings.Contains(string(readme), "`--"+s.Name+"`") {
			t.Errorf("README.md does not list --%s", s.Name)
		}
	}
	for _, name := range table.PresetNames() {
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README.md does not list preset %s", name)
		}
	}
}

// flagHelp finds -name in the output of printFlags: the flag's line (name
// and argument) and its usage text.
func flagHelp(help, name string) (head, usage string, ok bool) {
	lines := strings.Split(help, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "-"+name || !strings.HasPrefix(l, "  -") {
			continue
		}
		var u []string
		for _, m := range lines[i+1:] {
			if !strings.HasPrefix(m, "    \t") {
				break
			}
			u = append(u, strings.TrimPrefix(m, "    \t"))
		}
		return strings.TrimPrefix(l, "  "), strings.Join(u, " "), true
	}
	return "", "", false
}
