package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/tun"
)

// tunQueuesFlag defines --tun-queues, which gonat run and lab up share.
func tunQueuesFlag(fs *flag.FlagSet) *int {
	return fs.Int("tun-queues", 1, "TUN queues per port (IFF_MULTI_QUEUE) when reading per device, each read by its own goroutine; the kernel spreads flows over them by hash. "+
		"For hosts with cores to spare: on 2 cores two queues measured no faster than one (README). More than one needs the offload backend and reads per device (per-CPU reading makes a queue per CPU instead)")
}

// perCPUFlag defines --per-cpu, which gonat run and lab up share. Not
// given, it is forward.ReadersAuto: per CPU where that works.
func perCPUFlag(fs *flag.FlagSet) *readersFlag {
	r := new(readersFlag)
	fs.Var(r, "per-cpu", "a TUN queue per CPU on every port, each packet put on the queue of the CPU that sent it and translated there by a thread pinned to that CPU, "+
		"as the kernel forwards in the sender's context (TCP by flow hash): lower round-trip times and more small packets per second (README). "+
		"The default where the offload backend works, without --busy-poll and with --tun-queues 1; "+
		"--per-cpu=false reads each device from its own goroutine instead. Given, it needs the offload backend and refuses --busy-poll and --tun-queues")
	return r
}

// readersFlag is --per-cpu: a boolean flag that also knows whether it
// was given.
type readersFlag struct{ r forward.Readers }

func (f *readersFlag) IsBoolFlag() bool { return true }

func (f *readersFlag) String() string {
	if f == nil {
		return forward.ReadersAuto.String()
	}
	return f.r.String()
}

func (f *readersFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	f.r = forward.ReadersPerDevice
	if on {
		f.r = forward.ReadersPerCPU
	}
	return nil
}

// args passes the flag on as given (to a detached child).
func (f *readersFlag) args() []string {
	switch f.r {
	case forward.ReadersPerCPU:
		return []string{"--per-cpu"}
	case forward.ReadersPerDevice:
		return []string{"--per-cpu=false"}
	}
	return nil
}

// readMode maps --per-cpu, --busy-poll and --tun-queues to a ReadMode,
// validates it for the TUN backend and says what it refuses in the
// flags' words. offload says how to get the offload backend (a flag for
// gonat run, the environment for gonat lab up).
func readMode(perCPU *readersFlag, busyPoll time.Duration, queues int, backend, offload string) (forward.ReadMode, error) {
	if queues < 1 {
		// The flag gives the count; ReadMode takes 0 for one.
		return forward.ReadMode{}, usageErr("--tun-queues %d: want 1 to %d", queues, tun.MaxQueues)
	}
	m := forward.ReadMode{Readers: perCPU.r, Queues: queues}
	if busyPoll != 0 {
		if perCPU.r == forward.ReadersPerCPU && busyPoll > 0 {
			return m, usageErr("--per-cpu and --busy-poll are two ways to read the TUN devices; choose one")
		}
		// --per-cpu=false --busy-poll D reads by busy-polling, as the
		// busy-poll loop reads every queue of every device anyway.
		m.Readers, m.Quiet = forward.ReadersBusyPoll, busyPoll
	}
	err := m.Validate(backend)
	switch {
	case err == nil:
		return m, nil
	case errors.Is(err, forward.ErrQuiet):
		return m, usageErr("--busy-poll %v: want a duration >= 0, e.g. 200ms", busyPoll)
	case errors.Is(err, forward.ErrQueueCount):
		return m, usageErr("--tun-queues %d: want 1 to %d", queues, tun.MaxQueues)
	case errors.Is(err, forward.ErrPerCPUQueues):
		return m, usageErr("--per-cpu makes a queue per CPU itself; drop --tun-queues %d", queues)
	case errors.Is(err, forward.ErrQueuesNeedOffload):
		return m, usageErr("--tun-queues %d needs %s; a water device has one queue", queues, offload)
	case errors.Is(err, forward.ErrReadersNeedOffload) && m.Readers == forward.ReadersPerCPU:
		return m, usageErr("--per-cpu needs %s; a water device has one queue", offload)
	case errors.Is(err, forward.ErrReadersNeedOffload):
		return m, usageErr("--busy-poll needs %s; water reads cannot be tried without waiting", offload)
	}
	return m, usageErr("%v", err)
}
