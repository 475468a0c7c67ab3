package pebblestore_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// A disk that fails the WAL's writes and syncs: Ingest returns an error
// (the ingress answers 503) instead of the process exiting, as pebble's own
// logger would make it, and Ping fails from then on. What was acked before
// is there when the store is opened again on a working disk.
func TestFailingDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) {
			return errorfs.ErrInjected
		}
		return nil
	})}
	s, err := pebblestore.Open(dir, pebblestore.Options{FS: errorfs.Wrap(vfs.Default, toggle)})
	if err != nil {
		t.Fatal(err)
	}
	before := storetest.Event(storetest.Base, "before", "a")
	storetest.Ingest(t, s, before, time.Hour)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on a working disk = %v", err)
	}

	toggle.On()
	if _, err := s.Ingest(t.Context(), storetest.Event(storetest.Base, "during", "a"), time.Hour); err == nil {
		t.Error("Ingest while the disk fails WAL writes = nil, want an error")
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after a failed write = nil, want an error")
	}
	toggle.Off()
	// Pebble's commit pipeline does not recover from a failed WAL write:
	// the store keeps refusing writes, and says so, until it is reopened.
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after the disk came back, without a restart = nil, want the failure still reported")
	}
	if _, err := s.Ingest(t.Context(), storetest.Event(storetest.Base, "after", "a"), time.Hour); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("Ingest after a failed WAL write = %v, want an error that says to restart", err)
	}
	s.Close()

	s, err = pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("reopening after the failure: %v", err)
	}
	defer s.Close()
	got, err := s.Event(t.Context(), before.ID)
	if err != nil || string(got.Event.Payload) != string(before.Payload) {
		t.Errorf("event acked before the failure, after reopening: %v, %v", got, err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after reopening on a working disk = %v", err)
	}
}

// A path that holds a file (the bbolt store of earlier versions) is refused
// with a message that names the migration.
func TestOldFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hooxrelay.db")
	if err := writeFile(path); err != nil {
		t.Fatal(err)
	}
	_, err := pebblestore.Open(path, pebblestore.Options{})
	if !errors.Is(err, pebblestore.ErrOldFile) || !strings.Contains(err.Error(), "hooxrelay store migrate --from "+path) {
		t.Errorf("Open(a file) = %v, want ErrOldFile naming `hooxrelay store migrate --from %s`", err, path)
	}
}

// Claims read from a lower bound that moves past finished deliveries, and
// still find a delivery that is due earlier than that bound once it is
// written (a retry moved back, a late ingest).
func TestQueueHeadMovesBack(t *testing.T) {
	s, err := pebblestore.Open(filepath.Join(t.TempDir(), "store"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := storetest.Base
	for i := range 50 {
		storetest.Ingest(t, s, storetest.Event(base.Add(time.Duration(i)*time.Second), string(rune('A'+i)), "a"), time.Hour)
	}
	for _, c := range storetest.Claim(t, s, "a", base.Add(time.Hour), 40) {
		d := c.Delivery
		d.State, d.Attempts = relay.Delivered, 1
		if err := s.Complete(t.Context(), relay.Outcome{Delivery: d}); err != nil {
			t.Fatal(err)
		}
	}
	if cs := storetest.Claim(t, s, "a", base.Add(30*time.Second), 10); len(cs) != 0 {
		t.Fatalf("Claim at +30s after the first 40 were delivered = %v, want none", storetest.ClaimIDs(cs))
	}
	early := storetest.Event(base.Add(-time.Hour), "early", "a")
	storetest.Ingest(t, s, early, time.Hour)
	cs := storetest.Claim(t, s, "a", base.Add(time.Hour), 1)
	if len(cs) != 1 || cs[0].Event.ID != early.ID {
		t.Errorf("Claim after ingesting an event due before the queue's head = %v, want it", storetest.ClaimIDs(cs))
	}
	if n, _ := s.Backlog(t.Context(), "a"); n != 11 {
		t.Errorf("Backlog(a) = %d, want 11", n)
	}
}
