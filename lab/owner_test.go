package lab

import (
	"bufio"
	"strings"
	"testing"
)

func TestHolderOf(t *testing.T) {
	locks := `1: POSIX  ADVISORY  WRITE 611 00:1a:1234 0 EOF
2: FLOCK  ADVISORY  WRITE 28542 00:04:4026532307 0 EOF
2: -> FLOCK  ADVISORY  WRITE 999 00:04:4026532307 0 EOF
3: FLOCK  ADVISORY  WRITE 700 00:04:4026532308 0 EOF
`
	dev := uint64(4) // major 0, minor 4
	if got := holderOf(bufio.NewScanner(strings.NewReader(locks)), dev, 4026532307); got != 28542 {
		t.Errorf("holder %d, want 28542", got)
	}
	if got := holderOf(bufio.NewScanner(strings.NewReader(locks)), dev, 1); got != 0 {
		t.Errorf("holder of an unlocked inode %d, want 0", got)
	}
	// Major 259, minor 3 as the kernel packs them (new_encode_dev).
	big := uint64(3) | uint64(259)<<8
	if got := holderOf(bufio.NewScanner(strings.NewReader("1: FLOCK  ADVISORY  WRITE 5 103:03:77 0 EOF\n")), big, 77); got != 5 {
		t.Errorf("holder on device 259:3 %d, want 5", got)
	}
}
