package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonat/gonat/ns"
)

// ClaimNamespaces marks the named namespaces as this process's: a NAT
// puts devices and default routes in them, and a second NAT on the same
// namespaces would replace the routes and remove them on exit while the
// first still runs. The claim is an exclusive flock on the namespace
// itself (/run/netns/NAME), so it needs no file of its own, and the
// kernel drops it when the process's last thread has closed its files,
// kill -9 included. release drops the claims early; exit does too. A
// namespace another live process claims is an error naming that process;
// one a dying process still holds is waited for. The open file keeps the
// namespace alive until release, also after `ip netns del`.
func ClaimNamespaces(names []string) (release func(), err error) {
	var held []*os.File
	release = func() {
		claimMu.Lock()
		defer claimMu.Unlock()
		for _, f := range held {
			delete(claimed, f.Name())
			f.Close()
		}
		held = nil
	}
	for _, name := range names {
		f, err := claimNamespace(name)
		if err != nil {
			release()
			return func() {}, err
		}
		if f != nil {
			held = append(held, f)
		}
	}
	return release, nil
}

// claimed are the namespaces this process holds, by their file: a lab
// whose NATs share a namespace claims it once, and a flock taken twice
// in one process through two opens would conflict with itself.
var (
	claimMu sync.Mutex
	claimed = map[string]bool{}
)

func claimNamespace(name string) (*os.File, error) {
	path := filepath.Join(ns.Dir, name)
	claimMu.Lock()
	defer claimMu.Unlock()
	if claimed[path] {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	// A killed owner holds its claim until its last thread has closed its
	// files, a few milliseconds after it shows as a zombie or exiting:
	// wait for that, never for a live owner.
	for deadline := time.Now().Add(claimWait); ; time.Sleep(10 * time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("namespace %s: lock: %w", name, err)
		}
		pid := lockHolder(f)
		if (pid > 0 && (State{PID: pid}).Alive()) || time.Now().After(deadline) {
			defer f.Close()
			return nil, fmt.Errorf("namespace %s is in use by %s; stop it first, or give this NAT other namespaces", name, describeHolder(pid))
		}
	}
	claimed[path] = true
	return f, nil
}

// claimWait bounds the wait for a dying owner's claim to go.
const claimWait = 10 * time.Second

// describeHolder names process pid (0: unknown) and the gonat run or lab
// it is.
func describeHolder(pid int) string {
	if pid <= 0 {
		return "another process"
	}
	who := "process " + strconv.Itoa(pid)
	for _, name := range Labs() {
		st, err := ReadState(name)
		if err != nil || st.PID != pid {
			continue
		}
		if st.Kind == "run" {
			return fmt.Sprintf("gonat run --name %s (%s)", st.Name, who)
		}
		return fmt.Sprintf("gonat lab %s (%s)", st.Name, who)
	}
	if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil {
		who += " (" + strings.TrimSpace(string(comm)) + ")"
	}
	return who
}

// lockHolder is the PID /proc/locks gives for the flock on f's inode, or
// 0 if it shows none.
func lockHolder(f *os.File) int {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer locks.Close()
	return holderOf(bufio.NewScanner(locks), uint64(st.Dev), st.Ino)
}

// holderOf reads /proc/locks lines such as
//
//	1: FLOCK  ADVISORY  WRITE 28542 00:04:4026532307 0 EOF
//
// and returns the PID of the FLOCK on device dev, inode ino.
func holderOf(sc *bufio.Scanner, dev, ino uint64) int {
	want := fmt.Sprintf("%02x:%02x:%d", unixMajor(dev), unixMinor(dev), ino)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// A lock others wait for shows as "-> FLOCK ...".
		if len(f) < 6 || f[1] != "FLOCK" || !slices.Contains(f, want) {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			return pid
		}
	}
	return 0
}

func unixMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func unixMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }

// Namespaces lists the namespaces the lab made, in creation order.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.made)
}
