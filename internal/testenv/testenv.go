// Package testenv finds the programs that some tests need (redis-server,
// redis-cli, promtool, chromium). A test that needs one must not pass by accident
// where it is missing: in CI (CI=true) a missing tool fails the test, and
// elsewhere the test is skipped with the command that installs the tool.
// It also holds small helpers that tests of several packages share.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Install commands for the tools the tests look for, on Debian and Ubuntu.
const (
	InstallRedis    = "apt-get install redis-server redis-tools"
	InstallPromtool = "apt-get install prometheus"
	InstallChromium = "apt-get install chromium"
)

// LookPath returns the path of the program name. When it is not on the
// PATH, it fails t under CI=true and skips t otherwise; install is the
// command that provides it, quoted in either message.
func LookPath(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if InCI() {
		t.Fatalf("%s is not installed, and CI=true makes a missing tool a failure; install it (%s) or run .ci/run, which does", name, install)
	}
	t.Skipf("SKIPPING: %s is not installed; install it with `%s` to run this test", name, install)
	return ""
}

// InCI reports whether the tests run in CI, where CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

// Buffer is a bytes.Buffer that a test may read while a process or a
// goroutine writes to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
