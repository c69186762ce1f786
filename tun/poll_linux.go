//go:build linux

package tun

import (
	"time"

	"golang.org/x/sys/unix"
)

// Waiter sleeps until one of a set of Pollers has a packet, or until
// its wake-up descriptor becomes readable, for a polling reader that has
// gone idle.
type Waiter struct {
	fds []unix.PollFd // the devices', then the wake-up descriptor (if any)
	nd  int           // how many of fds are devices
}

// NewWaiter returns a Waiter for ds, which must stay open while it
// waits. wake, if >= 0, is a descriptor (an eventfd) whose becoming
// readable ends every Wait: closing a device does not wake poll(2), so
// a caller that stops its readers makes wake readable first.
func NewWaiter(ds []Poller, wake int) *Waiter {
	w := &Waiter{fds: make([]unix.PollFd, len(ds), len(ds)+1), nd: len(ds)}
	for i, d := range ds {
		w.fds[i] = unix.PollFd{Fd: int32(d.PollFd()), Events: unix.POLLIN}
	}
	if wake >= 0 {
		w.fds = append(w.fds, unix.PollFd{Fd: int32(wake), Events: unix.POLLIN})
	}
	return w
}

// Wait blocks the calling thread in poll(2) until one of the devices has
// a packet to read, the wake-up descriptor is readable, or timeout passes
// (never, if timeout < 0; or a signal comes), and reports whether a
// device has a packet. It allocates nothing.
func (w *Waiter) Wait(timeout time.Duration) (bool, error) {
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	_, err := unix.Poll(w.fds, ms)
	if err == unix.EINTR {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, f := range w.fds[:w.nd] {
		if f.Revents != 0 {
			return true, nil
		}
	}
	return false, nil
}
