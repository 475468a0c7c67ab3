package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The test runs itself as a child process so that the child's failure or
// skip can be looked at from outside.
func TestLookPath(t *testing.T) {
	if name := os.Getenv("TESTENV_CHILD_TOOL"); name != "" {
		LookPath(t, name, "apt-get install something")
		return
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tool, ci string
		fails          bool
		want           string
	}{
		{"present", filepath.Base(sh), "true", false, "--- PASS"},
		{"missing outside CI", "no-such-tool-x7", "", false, "SKIPPING: no-such-tool-x7 is not installed; install it with `apt-get install something`"},
		{"missing in CI", "no-such-tool-x7", "true", true, "no-such-tool-x7 is not installed, and CI=true makes a missing tool a failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestLookPath$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTENV_CHILD_TOOL="+tc.tool, "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.fails || !strings.Contains(string(out), tc.want) {
				t.Errorf("LookPath(%q) with CI=%q: error %v, output:\n%s\nwant failed=%v and %q", tc.tool, tc.ci, err, out, tc.fails, tc.want)
			}
		})
	}
}
