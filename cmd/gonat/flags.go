package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gonat/gonat/table"
)

// errHelp ends a command after it printed its --help.
var errHelp = errors.New("help shown")

// listFlag collects a repeatable flag (--external A --external B, or A,B).
type listFlag struct{ vals []string }

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Set(s string) error {
	l.vals = append(l.vals, s)
	return nil
}

// textFlag remembers whether it was given, so settings only override a
// preset when the user asked; bool-like ones accept a bare --hairpin.
type textFlag struct {
	val    string
	set    bool
	isBool bool
}

func (f *textFlag) String() string   { return f.val }
func (f *textFlag) IsBoolFlag() bool { return f.isBool }
func (f *textFlag) Set(s string) error {
	f.val, f.set = s, true
	return nil
}

// settingValues holds the behaviour setting flags of a command, by name.
type settingValues map[string]*textFlag

// settingFlags defines a --NAME flag on fs for every behaviour setting
// (table.Settings), with the setting's help.
func settingFlags(fs *flag.FlagSet) settingValues {
	v := settingValues{}
	for _, s := range table.Settings() {
		f := &textFlag{isBool: s.Kind == table.KindBool}
		v[s.Name] = f
		fs.Var(f, s.Name, s.Help)
	}
	return v
}

// given returns the settings given on the command line, by name, each
// checked on its own (a preset and the other settings are applied later).
func (v settingValues) given() (map[string]string, error) {
	out := map[string]string{}
	for _, s := range table.Settings() {
		f := v[s.Name]
		if f == nil || !f.set {
			continue
		}
		var c table.Config
		if err := s.Apply(&c, f.val); err != nil {
			return nil, usageErr("--%v", err)
		}
		out[s.Name] = f.val
	}
	return out, nil
}

// givenBehavior checks the --preset flag's value (none if empty) and
// returns the behaviour settings given, each checked on its own: what a
// command that sets a NAT's behaviour reads from its flags.
func givenBehavior(preset string, settings settingValues) (map[string]string, error) {
	if preset != "" {
		if _, err := table.Preset(preset); err != nil {
			return nil, usageErr("--preset: %v", err)
		}
	}
	return settings.given()
}

// internalFlag starts the usage of a flag gonat passes to itself: it
// works, but --help does not list it.
const internalFlag = "internal: "

// printFlags lists fs's flags as flag.PrintDefaults does, leaving out
// the internal ones.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, internalFlag) {
			return
		}
		shown.Var(f.Value, f.Name, f.Usage)
		shown.Lookup(f.Name).DefValue = f.DefValue
	})
	shown.SetOutput(w)
	shown.PrintDefaults()
}

// parse runs fs over args, turning flag's errors into one clear line and
// --help into the command's help text on stdout.
func parse(fs *flag.FlagSet, args []string, help string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stdout, help)
		printFlags(os.Stdout, fs)
		return errHelp
	}
	if err != nil {
		return usageErr("%v (see gonat %s --help)", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (see gonat %s --help)", fs.Arg(0), fs.Name())
	}
	return nil
}

// flagGiven reports whether the flag name was on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
