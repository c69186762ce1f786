//go:build linux

package tun

import (
	"time"

	"golang.org/x/sys/unix"
)

// Waiter sleeps until one of a set of Pollers has a packet, for a
// busy-polling reader that has gone idle.
type Waiter struct {
	fds []unix.PollFd
}

// NewWaiter returns a Waiter for ds, which must stay open while it
// waits.
func NewWaiter(ds []Poller) *Waiter {
	w := &Waiter{fds: make([]unix.PollFd, len(ds))}
	for i, d := range ds {
		w.fds[i] = unix.PollFd{Fd: int32(d.PollFd()), Events: unix.POLLIN}
	}
	return w
}

// Wait blocks the calling thread in poll(2) until one of the devices has
// a packet to read or timeout passes (or a signal comes), and reports
// whether one has. Closing a device does not wake it: a caller that must
// notice shutdown keeps timeout short. It allocates nothing.
func (w *Waiter) Wait(timeout time.Duration) (bool, error) {
	n, err := unix.Poll(w.fds, int(timeout/time.Millisecond))
	if err == unix.EINTR {
		return false, nil
	}
	return n > 0, err
}
