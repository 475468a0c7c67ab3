package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/boltstore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// A write that fails for its own input (a key bbolt refuses) fails its
// caller only: the store stays ready, as /readyz reports it.
func TestOneBadWriteKeepsTheStoreReady(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "ready.db"), boltstore.Options{})
	ev := storetest.Event(time.Now(), "k", strings.Repeat("t", 40<<10)) // a delivery key over 32 KiB
	if _, err := s.Ingest(t.Context(), ev, time.Hour); err == nil {
		t.Fatal("Ingest with a 40 KiB delivery key succeeded, want bbolt's refusal")
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after one write refused for its own key = %v, want nil: the store is fine", err)
	}
}

// disk is a BeforeCommit hook that can hold every commit, as a disk that
// stopped answering would.
type disk struct {
	frozen  atomic.Bool
	held    chan struct{} // a commit is held
	release chan struct{} // closed: held commits go on
}

func newDisk(t *testing.T) *disk {
	d := &disk{held: make(chan struct{}, 100), release: make(chan struct{})}
	t.Cleanup(d.thaw) // before the store's Close, which cleanup runs later
	return d
}

func (d *disk) beforeCommit() {
	if d.frozen.Load() {
		d.held <- struct{}{}
		<-d.release
	}
}

func (d *disk) thaw() {
	if d.frozen.CompareAndSwap(true, false) {
		close(d.release)
	}
}

// stored reports whether the event id is in the store.
func stored(t *testing.T, s *boltstore.Store, id string) bool {
	t.Helper()
	_, err := s.Event(t.Context(), id)
	if err != nil && !errors.Is(err, relay.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// barrier returns once every write queued before it has been committed or
// dropped: the committer takes writes in order.
func barrier(t *testing.T, s *boltstore.Store) {
	t.Helper()
	if _, err := s.Ingest(t.Context(), storetest.Event(time.Now(), fmt.Sprint("barrier_", time.Now().UnixNano())), time.Hour); err != nil {
		t.Fatal(err)
	}
}

// A write's deadline refuses it only while the committer has not taken it:
// an error from Ingest always means "not stored", and a write being
// committed is waited for, so that a 503 never names a stored event.
func TestIngestErrorMeansNotStored(t *testing.T) {
	d := newDisk(t)
	s := open(t, filepath.Join(t.TempDir(), "deadline.db"), boltstore.Options{BeforeCommit: d.beforeCommit})
	t.Run("deadline passed before the call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		evs := make([]*relay.Event, 200)
		errs := make([]error, len(evs))
		for i := range evs {
			evs[i] = storetest.Event(time.Now(), fmt.Sprintf("late_%d", i), "a")
			_, errs[i] = s.Ingest(ctx, evs[i], time.Hour)
		}
		barrier(t, s)
		for i, ev := range evs {
			if has := stored(t, s, ev.ID); (errs[i] == nil) != has {
				t.Fatalf("Ingest with a done context: err %v, stored %v; an error must mean not stored", errs[i], has)
			}
		}
	})
	t.Run("deadline passed while the disk held the commit", func(t *testing.T) {
		d.frozen.Store(true)
		first, second := storetest.Event(time.Now(), "first", "a"), storetest.Event(time.Now(), "second", "a")
		ctx1, cancel1 := context.WithCancel(t.Context()) // its deadline, passed below
		defer cancel1()
		firstErr := make(chan error, 1)
		go func() {
			_, err := s.Ingest(ctx1, first, time.Hour)
			firstErr <- err
		}()
		<-d.held // the first write is in a commit
		ctx2, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel2()
		_, err2 := s.Ingest(ctx2, second, time.Hour) // queued behind it
		cancel1()
		d.thaw()
		err1 := <-firstErr
		barrier(t, s)
		for _, c := range []struct {
			name string
			ev   *relay.Event
			err  error
		}{{"written while its deadline passed", first, err1}, {"queued behind it", second, err2}} {
			if has := stored(t, s, c.ev.ID); (c.err == nil) != has {
				t.Errorf("Ingest %s: err %v, stored %v; an error must mean not stored, and success stored", c.name, c.err, has)
			}
		}
		if err1 != nil {
			t.Errorf("Ingest already in a commit when its deadline passed = %v, want it waited for and nil", err1)
		}
	})
}

// Ping fails while a commit does not end, and answers again once the disk
// does; Unwritten counts what the disk holds up.
func TestPingFollowsAHungDisk(t *testing.T) {
	d := newDisk(t)
	s := open(t, filepath.Join(t.TempDir(), "hung.db"), boltstore.Options{BeforeCommit: d.beforeCommit})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on a healthy store = %v", err)
	}
	d.frozen.Store(true)
	go s.Ingest(context.WithoutCancel(t.Context()), storetest.Event(time.Now(), "stuck", "a"), time.Hour)
	<-d.held
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping while a commit hangs = nil, want an error")
	}
	if w, _ := s.Unwritten(); w < 1 {
		t.Errorf("Unwritten while a commit hangs = %d writes, want at least 1", w)
	}
	d.thaw()
	storetest.Eventually(t, 5*time.Second, func() error { return s.Ping(t.Context()) })
}
