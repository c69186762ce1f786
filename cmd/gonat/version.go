package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version, when set at link time (-ldflags "-X main.version=v1.2.3"),
// replaces the module version of the build info.
var version string

// versionLine is what gonat version prints: the module version (from
// `go install ...@vX`, a VCS tag, or "devel" for a build of a checkout)
// and the commit it was built from, with its time and "modified" when
// the tree had uncommitted changes.
func versionLine(info *debug.BuildInfo, ok bool) string {
	v := version
	if v == "" && ok {
		v = info.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	line := "gonat " + v
	if !ok {
		return line
	}
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var details []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		details = append(details, "commit "+rev)
	}
	if at != "" {
		details = append(details, at)
	}
	if modified {
		details = append(details, "modified")
	}
	if info.GoVersion != "" {
		details = append(details, info.GoVersion)
	}
	if len(details) > 0 {
		line += " (" + strings.Join(details, ", ") + ")"
	}
	return line
}

const versionHelp = `Usage: gonat version (or gonat --version)

Prints the module version (a release tag, or "devel" for a build of a
checkout) and, when the build recorded it, the commit, its time,
"modified" for uncommitted changes, and the Go version.
`

func versionCmd(args []string) error {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Print(versionHelp)
			return errHelp
		}
		return usageErr("unexpected argument %q (see gonat version --help)", args[0])
	}
	info, ok := debug.ReadBuildInfo()
	fmt.Println(versionLine(info, ok))
	return nil
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "--help", "-help", "help":
		return true
	}
	return false
}
