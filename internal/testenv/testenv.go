// Package testenv finds the programs that some tests need (redis-server,
// redis-cli, promtool, chromium). A test that needs one must not pass by accident
// where it is missing: in CI (CI=true) a missing tool fails the test, and
// elsewhere the test is skipped with the command that installs the tool.
package testenv

import (
	"os"
	"os/exec"
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
