package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/boltstore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// A relay pointed at the bbolt file of an earlier version refuses to
// start, in one line naming the migration; `hooxrelay store migrate`
// copies the file into a new directory (what it copies is checked in
// internal/migrate) and refuses to write over one.
func TestStoreMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "hooxrelay.db")
	bs, err := boltstore.Open(old, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev := storetest.Event(time.Now(), "before_upgrade", "a")
	storetest.Ingest(t, bs, ev, time.Hour)
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := func(path string) string {
		return tempConfig(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets: [{name: a, url: "http://127.0.0.1:1/"}]
routes: [{name: all, targets: [a]}]
`, path))
	}

	_, stderr, code := runCmd(t, "", "serve", "--config", cfg(old))
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "hooxrelay store migrate --from "+old) {
		t.Errorf("serve on an old store file: exit %d, stderr %q; want a failure in one line naming `hooxrelay store migrate --from %s`", code, stderr, old)
	}

	if _, stderr, code := runCmd(t, "", "store", "migrate", "--from", old); code != 2 || !strings.Contains(stderr, "--to") {
		t.Errorf("store migrate without --to: exit %d, stderr %q; want 2 and a word about --to", code, stderr)
	}
	store := filepath.Join(dir, "store")
	stdout, stderr, code := runCmd(t, "", "store", "migrate", "--from", old, "--to", store)
	if code != 0 || !strings.Contains(stdout, "migrated 1 events, 1 deliveries, 0 attempts, 1 dedup marks, 0 pause marks") || !strings.Contains(stderr, "holds 1 events") {
		t.Fatalf("store migrate: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	if _, stderr, code := runCmd(t, "", "store", "migrate", "--from", old, "--to", store); code != 1 || !strings.Contains(stderr, "exists already") {
		t.Errorf("store migrate into an existing directory: exit %d, stderr %q; want 1, exists already", code, stderr)
	}
}
