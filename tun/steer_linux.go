package tun

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpfInsn is struct bpf_insn.
type bpfInsn struct {
	code uint8
	regs uint8 // dst_reg (low 4 bits), src_reg (high 4 bits)
	off  int16
	imm  int32
}

// bpfProgLoadAttr is union bpf_attr for BPF_PROG_LOAD up to prog_flags;
// the kernel accepts a shorter attr (the fields it leaves out are zero).
// The pointers are unsafe.Pointer, not integers, so the collector sees
// them until the call returns.
type bpfProgLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       unsafe.Pointer
	license     unsafe.Pointer
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
}

// skbHashOff is offsetof(struct __sk_buff, hash).
const skbHashOff = 68

// steerProg is the steering program of a device that steers by CPU. A
// TCP segment goes by its flow hash: the segments of one connection
// leave its sender from several CPUs (the application's sends, and the
// sends its ACKs clock out in softirq wherever they arrive), and read
// from several queues by several threads they overtake each other
// (measured: 50K out-of-order queueings and 930K retransmitted segments
// in 4 s of iperf3 -P 4, none steering TCP by hash). Everything else
// goes by the CPU that sent it. The kernel takes the result modulo the
// number of queues.
var steerProg = [...]bpfInsn{
	{code: 0xbf, regs: 1<<4 | 6},                // r6 = r1 (the context, which LD_ABS reads)
	{code: 0x30, imm: 9},                        // r0 = packet[9]: the IPv4 protocol (LD_ABS|B)
	{code: 0x55, off: 2, imm: 6},                // if r0 != TCP goto +2
	{code: 0x61, regs: 6 << 4, off: skbHashOff}, // r0 = skb->hash (LDX|MEM|W)
	{code: 0x95},                                // return r0
	{code: 0x85, imm: 8},                        // r0 = bpf_get_smp_processor_id()
	{code: 0x95},                                // return r0
}

var steerLicense = [...]byte{'G', 'P', 'L', 0}

// steerByCPU attaches steerProg to the multi-queue device of fd
// (TUNSETSTEERINGEBPF, Linux 4.16+).
func steerByCPU(fd int) error {
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_SOCKET_FILTER,
		insnCnt:  uint32(len(steerProg)),
		insns:    unsafe.Pointer(&steerProg[0]),
		license:  unsafe.Pointer(&steerLicense[0]),
	}
	// The verifier gives up with EAGAIN when a signal is pending, and Go
	// signals its threads to preempt goroutines: try again.
	var pfd uintptr
	var errno unix.Errno
	for range 10 {
		pfd, _, errno = unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if errno != unix.EAGAIN && errno != unix.EINTR {
			break
		}
	}
	runtime.KeepAlive(&attr)
	if errno != 0 {
		hint := ""
		if errors.Is(errno, unix.EPERM) {
			hint = " (needs root or CAP_BPF; a seccomp filter may also forbid bpf(2))"
		}
		return fmt.Errorf("steering by CPU: loading the eBPF program (bpf(2) BPF_PROG_LOAD): %w%s", errno, hint)
	}
	defer unix.Close(int(pfd)) // the device holds its own reference
	p := int32(pfd)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETSTEERINGEBPF, uintptr(unsafe.Pointer(&p))); errno != 0 {
		return fmt.Errorf("steering by CPU: TUNSETSTEERINGEBPF: %w (Linux 4.16+)", errno)
	}
	return nil
}

// CPUQueues is how many queues a device that steers by CPU needs for
// every CPU this process may use to have its own: the highest such CPU
// number plus one (queue = CPU mod queues), at most the kernel's 256.
// With a CPU mask that does not start at 0 the queues below it are read
// by threads that are not pinned.
func CPUQueues() int {
	var s unix.CPUSet
	if unix.SchedGetaffinity(0, &s) != nil {
		return min(runtime.NumCPU(), MaxQueues)
	}
	n := 1
	for c := range MaxQueues {
		if s.IsSet(c) {
			n = c + 1
		}
	}
	return n
}
