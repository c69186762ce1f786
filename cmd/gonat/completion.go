package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/gonat/gonat/table"
)

const completionHelp = `Usage: gonat completion bash|zsh|fish

Prints a completion script for the shell: commands, lab commands, flags,
presets after --preset, topology files after lab up and lab validate.

  bash: source <(gonat completion bash)             # or save it as
        /usr/share/bash-completion/completions/gonat
  zsh:  source <(gonat completion zsh)              # or save it as _gonat in $fpath
  fish: gonat completion fish | source              # or save it as
        ~/.config/fish/completions/gonat.fish

make install installs all three.
`

// command is what completion knows of one command: its flags ("name="
// when the flag takes a value), what its positional arguments are, and
// its subcommands.
type command struct {
	name  string
	flags string
	args  string // "files": topology files; "commands": gonat's commands; else the words to offer
	subs  []command
}

// runSettingFlags are the flags gonat run and gonat lab set share: the
// preset and every behaviour setting of table.Settings.
var runSettingFlags = func() string {
	out := []string{"preset="}
	for _, set := range table.Settings() {
		if set.Kind == table.KindBool {
			out = append(out, set.Name)
		} else {
			out = append(out, set.Name+"=")
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}()

// valueWords lists, for each flag whose values are a fixed set of words
// (--preset and the word-valued settings), the flag and its words.
func valueWords() [][2]string {
	out := [][2]string{{"preset", strings.Join(table.PresetNames(), " ")}}
	for _, set := range table.Settings() {
		if set.Kind == table.KindWord {
			out = append(out, [2]string{set.Name, strings.Join(set.Words, " ")})
		}
	}
	return out
}

// valueArms writes a case arm per valueWords flag in the form arm gives
// (flag written as --NAME, words).
func valueArms(b *strings.Builder, arm string) {
	for _, fw := range valueWords() {
		fmt.Fprintf(b, arm, flagWord(fw[0]), fw[1])
	}
}

// commands lists gonat's commands for completion; a unit test checks it
// against each command's --help.
var commands = []command{
	{name: "demo", flags: "happy-eyeballs"},
	{name: "run", flags: "busy-poll= expose external= impair= impair-in= impair-out= inside= metrics= mtu= name= outside= outside-mtu= pcap-inside= pcap-outside= per-cpu trace tun-backend= tun-queues= v web= web-streams= " + runSettingFlags},
	{name: "lab", subs: []command{
		{name: "up", flags: "busy-poll= d dry-run expose metrics= name= pcap-dir= per-cpu trace tun-queues= v web= web-streams=", args: "files"},
		{name: "validate", flags: "name=", args: "files"},
		{name: "exec", flags: "lab="},
		{name: "logs", flags: "f lab="},
		{name: "status", flags: "json lab="},
		{name: "table", flags: "json lab= nat= watch"},
		{name: "list"},
		{name: "set", flags: "lab= " + runSettingFlags},
		{name: "flush", flags: "lab= preset="},
		{name: "impair", flags: "lab="},
		{name: "down", flags: "all keep-logs= lab="},
		{name: "verify", flags: "json lab="},
		{name: "link", flags: "lab="},
		{name: "rebind", flags: "address= lab="},
		{name: "reboot", flags: "address= lab="},
		{name: "move", flags: "lab="},
	}},
	{name: "table", flags: "json lab= nat= watch"},
	{name: "stun-server", flags: "alt-port= alternate= port= primary= v"},
	{name: "probe", flags: "json lifetime max-lifetime= retries= rto= server="},
	{name: "rendezvous", flags: "listen= v"},
	{name: "peer", flags: "connect= json name= permissive predict= rendezvous= stun= tcp timeout= v"},
	{name: "matrix", flags: "all ipv6= json parallel= permissive tcp timeout="},
	{name: "he", flags: "attempt-delay= json resolution-delay= timeout="},
	{name: "completion", args: "bash zsh fish"},
	{name: "version"},
	{name: "help", args: "commands"},
}

// commandNames lists gonat's commands.
func commandNames() []string {
	var out []string
	for _, c := range commands {
		out = append(out, c.name)
	}
	return out
}

func completionCmd(args []string) error {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Print(completionHelp)
		return errHelp
	}
	if len(args) != 1 {
		return usageErr("want one shell: bash, zsh or fish (see gonat completion --help)")
	}
	switch args[0] {
	case "bash":
		return writeBash(os.Stdout)
	case "zsh":
		return writeZsh(os.Stdout)
	case "fish":
		return writeFish(os.Stdout)
	}
	return usageErr("unknown shell %q: want bash, zsh or fish", args[0])
}

// flagWord is how a flag is written: --name, or -d for one letter.
func flagWord(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagWords turns "name= json d" into "--name --json -d".
func flagWords(flags string) string {
	var out []string
	for _, f := range strings.Fields(flags) {
		out = append(out, flagWord(strings.TrimSuffix(f, "=")))
	}
	return strings.Join(out, " ")
}

// valueFlags lists every flag that takes a value, once, as written.
func valueFlags() string {
	seen := map[string]bool{}
	var walk func([]command)
	walk = func(cs []command) {
		for _, c := range cs {
			for _, f := range strings.Fields(c.flags) {
				if strings.HasSuffix(f, "=") {
					seen[flagWord(strings.TrimSuffix(f, "="))] = true
				}
			}
			walk(c.subs)
		}
	}
	walk(commands)
	var out []string
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// argWords is what a command offers for its positional arguments:
// words, or "" for file names.
func argWords(c command) string {
	switch c.args {
	case "files":
		return ""
	case "commands":
		return strings.Join(commandNames(), " ")
	}
	return c.args
}

func subNames(c command) string {
	var out []string
	for _, s := range c.subs {
		out = append(out, s.name)
	}
	return strings.Join(out, " ")
}

// caseArms writes the arms of the case $cmd that the bash and zsh
// scripts share: each command (and lab subcommand) sets its flags and
// the words of its positional arguments.
func caseArms(b *strings.Builder) {
	for _, c := range commands {
		if len(c.subs) > 0 {
			fmt.Fprintf(b, "        %s)\n            case $sub in\n                \"\") args=%q ;;\n", c.name, subNames(c))
			for _, s := range c.subs {
				fmt.Fprintf(b, "                %s) flags=%q args=%q ;;\n", s.name, flagWords(s.flags), argWords(s))
			}
			b.WriteString("            esac ;;\n")
			continue
		}
		fmt.Fprintf(b, "        %s) flags=%q args=%q ;;\n", c.name, flagWords(c.flags), argWords(c))
	}
}

// writeBash prints the bash script.
func writeBash(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`# bash completion for gonat; generated by gonat completion bash
_gonat() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmd= sub= i w flags= args=
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        [[ $w == -* ]] && continue
        if [[ -z $cmd ]]; then cmd=$w; elif [[ -z $sub ]]; then sub=$w; fi
    done
    case $prev in
`)
	valueArms(&b, "        %s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return ;;\n")
	b.WriteString(`    esac
    case " ` + valueFlags() + ` " in
        *" $prev "*) return ;; # a flag's value: file names
    esac
    case $cmd in
        "") args="` + strings.Join(commandNames(), " ") + `" ;;
`)
	caseArms(&b)
	b.WriteString(`    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -n $args ]]; then
        COMPREPLY=($(compgen -W "$args" -- "$cur"))
    fi
}
complete -o default -F _gonat gonat
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeZsh(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`#compdef gonat
# zsh completion for gonat; generated by gonat completion zsh
_gonat() {
    local cur=${words[CURRENT]} prev=${words[CURRENT-1]}
    local cmd= sub= i w flags= args=
    for ((i = 2; i < CURRENT; i++)); do
        w=${words[i]}
        [[ $w == -* ]] && continue
        if [[ -z $cmd ]]; then cmd=$w; elif [[ -z $sub ]]; then sub=$w; fi
    done
    case $prev in
`)
	valueArms(&b, "        %s) compadd -- %s; return ;;\n")
	b.WriteString(`    esac
    if [[ " ` + valueFlags() + ` " == *" $prev "* ]]; then
        _files
        return
    fi
    case $cmd in
        "") args="` + strings.Join(commandNames(), " ") + `" ;;
`)
	caseArms(&b)
	b.WriteString(`    esac
    if [[ $cur == -* ]]; then
        compadd -- ${=flags}
    elif [[ -n $args ]]; then
        compadd -- ${=args}
    else
        _files
    fi
}
if [[ $funcstack[1] == _gonat ]]; then
    _gonat "$@"
else
    compdef _gonat gonat
fi
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// wordsOf returns the words flag name takes, or "" when they are not a
// fixed set.
func wordsOf(name string) string {
	for _, fw := range valueWords() {
		if fw[0] == name {
			return fw[1]
		}
	}
	return ""
}

func writeFish(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# fish completion for gonat; generated by gonat completion fish\ncomplete -c gonat -f\n")
	fmt.Fprintf(&b, "complete -c gonat -n __fish_use_subcommand -a %q\n", strings.Join(commandNames(), " "))
	flagLines := func(cond string, flags string) {
		for _, f := range strings.Fields(flags) {
			name, value := strings.CutSuffix(f, "=")
			opt := "-l " + name
			if len(name) == 1 {
				opt = "-o " + name
			}
			line := fmt.Sprintf("complete -c gonat -n %q %s", cond, opt)
			switch words := wordsOf(name); {
			case words != "":
				line += fmt.Sprintf(" -x -a %q", words)
			case value:
				line += " -r -F"
			}
			b.WriteString(line + "\n")
		}
	}
	for _, c := range commands {
		if len(c.subs) > 0 {
			names := subNames(c)
			fmt.Fprintf(&b, "complete -c gonat -n %q -a %q\n",
				"__fish_seen_subcommand_from "+c.name+"; and not __fish_seen_subcommand_from "+names, names)
			for _, s := range c.subs {
				cond := "__fish_seen_subcommand_from " + c.name + "; and __fish_seen_subcommand_from " + s.name
				flagLines(cond, s.flags)
				if s.args == "files" {
					fmt.Fprintf(&b, "complete -c gonat -n %q -F\n", cond)
				}
			}
			continue
		}
		cond := "__fish_seen_subcommand_from " + c.name + "; and not __fish_seen_subcommand_from lab"
		flagLines(cond, c.flags)
		if words := argWords(c); words != "" {
			fmt.Fprintf(&b, "complete -c gonat -n %q -a %q\n", cond, words)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
