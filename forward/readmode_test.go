package forward

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gonat/gonat/tun"
)

// Validate refuses each impossible ReadMode with its own error, in the
// library's words (no command-line flags), and takes the rest.
func TestReadModeValidate(t *testing.T) {
	for _, c := range []struct {
		name    string
		mode    ReadMode
		backend string
		want    error // nil: valid
	}{
		{"zero value", ReadMode{}, tun.BackendAuto, nil},
		{"zero value on water", ReadMode{}, tun.BackendWater, nil},
		{"per device, 4 queues", ReadMode{Readers: ReadersPerDevice, Queues: 4}, tun.BackendOffload, nil},
		{"per cpu", ReadMode{Readers: ReadersPerCPU, Queues: 1}, "", nil},
		{"busy-poll", ReadMode{Readers: ReadersBusyPoll, Quiet: 200 * time.Millisecond, Queues: 2}, tun.BackendOffload, nil},
		{"unknown readers", ReadMode{Readers: Readers(7)}, tun.BackendOffload, ErrUnknownReaders},
		{"busy-poll without quiet time", ReadMode{Readers: ReadersBusyPoll}, tun.BackendOffload, ErrQuiet},
		{"negative quiet time", ReadMode{Readers: ReadersBusyPoll, Quiet: -time.Second}, tun.BackendOffload, ErrQuiet},
		{"quiet time per device", ReadMode{Readers: ReadersPerDevice, Quiet: time.Second}, tun.BackendOffload, ErrQuiet},
		{"negative queues", ReadMode{Queues: -1}, tun.BackendOffload, ErrQueueCount},
		{"too many queues", ReadMode{Queues: tun.MaxQueues + 1}, tun.BackendOffload, ErrQueueCount},
		{"per cpu with queues", ReadMode{Readers: ReadersPerCPU, Queues: 2}, tun.BackendOffload, ErrPerCPUQueues},
		{"queues on water", ReadMode{Readers: ReadersBusyPoll, Quiet: time.Second, Queues: 2}, tun.BackendWater, ErrQueuesNeedOffload},
		{"per cpu on water", ReadMode{Readers: ReadersPerCPU}, tun.BackendWater, ErrReadersNeedOffload},
		{"busy-poll on water", ReadMode{Readers: ReadersBusyPoll, Quiet: time.Second}, tun.BackendWater, ErrReadersNeedOffload},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.mode.Validate(c.backend)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("%+v on %q: %v, want %v", c.mode, c.backend, err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "--") {
				t.Errorf("%q names a command-line flag", err)
			}
		})
	}
}

// ReadersAuto tries per CPU first, except with several queues or on
// water; what the readers need of the devices follows from the mode.
func TestReadModeResolve(t *testing.T) {
	for _, c := range []struct {
		mode    ReadMode
		backend string
		want    Readers
		queues  int
		polled  bool
	}{
		{ReadMode{}, tun.BackendAuto, ReadersPerCPU, tun.CPUQueues(), true},
		{ReadMode{}, tun.BackendWater, ReadersPerDevice, 1, false},
		{ReadMode{Queues: 2}, tun.BackendOffload, ReadersPerDevice, 2, false},
		{ReadMode{Readers: ReadersPerDevice}, tun.BackendOffload, ReadersPerDevice, 1, false},
		{ReadMode{Readers: ReadersBusyPoll, Quiet: time.Second, Queues: 3}, tun.BackendOffload, ReadersBusyPoll, 3, true},
	} {
		m := c.mode.Resolve(c.backend)
		if m.Readers != c.want || m.DeviceQueues() != c.queues || m.Polled() != c.polled {
			t.Errorf("%+v on %q: %v, %d queues, polled %v; want %v, %d, %v", c.mode, c.backend, m.Readers, m.DeviceQueues(), m.Polled(), c.want, c.queues, c.polled)
		}
	}
}
