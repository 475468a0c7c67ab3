package pebblestore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// TestCompleteSharesCommits checks that the outcomes of Complete calls
// made while a commit is in progress go together into the next one, and
// that each is written.
func TestCompleteSharesCommits(t *testing.T) {
	var commits atomic.Int64
	hold := make(chan struct{})
	var holding atomic.Bool
	dir := filepath.Join(t.TempDir(), "complete")
	s, err := Open(dir, Options{BeforeCommit: func() {
		commits.Add(1)
		if holding.CompareAndSwap(true, false) {
			<-hold
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	ctx := context.Background()
	now := time.Now()
	const n = 20
	for i := range n {
		if _, err := s.Ingest(ctx, storetest.Event(now, fmt.Sprintf("key-%d", i), "a"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	claims, err := s.Claim(ctx, "a", now, n)
	if err != nil || len(claims) != n {
		t.Fatalf("Claim: %d claims, %v; want %d", len(claims), err, n)
	}
	holding.Store(true)
	before := commits.Load()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range claims {
		d := c.Delivery
		d.State, d.Attempts, d.LastStatus, d.UpdatedAt = relay.Delivered, 1, 200, now
		o := relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: now, Status: 200}}
		wg.Go(func() { errs <- s.Complete(ctx, o) })
		if i == 0 {
			// The first call's commit is held; the others wait behind it.
			for holding.Load() {
				time.Sleep(time.Millisecond)
			}
		}
	}
	for {
		s.cmu.Lock()
		waiting := len(s.cwait)
		s.cmu.Unlock()
		if waiting == n-1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Complete: %v", err)
		}
	}
	if got := commits.Load() - before; got != 2 {
		t.Errorf("%d Complete calls, %d of them while a commit was held, took %d commits; want 2", n, n-1, got)
	}
	if left, err := s.Backlog(ctx, "a"); err != nil || left != 0 {
		t.Errorf("Backlog after completing every delivery: %d, %v; want 0", left, err)
	}
	for _, c := range claims {
		d, ok, err := s.loadDelivery(c.Delivery.ID())
		if err != nil || !ok || d.State != relay.Delivered {
			t.Errorf("delivery %s: %v, found %v, state %v; want delivered", c.Delivery.ID(), err, ok, d.State)
		}
	}
	// The counter keys, merged once per batch, say the same after a
	// restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if left, err := s.Backlog(ctx, "a"); err != nil || left != 0 {
		t.Errorf("Backlog after a restart: %d, %v; want 0", left, err)
	}
	if got := s.countsNow()["a"]; got != (relay.StateCounts{Delivered: n}) {
		t.Errorf("counts after a restart: %+v; want %d delivered", got, n)
	}
}
