package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func newVersionCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "version",
		GroupID: groupOther,
		Short:   "print the version, the commit it was built from and when that commit was made",
		Long: `Prints the version of this binary, the VCS commit it was built from (with
"dirty" when the tree had uncommitted changes) and the time of that commit,
when known, on one line:

  hooxrelay v0.3.0 (commit 1a2b3c4d, 2026-11-27T10:00:00Z)

They come from the -X main.version and -X main.commit linker flags that
"make build" and "make release" set, else from what the Go toolchain
recorded (the module version, vcs.revision, vcs.modified, vcs.time).
"hooxrelay --version" prints the same line.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			bv := buildVersion()
			if asJSON {
				return json.NewEncoder(e.stdout).Encode(bv)
			}
			fmt.Fprintln(e.stdout, bv.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object: version, commit, dirty, commit_time, go, platform")
	return cmd
}

// versionInfo is what "hooxrelay version" prints. An empty Commit or
// CommitTime, or a nil Dirty, means unknown: a binary built outside a git
// checkout without the Makefile's -ldflags knows none of them.
type versionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	Dirty      *bool  `json:"dirty,omitempty"`       // built from a tree with uncommitted changes
	CommitTime string `json:"commit_time,omitempty"` // when the commit was made (RFC 3339), not the build
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

// String is the one line "hooxrelay version" prints, such as
// "hooxrelay v0.3.0 (commit 1a2b3c4d, 2026-11-27T10:00:00Z)".
func (v versionInfo) String() string {
	var parts []string
	if v.Commit != "" {
		c := v.Commit
		if len(c) > 12 {
			c = c[:12] // a full hash from the build info; git's short form is enough to find it
		}
		parts = append(parts, "commit "+c)
	}
	if v.Dirty != nil && *v.Dirty {
		parts = append(parts, "dirty")
	}
	if v.CommitTime != "" {
		parts = append(parts, v.CommitTime)
	}
	if len(parts) == 0 {
		return "hooxrelay " + v.Version
	}
	return "hooxrelay " + v.Version + " (" + strings.Join(parts, ", ") + ")"
}

// buildVersion describes this binary from the -ldflags variables and the
// build information the Go toolchain recorded.
func buildVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return makeVersionInfo(versionString(), commit, bi)
}

// makeVersionInfo merges the version and commit set by -ldflags (ldCommit
// "" or "unknown" when not set) with bi, which may be nil. The dirty flag
// and commit time come from bi only when bi describes the same commit:
// details of another commit would be wrong, not merely missing. Without
// them (go build -buildvcs=false), a version ending in "-dirty", as "git
// describe --dirty" in the Makefile writes it, still marks the build dirty.
func makeVersionInfo(ver, ldCommit string, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: ver, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ldCommit != "unknown" { // what the Makefile sets outside a git checkout
		v.Commit = ldCommit
	}
	if v.Commit != "" && strings.HasSuffix(ver, "-dirty") {
		v.Dirty = ptr(true)
	}
	if bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	var rev, modified, when string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			when = s.Value
		}
	}
	switch {
	case rev == "":
		return v
	case v.Commit == "":
		v.Commit = rev
	case !strings.HasPrefix(rev, v.Commit):
		return v
	}
	if modified != "" {
		v.Dirty = ptr(modified == "true")
	}
	v.CommitTime = when
	return v
}

func ptr[T any](v T) *T { return &v }
