package main

import "testing"

// --permissive changes how a UDP connection is judged; with --tcp it
// would change nothing, so it is refused as a usage error before any
// socket is made. (Were it not, this peer would fail to reach the
// rendezvous server on loopback and exit 1.)
func TestPermissiveIsForUDP(t *testing.T) {
	args := []string{"peer", "--rendezvous", "127.0.0.1:9", "--timeout", "1ms", "--name", "alice", "--connect", "bob", "--tcp", "--permissive"}
	if code := mainCode(args); code != 2 {
		t.Errorf("gonat %v: exit %d, want 2", args, code)
	}
}
