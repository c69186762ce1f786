package forward

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

// pinThread locks the calling goroutine to its thread, puts the thread
// in SCHED_BATCH and pins it to CPU cpu, if the process may use it
// (otherwise the thread stays free: its queue is still read, only not
// beside its senders). SCHED_BATCH because the reader shares its CPU
// with the sender: a waking reader that preempted the sender at every
// packet turned a paced flood into a context switch per datagram (5-8%
// lost at 100 kpps, against 0.1-0.8% in SCHED_BATCH, which lets the
// sender run on and the reader take what queued meanwhile); a sender
// that waits for an answer (a ping) still yields at once. The goroutine
// never unlocks: when it returns, Go ends the thread rather than hand a
// pinned one to other goroutines. Both settings are best effort.
func pinThread(cpu int, allowed *unix.CPUSet) {
	runtime.LockOSThread()
	if a, err := unix.SchedGetAttr(0, 0); err == nil {
		a.Policy = unix.SCHED_BATCH // the rest as it was: a nice value the process was given stays
		unix.SchedSetAttr(0, a, 0)
	}
	if allowed == nil || !allowed.IsSet(cpu) {
		return
	}
	var one unix.CPUSet
	one.Set(cpu)
	unix.SchedSetaffinity(0, &one)
}
