package forward

import (
	"errors"
	"fmt"
	"time"

	"github.com/gonat/gonat/tun"
)

// ReadMode is how a NAT reads its ports: which readers, and so how many
// queues each port's device needs. The zero value is ReadersAuto with one
// queue per port. Check one with Validate before making devices for it.
type ReadMode struct {
	// Readers is the way of reading.
	Readers Readers
	// Queues is the TUN queues per port (tun.Config.Queues) for
	// per-device and busy-poll readers, each per-device queue with its
	// own reader; 0 or 1 is one. Above 1 it turns ReadersAuto to per
	// device and needs the offload backend. Per-CPU readers make a queue
	// per CPU instead and take no count.
	Queues int
	// Quiet is, for ReadersBusyPoll only, how long every device must have
	// had no packet before the loop stops spinning and waits in poll(2).
	Quiet time.Duration
}

// Readers is a way of reading a NAT's ports.
type Readers int

const (
	// ReadersAuto reads per CPU (ReadersPerCPU), except with Queues > 1
	// or the water backend: then per device. Where devices turn out
	// unable to be read per CPU (BackendAuto fell back to water, or
	// devices steered by CPU cannot be made), whoever makes them reads
	// per device instead (lab.StartNAT does). A Router given ReadersAuto
	// reads per device: per-CPU reading needs devices made for it.
	ReadersAuto Readers = iota
	// ReadersPerDevice reads each device queue from a goroutine that
	// waits in Go's netpoller.
	ReadersPerDevice
	// ReadersPerCPU gives every port a queue per CPU, each packet going
	// to the queue of the CPU that sent it (tun.Config.SteerByCPU), and
	// reads queue q of every port from a thread pinned to CPU q, which
	// sleeps in epoll_wait(2) when its queues are empty. The thread is
	// the process's, shared by every NAT read per CPU (one per CPU, not
	// per NAT and CPU); each NAT keeps its own queues into the engine,
	// expiry and write errors. A packet is then
	// translated on the CPU that sent it, as the kernel forwards a
	// packet in its sender's context: waking the reader is a switch on
	// that CPU, not an interrupt to another (on VMs that halt idle vCPUs
	// the costly part of a round trip), and a reply the outside delivers
	// while the request is being written (a ping's, in the same CPU's
	// softirq) is read in the same round, without a wake-up. TCP is
	// steered by flow hash instead, so that a connection's segments,
	// sent from several CPUs, are never split between readers. The cost
	// is where the work runs: beside the sender, on the CPU it would
	// otherwise have alone (docs/performance.md). The queue count is
	// tun.CPUQueues(): as many descriptors per port; per process, a
	// thread and 1 MB of buffers per queue. Needs the offload backend.
	ReadersPerCPU
	// ReadersBusyPoll reads every queue of every port from one goroutine
	// that does not sleep while packets keep coming: it tries each in
	// turn and, once none has had a packet for Quiet, waits in poll(2)
	// until one has. It spends a CPU core while traffic flows to save
	// the wake-up of a sleeping reader per packet, which on VMs that halt
	// idle vCPUs is tens of µs (docs/performance.md). Needs the offload
	// backend. The tail latency is best with GOMAXPROCS=1: with more Ps,
	// idle ones steal the loop between threads each time it yields.
	ReadersBusyPoll
)

func (r Readers) String() string {
	switch r {
	case ReadersAuto:
		return "auto"
	case ReadersPerDevice:
		return "per-device"
	case ReadersPerCPU:
		return "per-cpu"
	case ReadersBusyPoll:
		return "busy-poll"
	}
	return fmt.Sprintf("Readers(%d)", int(r))
}

// name is the readers in a sentence: "per-CPU readers".
func (r Readers) name() string {
	if r == ReadersPerCPU {
		return "per-CPU readers"
	}
	return r.String() + " readers"
}

