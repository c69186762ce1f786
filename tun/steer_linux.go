package tun

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tunSetSteeringEBPF is TUNSETSTEERINGEBPF, _IOR('T', 224, int) (Linux
// 4.16+): it attaches a socket-filter program to a multi-queue device;
// the program's return value, modulo the number of queues, is the queue
// a packet the kernel sends into the device goes to.
const tunSetSteeringEBPF = 0x800454e0

// bpfInsn is struct bpf_insn.
type bpfInsn struct {
	code uint8
	regs uint8 // dst_reg:4, src_reg:4
	off  int16
	imm  int32
}

// bpfProgLoadAttr is union bpf_attr for BPF_PROG_LOAD up to prog_flags;
// the kernel accepts a shorter attr (the fields it leaves out are zero).
type bpfProgLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
}

// steerByCPU attaches to the multi-queue device of fd a program that
// sends every packet to queue (CPU it was sent from) mod queues, instead
// of the kernel's flow hash. Its whole text is two instructions: return
// bpf_get_smp_processor_id().
func steerByCPU(fd int) error {
	prog := []bpfInsn{
		{code: 0x85, imm: 8}, // BPF_JMP|BPF_CALL: bpf_get_smp_processor_id (helper 8)
		{code: 0x95},         // BPF_JMP|BPF_EXIT: return r0
	}
	license := []byte("GPL\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_SOCKET_FILTER,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&prog[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	pfd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	if errno != 0 {
		return fmt.Errorf("steering by CPU: loading the eBPF program (bpf(2) BPF_PROG_LOAD): %w (needs root or CAP_BPF)", errno)
	}
	defer unix.Close(int(pfd)) // the device holds its own reference
	p := int32(pfd)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), tunSetSteeringEBPF, uintptr(unsafe.Pointer(&p))); errno != 0 {
		return fmt.Errorf("steering by CPU: TUNSETSTEERINGEBPF: %w (Linux 4.16+)", errno)
	}
	return nil
}

// maxQueues is the kernel's limit of queues per TUN device (MAX_TAP_QUEUES).
const maxQueues = 256

// CPUQueues is how many queues a device that steers by CPU needs for
// every CPU this process may use to have its own: the highest such CPU
// number plus one (queue = CPU mod queues), at most the kernel's 256.
func CPUQueues() int {
	var s unix.CPUSet
	if unix.SchedGetaffinity(0, &s) != nil {
		return runtime.NumCPU()
	}
	n := 1
	for c := range maxQueues {
		if s.IsSet(c) {
			n = c + 1
		}
	}
	return n
}
