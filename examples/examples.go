// Package examples holds the example topology files, so that gonat can
// build them wherever it runs (gonat demo --happy-eyeballs does).
package examples

import "embed"

// Files are the example topologies, by file name.
//
//go:embed *.toml
var Files embed.FS
