package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	cases := []struct {
		name    string
		ldflags string
		info    *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"checkout with uncommitted changes", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", "0eb2f1a3c4d5e6f708192a3b4c5d6e7f80912345", "vcs.time", "2026-12-07T01:02:03Z", "vcs.modified", "true")},
			true, "gonat devel (commit 0eb2f1a3c4d5, 2026-12-07T01:02:03Z, modified, go1.26.8)"},
		{"clean checkout", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "0eb2f1a3c4d5e6f708192a3b4c5d6e7f80912345", "vcs.time", "2026-12-07T01:02:03Z", "vcs.modified", "false")},
			true, "gonat devel (commit 0eb2f1a3c4d5, 2026-12-07T01:02:03Z, go1.26.8)"},
		{"go install of a release", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}},
			true, "gonat v1.2.0 (go1.26.8)"},
		{"pseudo-version from the VCS", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207010203-0eb2f1a3c4d5+dirty"},
			Settings: vcs("vcs.revision", "0eb2f1a3c4d5e6f7", "vcs.modified", "true")},
			true, "gonat v0.0.0-20261207010203-0eb2f1a3c4d5+dirty (commit 0eb2f1a3c4d5, modified)"},
		{"built without VCS stamping", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			true, "gonat devel (go1.26.8)"},
		{"no build info", "", nil, false, "gonat devel"},
		{"version set at link time", "v9.9.9", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", "abc")},
			true, "gonat v9.9.9 (commit abc)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old := version
			version = c.ldflags
			defer func() { version = old }()
			if got := versionLine(c.info, c.ok); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}