// Why Validate refuses a ReadMode; its errors wrap one of these, so that
// a caller can say it in its own words (the CLI names its flags).
var (
	// ErrUnknownReaders: Readers is none of the constants.
	ErrUnknownReaders = errors.New("unknown readers")
	// ErrQuiet: busy-poll readers without a quiet time > 0, or a quiet
	// time for other readers.
	ErrQuiet = errors.New("busy-poll quiet time")
	// ErrQueueCount: Queues below 0 or above tun.MaxQueues.
	ErrQueueCount = errors.New("TUN queues per port")
	// ErrPerCPUQueues: per-CPU readers with Queues > 1.
	ErrPerCPUQueues = errors.New("per-CPU readers make a queue per CPU")
	// ErrQueuesNeedOffload: Queues > 1 on the water backend.
	ErrQueuesNeedOffload = errors.New("several queues per port need the offload TUN backend")
	// ErrReadersNeedOffload: per-CPU or busy-poll readers on the water
	// backend.
	ErrReadersNeedOffload = errors.New("readers need the offload TUN backend")
)

// Validate reports whether m can read devices of the TUN backend
// (tun.BackendAuto, "" too, tun.BackendOffload, tun.BackendWater). Auto
// passes where offload would: whether it falls back to water shows only
// when devices are made.
func (m ReadMode) Validate(backend string) error {
	r := m.Readers
	switch r {
	case ReadersAuto, ReadersPerDevice, ReadersPerCPU, ReadersBusyPoll:
	default:
		return fmt.Errorf("%w %v: want auto, per-device, per-cpu or busy-poll", ErrUnknownReaders, r)
	}
	switch {
	case r == ReadersBusyPoll && m.Quiet <= 0:
		return fmt.Errorf("%w %v: want > 0 (how long to spin after the last packet)", ErrQuiet, m.Quiet)
	case r != ReadersBusyPoll && m.Quiet != 0:
		return fmt.Errorf("%w %v given to %s; it is for busy-poll readers only", ErrQuiet, m.Quiet, r.name())
	case m.Queues < 0 || m.Queues > tun.MaxQueues:
		return fmt.Errorf("%w %d: want 1 to %d (0 is one)", ErrQueueCount, m.Queues, tun.MaxQueues)
	case r == ReadersPerCPU && m.Queues > 1:
		return fmt.Errorf("%w; they take no queue count (%d)", ErrPerCPUQueues, m.Queues)
	}
	if backend != tun.BackendWater {
		return nil
	}
	switch {
	case m.Queues > 1:
		return fmt.Errorf("%w (%d asked for); a water device has one", ErrQueuesNeedOffload, m.Queues)
	case r == ReadersPerCPU:
		return fmt.Errorf("per-CPU %w; a water device has one queue", ErrReadersNeedOffload)
	case r == ReadersBusyPoll:
		return fmt.Errorf("busy-poll %w; a water device cannot be read without waiting", ErrReadersNeedOffload)
	}
	return nil
}

// Resolve is the readers ReadersAuto tries first on the backend: per
// CPU, or per device with Queues > 1 or on water. Other modes are
// returned as they are.
func (m ReadMode) Resolve(backend string) ReadMode {
	if m.Readers == ReadersAuto {
		m.Readers = ReadersPerCPU
		if m.Queues > 1 || backend == tun.BackendWater {
			m.Readers = ReadersPerDevice
		}
	}
	return m
}

// Polled reports whether m's readers only poll their devices
// (tun.Poller.TryRead) and never wait in Read: every queue must then be
// a tun.Poller, and can stay out of Go's netpoller (tun.Config.Polled).
func (m ReadMode) Polled() bool {
	return m.Readers == ReadersPerCPU || m.Readers == ReadersBusyPoll
}

// DeviceQueues is how many queues each port's device needs for m (a
// resolved mode: not ReadersAuto).
func (m ReadMode) DeviceQueues() int {
	if m.Readers == ReadersPerCPU {
		return tun.CPUQueues()
	}
	return max(m.Queues, 1)
}
