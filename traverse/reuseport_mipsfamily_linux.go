//go:build linux && (mips || mipsle || mips64 || mips64le || sparc64)

package traverse

// soReusePort is SO_REUSEPORT on these architectures
// (arch/{mips,sparc}/include/uapi/asm/socket.h).
const soReusePort = 0x200
