package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// A restart loses the holds, not the deliveries: whatever was pending at
// Close, held or not, is pending again, with the record last completed.
func testReopenRestoresPending(t *testing.T, h Harness) {
	s := open(t, h)
	var evs []*relay.Event
	for i := range 4 {
		ev := Event(Base.Add(time.Duration(i)*time.Millisecond), fmt.Sprint("k", i), "a", "b")
		Ingest(t, s, ev, time.Hour)
		evs = append(evs, ev)
	}
	held := Claim(t, s, "a", Base.Add(time.Second), 3) // e0, e1, e2 held for a
	if len(held) != 3 {
		t.Fatalf("Claim(a, max 3) = %v, want 3 deliveries", ClaimIDs(held))
	}
	// e0 delivered, e1 retried later, e2 still held (in flight) at Close.
	d0, d1 := held[0].Delivery, held[1].Delivery
	d0.State, d0.Attempts = relay.Delivered, 1
	d1.Attempts, d1.NextAttemptAt = 1, Base.Add(time.Hour)
	complete(t, s, relay.Outcome{Delivery: d0, Attempt: &relay.Attempt{Number: 1}}, relay.Outcome{Delivery: d1, Attempt: &relay.Attempt{Number: 1}})

	s = reopen(t, h, s)
	if n := backlog(t, s, "a"); n != 3 {
		t.Errorf("after reopening, Backlog(a) = %d, want 3 (all but the delivered one)", n)
	}
	got := ClaimIDs(Claim(t, s, "a", Base.Add(time.Second), 10))
	want := []string{relay.DeliveryID(evs[2].ID, "a"), relay.DeliveryID(evs[3].ID, "a")}
	if !slices.Equal(got, want) {
		t.Errorf("after reopening, due deliveries of a = %v, want %v (the one in flight at Close comes back, the unclaimed one stays)", got, want)
	}
	later := Claim(t, s, "a", Base.Add(time.Hour), 10)
	if len(later) != 1 || later[0].Delivery.ID() != relay.DeliveryID(evs[1].ID, "a") || later[0].Delivery.Attempts != 1 {
		t.Errorf("after reopening, at the retry time Claim = %v, want e1's delivery with its 1 attempt", ClaimIDs(later))
	}
	if b := Claim(t, s, "b", Base.Add(time.Second), 10); len(b) != 4 {
		t.Errorf("after reopening, target b has %d due deliveries, want 4", len(b))
	}
	for _, c := range later {
		if c.Event == nil || string(c.Event.Payload) != string(evs[1].Payload) {
			t.Errorf("after reopening, claimed event %+v, want payload %q", c.Event, evs[1].Payload)
		}
	}
}

