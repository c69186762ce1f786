package tests

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// goTestModule runs `go test -count=1 -v . ARGS` in dir, a module of its
// own under tests/, with env. It runs in a process group of its own, and a
// run past the time limit is killed whole: the go tool and the test binary
// it started, which would otherwise go on using its labs after this test.
func goTestModule(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-count=1", "-v", "."}, args...)...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	return string(out), err
}
