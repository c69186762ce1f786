//go:build linux && !(mips || mipsle || mips64 || mips64le || sparc64)

package traverse

// soReusePort is SO_REUSEPORT, which package syscall does not define on
// Linux (asm-generic/socket.h).
const soReusePort = 0xf
