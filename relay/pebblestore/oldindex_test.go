package pebblestore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// oldIndexKeys counts the task and status index keys of s.
func oldIndexKeys(t *testing.T, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kTask}, UpperBound: []byte{kStatus + 1}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

// Ingests write no task or status index keys (the pair index answers
// both); those of a store written by an earlier version are deleted with
// their events.
func TestOldIndexKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev := storetest.Event(storetest.Base, "old") // no targets: finished at once
	storetest.Ingest(t, s, ev, time.Hour)
	if n := oldIndexKeys(t, s); n != 0 {
		t.Errorf("an ingest wrote %d task or status index keys, want none", n)
	}
	if s.oldIndexes {
		t.Error("a new store says it holds old index keys")
	}
	// As an earlier version wrote them.
	for _, k := range [][]byte{taskKey(ev), statusKey(ev)} {
		if err := s.db.Set(k, nil, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{Retention: time.Hour, Now: func() time.Time { return storetest.Base.Add(3 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.oldIndexes {
		t.Error("a store with task and status index keys says it has none")
	}
	storetest.Eventually(t, 5*time.Second, func() error {
		if _, err := s.Event(t.Context(), ev.ID); err == nil {
			return errors.New("the event is not pruned yet")
		}
		return nil
	})
	if n := oldIndexKeys(t, s); n != 0 {
		t.Errorf("pruning the event left %d task or status index keys", n)
	}
	if got, err := s.Events(t.Context(), relay.EventFilter{Task: ev.Task}); err != nil || len(got) != 0 {
		t.Errorf("Events(task) after pruning = %v, %v; want none", got, err)
	}
}
