//go:build linux

package procfd

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A pipe added to an epoll instance shows as watched, its other end not;
// both show as pipes, the epoll descriptor as eventpoll.
func TestTargetsAndEpolled(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, p[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p[0])}); err != nil {
		t.Fatal(err)
	}
	// A second pipe, edge-triggered as Go's netpoller registers.
	var q [2]int
	if err := unix.Pipe2(q[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(q[0])
	defer unix.Close(q[1])
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, q[0], &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(q[0])}); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{0, os.Getpid()} {
		ts, err := Targets(pid)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ts[p[0]], "pipe:") || !strings.HasPrefix(ts[p[1]], "pipe:") || ts[ep] != "anon_inode:[eventpoll]" {
			t.Errorf("pid %d: targets %q %q %q, want two pipes and an eventpoll", pid, ts[p[0]], ts[p[1]], ts[ep])
		}
		w, err := Epolled(pid)
		if err != nil {
			t.Fatal(err)
		}
		if !w[p[0]] || w[p[1]] || !w[q[0]] {
			t.Errorf("pid %d: watched %v; want the read ends (%d, %d), not the write end (%d)", pid, w, p[0], q[0], p[1])
		}
		n, err := Netpolled(pid)
		if err != nil {
			t.Fatal(err)
		}
		if n[p[0]] || !n[q[0]] {
			t.Errorf("pid %d: netpolled %v; want the edge-triggered read end (%d), not the level-triggered one (%d)", pid, n, q[0], p[0])
		}
	}
}
