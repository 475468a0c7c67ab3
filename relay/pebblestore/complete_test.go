package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// claimed ingests n events of target "a" received at now and claims
// their deliveries.
func claimed(t *testing.T, s *Store, now time.Time, n int) []relay.Claim {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := s.Ingest(ctx, storetest.Event(now, fmt.Sprintf("key-%d", i), "a"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	claims, err := s.Claim(ctx, "a", now, n)
	if err != nil || len(claims) != n {
		t.Fatalf("Claim: %d claims, %v; want %d", len(claims), err, n)
	}
	return claims
}

// delivered is the outcome of c's first attempt, delivered at now.
func delivered(c relay.Claim, now time.Time) relay.Outcome {
	d := c.Delivery
	d.State, d.Attempts, d.LastStatus, d.UpdatedAt = relay.Delivered, 1, 200, now
	return relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: now, Status: 200}}
}

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
	claims := claimed(t, s, now, n)
	holding.Store(true)
	before := commits.Load()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range claims {
		o := delivered(c, now)
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

// TestQueueCompleteWritesAndClose checks that QueueComplete returns before
// the write, tells done once it is written, and that Close writes the
// outcomes still waiting (durably: they are there after a reopen), then
// refuses more.
func TestQueueCompleteWritesAndClose(t *testing.T) {
	hold := make(chan struct{})
	var holding atomic.Bool
	dir := filepath.Join(t.TempDir(), "queued")
	s, err := Open(dir, Options{BeforeCommit: func() {
		if holding.Load() {
			<-hold
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	const n = 3
	claims := claimed(t, s, now, n)
	outcome := func(c relay.Claim) relay.Outcome { return delivered(c, now) }
	holding.Store(true)
	written := make(chan error, n)
	if err := s.QueueComplete(ctx, outcome(claims[0]), func(err error) { written <- err }); err != nil {
		t.Fatal(err)
	}
	for !s.isWriting() {
		time.Sleep(time.Millisecond)
	}
	// The first write is held by the disk: the second waits behind it,
	// and QueueComplete did not wait for either.
	if err := s.QueueComplete(ctx, outcome(claims[1]), func(err error) { written <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-written:
		t.Fatalf("done called (%v) while the disk holds the write", err)
	case <-time.After(50 * time.Millisecond):
	}
	holding.Store(false)
	close(hold)
	for range 2 {
		if err := <-written; err != nil {
			t.Fatalf("queued outcome: %v", err)
		}
	}
	// One more, whose write the disk holds while Close starts: Close
	// waits for it and makes it durable.
	hold = make(chan struct{})
	holding.Store(true)
	if err := s.QueueComplete(ctx, outcome(claims[2]), func(err error) { written <- err }); err != nil {
		t.Fatal(err)
	}
	for !s.isWriting() {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for !s.isClosed() {
		time.Sleep(time.Millisecond)
	}
	holding.Store(false)
	close(hold)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatalf("outcome queued before Close: %v", err)
	}
	if err := s.QueueComplete(ctx, outcome(claims[0]), func(error) { t.Error("done called after Close") }); !errors.Is(err, relay.ErrClosed) {
		t.Errorf("QueueComplete after Close: %v; want ErrClosed", err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.countsNow()["a"]; got != (relay.StateCounts{Delivered: n}) {
		t.Errorf("counts after a reopen: %+v; want %d delivered", got, n)
	}
}

// isClosed reports whether Close has started.
func (s *Store) isClosed() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.closed
}

// isWriting reports whether the completion writer is writing.
func (s *Store) isWriting() bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.cwriting && len(s.cwait) == 0
}

// A claim reads the delivery's record from its queue key, and from the
// record's own key when the queue key holds none (earlier versions wrote
// none).
func TestClaimReadsRecordOfEmptyQueueKey(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	ev := storetest.Event(now, "k", "a")
	s := withEvent(t, ev)
	d := relay.NewDelivery(ev, "a")
	qk := queueKey("a", d.NextAttemptAt, d.ID())
	v, closer, err := s.db.Get(qk)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 {
		t.Error("the queue key holds no record")
	}
	closer.Close()
	if err := s.db.Set(qk, nil, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Claim(ctx, "a", now, 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Claim: %v, %v", cs, err)
	}
	if got := cs[0].Delivery; got.EventID != ev.ID || got.State != relay.Pending || !got.BudgetSince.Equal(d.BudgetSince) {
		t.Errorf("claimed %+v; want the stored delivery %+v", got, d)
	}
}
