//go:build amd64 || arm64

package table

import "unsafe"

// prefetch asks the CPU to bring p's cache line in without waiting for it:
// a batch lookup issues every packet's misses at once (see Hits.Prefetch).
//
//go:noescape
func prefetch(p unsafe.Pointer)