// finalOutcomesAtClose checks that Close writes the final outcomes that
// a store may still hold back after Complete returned. Ingests keep the store
// busy meanwhile, as in production: a store that lets outcomes wait for a
// quiet moment, or ride along with other writes, still has some unwritten
// at Close.
func finalOutcomesAtClose(t *testing.T, h Harness) {
	s := open(t, h)
	const n = 10
	for i := range n {
		Ingest(t, s, Event(Base.Add(time.Duration(i)*time.Millisecond), fmt.Sprint("k", i), "a", "b"), time.Hour)
	}
	held := Claim(t, s, "a", Base.Add(time.Second), n)
	if len(held) != n {
		t.Fatalf("Claim(a) = %v, want all %d deliveries", ClaimIDs(held), n)
	}
	// Ingests run until Close ends them, so that the store is busy
	// from before the first Complete to Close.
	const ingesters = 8
	var acked atomic.Int64 // Ingests of events for target c that succeeded
	var wg sync.WaitGroup
	stop := make(chan struct{}) // ends them early when the test fails
	t.Cleanup(func() { close(stop); wg.Wait() })
	closing := s // s is the reopened store once Close ends the ingests
	for g := range ingesters {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ev := Event(Base.Add(time.Hour), fmt.Sprint("busy", g, "-", i), "c")
				if _, err := closing.Ingest(t.Context(), ev, time.Hour); err != nil {
					if !errors.Is(err, relay.ErrClosed) {
						t.Errorf("Ingest while completing: %v", err)
					}
					return
				}
				acked.Add(1)
			}
		})
	}
	Eventually(t, 2*time.Second, func() error {
		if n := acked.Load(); n < ingesters {
			return fmt.Errorf("%d of %d concurrent Ingests done", n, ingesters)
		}
		return nil
	})
	for i, c := range held {
		d := c.Delivery
		d.State, d.Attempts = relay.Delivered, 1
		if i%2 == 1 {
			d.State = relay.Dead
		}
		complete(t, s, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: Base}})
	}
	s = reopen(t, h, s)
	wg.Wait()
	if cs := Claim(t, s, "a", Base.Add(1000*time.Hour), n); len(cs) != 0 {
		t.Errorf("after Complete(delivered or dead) of all %d deliveries of a, then Close and reopen, Claim(a) = %v, want nothing: Close must write the outcomes", n, ClaimIDs(cs))
	}
	if got := backlog(t, s, "a"); got != 0 {
		t.Errorf("after reopening, Backlog(a) = %d, want 0", got)
	}
	if cs := Claim(t, s, "b", Base.Add(time.Second), n); len(cs) != n {
		t.Errorf("after reopening, Claim(b) = %v, want all %d deliveries of b", ClaimIDs(cs), n)
	}
	// An Ingest cut short by Close may or may not have been written.
	if got, want := backlog(t, s, "c"), int(acked.Load()); got < want || got > want+ingesters {
		t.Errorf("after reopening, Backlog(c) = %d, want the %d events whose Ingest succeeded before Close (and at most %d more)", got, want, ingesters)
	}
}

// A closed store refuses everything, the Admin methods and the operator's
// moves over them included, with relay.ErrClosed, and a second Close is
// harmless.
func testClosed(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping on an open store: %v", err)
	}
	Ingest(t, s, Event(Base, "k", "a"), time.Hour)
	c := Claim(t, s, "a", Base, 1)[0]
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	_, ingestErr := s.Ingest(ctx, Event(Base, "k2", "a"), time.Hour)
	_, claimErr := s.Claim(ctx, "a", Base, 1)
	_, _, nextErr := s.NextDue(ctx, "a")
	_, backlogErr := s.Backlog(ctx, "a")
	_, eventsErr := s.Events(ctx, relay.EventFilter{})
	_, eventErr := s.Event(ctx, c.Event.ID)
	_, deliveriesErr := s.Deliveries(ctx, relay.DeliveryFilter{})
	_, _, loadErr := s.LoadDelivery(ctx, c.Delivery.ID())
	requeued := c.Delivery
	requeued.NextAttemptAt = Base.Add(time.Hour)
	_, swapErr := s.SwapDeliveries(ctx, relay.Swap{Old: &c.Delivery, New: requeued})
	_, countsErr := s.Counts(ctx)
	_, pausedErr := s.Paused(ctx)
	_, requeueErr := relay.Requeue(ctx, s, c.Delivery.ID(), Base)
	_, requeueDeadErr := relay.RequeueDead(ctx, s, "a", Base, 10)
	for name, err := range map[string]error{
		"Ingest":            ingestErr,
		"Claim":             claimErr,
		"NextDue":           nextErr,
		"Backlog":           backlogErr,
		"Complete":          s.Complete(ctx, relay.Outcome{Delivery: c.Delivery}),
		"Release":           s.Release(ctx, Base, c.Delivery),
		"Ping":              s.Ping(ctx),
		"Events":            eventsErr,
		"Event":             eventErr,
		"Deliveries":        deliveriesErr,
		"LoadDelivery":      loadErr,
		"SwapDeliveries":    swapErr,
		"Counts":            countsErr,
		"SetPaused":         s.SetPaused(ctx, "a", true),
		"Paused":            pausedErr,
		"relay.Requeue":     requeueErr,
		"relay.RequeueDead": requeueDeadErr,
	} {
		if !errors.Is(err, relay.ErrClosed) {
			t.Errorf("%s after Close = %v, want relay.ErrClosed", name, err)
		}
	}
	if err := reopen(t, h, s).Ping(ctx); err != nil {
		t.Errorf("Ping after reopening: %v", err)
	}
}
