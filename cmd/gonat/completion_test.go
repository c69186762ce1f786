package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gonat/gonat/internal/privtest"
)

// captureStdout runs fn and returns what it printed on os.Stdout.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stdout = old }()
	fn()
	w.Close()
	return <-done
}

// helpFlags lists the flags a command's --help shows, "name=" for those
// that take a value, sorted.
func helpFlags(help string) []string {
	var out []string
	for _, l := range strings.Split(help, "\n") {
		if !strings.HasPrefix(l, "  -") {
			continue
		}
		head, _, _ := strings.Cut(l, "\t")
		f := strings.Fields(head)
		name := strings.TrimPrefix(f[0], "-")
		if len(f) > 1 {
			name += "="
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func sortedFields(s string) []string {
	f := strings.Fields(s)
	sort.Strings(f)
	return f
}

// The completion table says what each command's --help says: a flag
// added to a command must be added to commands too.
func TestCompletionMatchesHelp(t *testing.T) {
	check := func(args []string, c command) {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var code int
			out := captureStdout(t, func() { code = mainCode(append(args, "--help")) })
			if code != 0 {
				t.Fatalf("%s --help: exit %d", strings.Join(args, " "), code)
			}
			got, want := helpFlags(out), sortedFields(c.flags)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("--help lists flags\n  %s\nthe completion table (commands in completion.go) has\n  %s", strings.Join(got, " "), strings.Join(want, " "))
			}
		})
	}
	for _, c := range commands {
		switch c.name {
		case "help", "completion", "version":
			continue
		}
		if len(c.subs) == 0 {
			check([]string{c.name}, c)
		}
		for _, s := range c.subs {
			check([]string{c.name, s.name}, s)
		}
	}
}

// Every command the help texts name can be completed.
func TestCompletionKnowsEveryCommand(t *testing.T) {
	known := map[string]bool{}
	var lab command
	for _, c := range commands {
		known[c.name] = true
		if c.name == "lab" {
			lab = c
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^  gonat ([a-z-]+)`).FindAllStringSubmatch(usage, -1) {
		if !known[m[1]] {
			t.Errorf("gonat --help names command %q; the completion table lacks it", m[1])
		}
	}
	subs := map[string]bool{}
	for _, s := range lab.subs {
		subs[s.name] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z-]+) `).FindAllStringSubmatch(labHelp, -1) {
		if !subs[m[1]] {
			t.Errorf("gonat lab --help names command %q; the completion table lacks it", m[1])
		}
	}
}

func script(t *testing.T, shell string) string {
	t.Helper()
	var code int
	out := captureStdout(t, func() { code = mainCode([]string{"completion", shell}) })
	if code != 0 || out == "" {
		t.Fatalf("gonat completion %s: exit %d, %d bytes", shell, code, len(out))
	}
	return out
}

// completionCases: the words typed so far (the last one being completed)
// and the completions that must be among those offered.
var completionCases = []struct {
	words []string
	want  []string
}{
	{[]string{"gonat", ""}, []string{"lab", "run", "completion", "version"}},
	{[]string{"gonat", "lab", "u"}, []string{"up"}},
	{[]string{"gonat", "lab", "va"}, []string{"validate"}},
	{[]string{"gonat", "lab", "up", "--dr"}, []string{"--dry-run"}},
	{[]string{"gonat", "lab", "up", "-"}, []string{"-d", "--name"}},
	{[]string{"gonat", "lab", "status", "--"}, []string{"--lab", "--json"}},
	{[]string{"gonat", "run", "--preset", "sym"}, []string{"symmetric"}},
	{[]string{"gonat", "run", "--fil"}, []string{"--filtering"}},
	{[]string{"gonat", "run", "--mapping", "a"}, []string{"address-dependent", "adm"}},
	{[]string{"gonat", "lab", "set", "--port-assignment", "s"}, []string{"sequential"}},
	{[]string{"gonat", "completion", "f"}, []string{"fish"}},
	{[]string{"gonat", "help", "mat"}, []string{"matrix"}},
}

func offered(t *testing.T, shell string, words []string, got string) {
	t.Helper()
	have := map[string]bool{}
	for _, w := range strings.Fields(got) {
		have[w] = true
	}
	for _, c := range completionCases {
		if strings.Join(c.words, " ") != strings.Join(words, " ") {
			continue
		}
		for _, w := range c.want {
			if !have[w] {
				t.Errorf("%s: %q offers %q, want %q among them", shell, strings.Join(words, " "), got, w)
			}
		}
	}
}

func TestCompletionBash(t *testing.T) {
	bash := privtest.Tool(t, "bash")
	s := script(t, "bash")
	for _, c := range completionCases {
		var b bytes.Buffer
		b.WriteString(s)
		b.WriteString("COMP_WORDS=(")
		for _, w := range c.words {
			b.WriteString(" '" + w + "'")
		}
		b.WriteString(" )\nCOMP_CWORD=" + strconv.Itoa(len(c.words)-1) + "\n_gonat\necho \"${COMPREPLY[*]}\"\n")
		out, err := exec.Command(bash, "--norc", "-c", b.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		offered(t, "bash", c.words, string(out))
	}
}

// zsh: _gonat run with compadd and _files stubbed, outside a completion
// widget (zsh's own matching against the typed prefix is not tested).
func TestCompletionZsh(t *testing.T) {
	zsh := privtest.Tool(t, "zsh")
	s := script(t, "zsh")
	for _, c := range completionCases {
		var b bytes.Buffer
		b.WriteString("compdef() {}\ncompadd() { [[ $1 == -- ]] && shift; print -r -- \"$@\" }\n_files() { print FILES }\n")
		b.WriteString(s)
		b.WriteString("words=(")
		for _, w := range c.words {
			b.WriteString(" '" + w + "'")
		}
		b.WriteString(" )\nCURRENT=" + strconv.Itoa(len(c.words)) + "\n_gonat\n")
		out, err := exec.Command(zsh, "-f", "-c", b.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("zsh: %v\n%s", err, out)
		}
		offered(t, "zsh", c.words, string(out))
	}
}

func TestCompletionFish(t *testing.T) {
	fish := privtest.Tool(t, "fish")
	f, err := os.CreateTemp(t.TempDir(), "gonat*.fish")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(script(t, "fish"))
	f.Close()
	for _, c := range completionCases {
		line := strings.Join(c.words, " ")
		out, err := exec.Command(fish, "--no-config", "-c", "source "+f.Name()+"; complete -C'"+line+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		// One candidate a line, a description after a tab.
		var got []string
		for _, l := range strings.Split(string(out), "\n") {
			w, _, _ := strings.Cut(l, "\t")
			got = append(got, w)
		}
		offered(t, "fish", c.words, strings.Join(got, " "))
	}
}
