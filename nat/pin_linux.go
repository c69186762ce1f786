package nat

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// allowedCPUs is the set of CPUs this process may run on, or nil if
// the kernel will not say.
func allowedCPUs() *unix.CPUSet {
	var s unix.CPUSet
	if unix.SchedGetaffinity(0, &s) != nil {
		return nil
	}
	return &s
}

// pinThread locks the calling goroutine to its thread and that thread
// to CPU cpu, if the process may use it (otherwise the thread stays
// free: the queue is still read, only not beside its senders). The
// goroutine never unlocks: when it returns, Go ends the thread rather
// than hand a pinned one to other goroutines.
func pinThread(cpu int, allowed *unix.CPUSet) {
	runtime.LockOSThread()
	if allowed == nil || !allowed.IsSet(cpu) {
		return
	}
	var one unix.CPUSet
	one.Set(cpu)
	unix.SchedSetaffinity(0, &one) // best effort: a refusal leaves the thread free
}
