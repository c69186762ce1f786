//go:build linux

// Package procfd reads what a process's descriptors refer to from /proc,
// for tests that check what a process holds (its TUN devices, and which
// of them Go's netpoller watches).
package procfd

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// dir is /proc/PID, or /proc/self for pid 0.
func dir(pid int) string {
	if pid == 0 {
		return "/proc/self"
	}
	return fmt.Sprintf("/proc/%d", pid)
}

// Targets maps each open descriptor of process pid (0: this one) to what
// it refers to: "/dev/net/tun", "anon_inode:[eventpoll]", "pipe:[N]"...
// A descriptor closed while it reads is left out.
func Targets(pid int) (map[int]string, error) {
	ents, err := os.ReadDir(dir(pid) + "/fd")
	if err != nil {
		return nil, err
	}
	ts := map[int]string{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(dir(pid) + "/fd/" + e.Name()); err == nil {
			ts[fd] = l
		}
	}
	return ts, nil
}

// Epolled returns the descriptors of process pid (0: this one) that are
// registered in any of its epoll instances (Go's netpoller among them),
// from the "tfd:" lines of the epoll descriptors' fdinfo.
func Epolled(pid int) (map[int]bool, error) { return epolled(pid, false) }

// Netpolled returns the descriptors of process pid (0: this one) that
// are in Go's netpoller: registered edge-triggered (EPOLLET), as the
// netpoller registers every descriptor, unlike level-triggered sets of
// the process's own (the per-CPU readers').
func Netpolled(pid int) (map[int]bool, error) { return epolled(pid, true) }

// epollET is EPOLLET in the events mask fdinfo shows.
const epollET = 1 << 31

func epolled(pid int, edgeOnly bool) (map[int]bool, error) {
	ts, err := Targets(pid)
	if err != nil {
		return nil, err
	}
	watched := map[int]bool{}
	for fd, t := range ts {
		if t != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("%s/fdinfo/%d", dir(pid), fd))
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(info), "\n") {
			var tfd int
			var events uint32
			if _, err := fmt.Sscanf(line, "tfd: %d events: %x", &tfd, &events); err == nil && (!edgeOnly || events&epollET != 0) {
				watched[tfd] = true
			}
		}
	}
	return watched, nil
}
