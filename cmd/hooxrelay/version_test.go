package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestMakeVersionInfo(t *testing.T) {
	const rev = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
	vcs := func(rev, modified, when string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.99", Settings: []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: when},
			{Key: "vcs.modified", Value: modified},
		}}
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name     string
		ver, ld  string
		bi       *debug.BuildInfo
		want     versionInfo
		wantLine string
	}{
		{
			name: "nothing known", ver: "dev",
			want:     versionInfo{Version: "dev", Go: runtime.Version(), Platform: platform},
			wantLine: "hooxrelay dev",
		},
		{
			name: "Makefile outside git", ver: "dev", ld: "unknown", bi: &debug.BuildInfo{GoVersion: "go1.99"},
			want:     versionInfo{Version: "dev", Go: "go1.99", Platform: platform},
			wantLine: "hooxrelay dev",
		},
		{
			name: "ldflags only", ver: "v0.3.0", ld: "1a2b3c4d", bi: &debug.BuildInfo{GoVersion: "go1.99"},
			want:     versionInfo{Version: "v0.3.0", Commit: "1a2b3c4d", Go: "go1.99", Platform: platform},
			wantLine: "hooxrelay v0.3.0 (commit 1a2b3c4d)",
		},
		{
			name: "ldflags and build info of the same commit", ver: "v0.3.0", ld: "1a2b3c4d",
			bi:       vcs(rev, "false", "2026-11-27T10:00:00Z"),
			want:     versionInfo{Version: "v0.3.0", Commit: "1a2b3c4d", Dirty: ptr(false), CommitTime: "2026-11-27T10:00:00Z", Go: "go1.99", Platform: platform},
			wantLine: "hooxrelay v0.3.0 (commit 1a2b3c4d, 2026-11-27T10:00:00Z)",
		},
		{
			name: "build info of another commit is ignored", ver: "v0.3.0", ld: "ffffffff",
			bi:       vcs(rev, "true", "2026-11-27T10:00:00Z"),
			want:     versionInfo{Version: "v0.3.0", Commit: "ffffffff", Go: "go1.99", Platform: platform},
			wantLine: "hooxrelay v0.3.0 (commit ffffffff)",
		},
		{
			name: "Makefile with -buildvcs=false in a dirty tree", ver: "1a2b3c4-dirty", ld: "1a2b3c4", bi: &debug.BuildInfo{GoVersion: "go1.99"},
			want:     versionInfo{Version: "1a2b3c4-dirty", Commit: "1a2b3c4", Dirty: ptr(true), Go: "go1.99", Platform: platform},
			wantLine: "hooxrelay 1a2b3c4-dirty (commit 1a2b3c4, dirty)",
		},
		{
			name: "build info only, dirty", ver: "v0.0.0-20261127100000-1a2b3c4d5e6f+dirty",
			bi: vcs(rev, "true", "2026-11-27T10:00:00Z"),
			want: versionInfo{Version: "v0.0.0-20261127100000-1a2b3c4d5e6f+dirty", Commit: rev, Dirty: ptr(true),
				CommitTime: "2026-11-27T10:00:00Z", Go: "go1.99", Platform: platform},
			wantLine: "hooxrelay v0.0.0-20261127100000-1a2b3c4d5e6f+dirty (commit 1a2b3c4d5e6f, dirty, 2026-11-27T10:00:00Z)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := makeVersionInfo(tc.ver, tc.ld, tc.bi)
			if !reflect.DeepEqual(got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Errorf("makeVersionInfo(%q, %q, ...) =\n%s\nwant\n%s", tc.ver, tc.ld, g, w)
			}
			if line := got.String(); line != tc.wantLine {
				t.Errorf("makeVersionInfo(%q, %q, ...).String() = %q, want %q", tc.ver, tc.ld, line, tc.wantLine)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	out, stderr, code := runCmd(t, "", "version")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "hooxrelay "+versionString()) {
		t.Errorf("hooxrelay version: exit %d, stdout %q, stderr %q; want one line starting with %q", code, out, stderr, "hooxrelay "+versionString())
	}
	if alias, _, _ := runCmd(t, "", "--version"); alias != out {
		t.Errorf("hooxrelay --version printed %q, want what hooxrelay version printed, %q", alias, out)
	}
	out, stderr, code = runCmd(t, "", "version", "--json")
	var v versionInfo
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if code != 0 || dec.Decode(&v) != nil || v.Version != versionString() || v.Go == "" || v.Platform == "" {
		t.Errorf("hooxrelay version --json: exit %d, stdout %q, stderr %q; want a JSON object with version %q, go and platform", code, out, stderr, versionString())
	}
	if _, _, code := runCmd(t, "", "version", "extra"); code != 2 {
		t.Errorf("hooxrelay version extra: exit %d, want 2", code)
	}
}

// The variables that the Makefile and the Dockerfile set with -X exist
// under those names: a renamed variable would make -X a silent no-op.
func TestVersionFromLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary once more")
	}
	bin := filepath.Join(t.TempDir(), "hooxrelay")
	ldflags := "-X main.version=v9.8.7-test -X main.commit=0123abcd"
	if out, err := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "hooxrelay v9.8.7-test (commit 0123abcd") {
		t.Errorf("hooxrelay version of a binary built with -ldflags %q = %q, %v; want it to start with %q",
			ldflags, out, err, "hooxrelay v9.8.7-test (commit 0123abcd")
	}
	out, err = exec.Command(bin, "version", "--json").Output()
	var v versionInfo
	if err != nil || json.Unmarshal(out, &v) != nil || v.Version != "v9.8.7-test" || v.Commit != "0123abcd" {
		t.Errorf("hooxrelay version --json of a binary built with -ldflags %q = %s, %v; want version v9.8.7-test, commit 0123abcd", ldflags, out, err)
	}
	os.Remove(bin)
}
