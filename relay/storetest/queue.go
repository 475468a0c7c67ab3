package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Claim hands out due deliveries only, oldest first, with their events as
// ingested, and never one that is held.
func testClaim(t *testing.T, h Harness) {
	s := open(t, h)
	e1 := Event(Base, "k1", "a", "b")
	e2 := Event(Base.Add(time.Second), "k2", "a")
	e3 := Event(Base.Add(2*time.Second), "k3", "a")
	for _, ev := range []*relay.Event{e1, e2, e3} {
		Ingest(t, s, ev, time.Hour)
	}

	if cs := Claim(t, s, "a", Base.Add(-time.Millisecond), 10); len(cs) != 0 {
		t.Fatalf("Claim before anything is due returned %v", ClaimIDs(cs))
	}
	if cs := Claim(t, s, "nobody", Base.Add(time.Hour), 10); len(cs) != 0 {
		t.Fatalf("Claim for a target without deliveries returned %v", ClaimIDs(cs))
	}
	got := Claim(t, s, "a", Base.Add(time.Second), 10)
	if ids := ClaimIDs(got); !slices.Equal(ids, []string{relay.DeliveryID(e1.ID, "a"), relay.DeliveryID(e2.ID, "a")}) {
		t.Fatalf("Claim(a, due at +1s) = %v, want the deliveries of e1 and e2, oldest first", ids)
	}
	c := got[0]
	if c.Event == nil {
		t.Fatalf("claimed delivery %s has no event", c.Delivery.ID())
	}
	if string(c.Event.Payload) != string(e1.Payload) || c.Event.DedupKey != "k1" ||
		!c.Event.ReceivedAt.Equal(Base) || !slices.Equal(c.Event.Targets, []string{"a", "b"}) || c.Event.Headers["User-Agent"] != "Hoox/1.0" || c.Event.Trace != Trace {
		t.Errorf("claimed event = %+v (payload %q), want e1 as ingested (payload %q)", c.Event, c.Event.Payload, e1.Payload)
	}
	d := c.Delivery
	if d.State != relay.Pending || d.Attempts != 0 || d.Target != "a" || d.EventID != e1.ID || !d.NextAttemptAt.Equal(Base) || !d.BudgetSince.Equal(Base) {
		t.Errorf("claimed delivery = %+v, want a fresh pending delivery of e1 to a, due and budgeted from its receive time", d)
	}

	if again := Claim(t, s, "a", Base.Add(time.Hour), 10); !slices.Equal(ClaimIDs(again), []string{relay.DeliveryID(e3.ID, "a")}) {
		t.Errorf("second Claim = %v, want only e3's delivery: held ones are never handed out twice", ClaimIDs(again))
	}
	if again := Claim(t, s, "a", Base.Add(time.Hour), 10); len(again) != 0 {
		t.Errorf("third Claim = %v, want nothing: everything is held", ClaimIDs(again))
	}
	if b := Claim(t, s, "b", Base, 1); len(b) != 1 || b[0].Event.ID != e1.ID {
		t.Errorf("Claim(b) = %v, want e1's delivery to b (claims are per target)", ClaimIDs(b))
	}

	t.Run("max", func(t *testing.T) {
		s := open(t, h)
		for i := range 5 {
			Ingest(t, s, Event(Base, fmt.Sprint("m", i), "a"), time.Hour)
		}
		if cs := Claim(t, s, "a", Base, 2); len(cs) != 2 {
			t.Errorf("Claim(max 2) returned %d", len(cs))
		}
		if cs := Claim(t, s, "a", Base, 0); len(cs) != 0 {
			t.Errorf("Claim(max 0) returned %d", len(cs))
		}
		if cs := Claim(t, s, "a", Base, 10); len(cs) != 3 {
			t.Errorf("Claim(max 10) after 2 held returned %d, want the other 3", len(cs))
		}
	})

	t.Run("concurrent claimers never share a delivery", func(t *testing.T) {
		s := open(t, h)
		const n = 60
		for i := range n {
			Ingest(t, s, Event(Base, fmt.Sprint("c", i), "a"), time.Hour)
		}
		claimConcurrently(t, "a", n, s)
	})
}

// claimConcurrently claims the n deliveries due of target with 8 claimers
// spread over stores, and fails t unless each was handed out once.
func claimConcurrently(t *testing.T, target string, n int, stores ...relay.Store) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	handed := 0 // claims returned, to stop a store that hands out forever
	var wg sync.WaitGroup
	for g := range 8 {
		s := stores[g%len(stores)]
		wg.Go(func() {
			for {
				cs, err := s.Claim(t.Context(), target, Base, 3)
				if err != nil {
					t.Errorf("Claim(%s, %v, 3): %v", target, Base, err)
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					seen[c.Delivery.ID()]++
				}
				handed += len(cs)
				over := handed > n
				mu.Unlock()
				if over {
					return // a delivery went out twice: reported below
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d concurrent claimers on %d stores got %d distinct deliveries, want %d", 8, len(stores), len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("delivery %s claimed %d times", id, k)
		}
	}
}

// NextDue reports the earliest delivery that nobody holds.
func testNextDue(t *testing.T, h Harness) {
	s := open(t, h)
	if _, ok := nextDue(t, s, "a"); ok {
		t.Fatal("NextDue on an empty store reports a delivery")
	}
	e1 := Event(Base.Add(time.Minute), "k1", "a")
	e2 := Event(Base, "k2", "a")
	Ingest(t, s, e1, time.Hour)
	Ingest(t, s, e2, time.Hour)
	if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(Base) {
		t.Fatalf("NextDue = %v %v, want %v (the earliest)", due, ok, Base)
	}
	Claim(t, s, "a", Base, 1)
	if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(Base.Add(time.Minute)) {
		t.Fatalf("NextDue with the earliest held = %v %v, want %v: held deliveries do not count", due, ok, Base.Add(time.Minute))
	}
	Claim(t, s, "a", Base.Add(time.Minute), 1)
	if due, ok := nextDue(t, s, "a"); ok && !due.After(Base.Add(time.Minute)) {
		t.Fatalf("NextDue with everything held = %v, want none, or the end of a lease (after the claim at %v)", due, Base.Add(time.Minute))
	}
	if _, ok := nextDue(t, s, "b"); ok {
		t.Error("NextDue(b) reports a delivery; b has none")
	}
}

// Backlog counts the pending deliveries of a target, held ones included,
// until a final outcome takes them out.
func testBacklog(t *testing.T, h Harness) {
	s := open(t, h)
	if n := backlog(t, s, "a"); n != 0 {
		t.Fatalf("Backlog(a) on an empty store = %d, want 0", n)
	}
	e1 := Event(Base, "k1", "a", "b")
	e2 := Event(Base.Add(time.Second), "k2", "a")
	e3 := Event(Base.Add(2*time.Second), "k3", "a")
	for _, ev := range []*relay.Event{e1, e2, e3} {
		Ingest(t, s, ev, time.Hour)
	}
	for target, want := range map[string]int{"a": 3, "b": 1, "nobody": 0} {
		if n := backlog(t, s, target); n != want {
			t.Errorf("Backlog(%q) after ingesting 3 events = %d, want %d", target, n, want)
		}
	}

	held := Claim(t, s, "a", Base.Add(time.Hour), 10)
	if len(held) != 3 {
		t.Fatalf("Claim(a) = %v, want the 3 deliveries of a", ClaimIDs(held))
	}
	if n := backlog(t, s, "a"); n != 3 {
		t.Errorf("Backlog(a) with all 3 held = %d, want 3: held deliveries are pending", n)
	}
	retry, released, done := held[0].Delivery, held[1].Delivery, held[2].Delivery
	retry.Attempts, retry.NextAttemptAt = 1, Base.Add(2*time.Hour)
	complete(t, s, relay.Outcome{Delivery: retry, Attempt: &relay.Attempt{Number: 1, StartedAt: Base}})
	if err := s.Release(t.Context(), Base.Add(time.Hour), released); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if n := backlog(t, s, "a"); n != 3 {
		t.Errorf("Backlog(a) after a retry and a release = %d, want 3", n)
	}
	done.State, done.Attempts = relay.Delivered, 1
	complete(t, s, relay.Outcome{Delivery: done, Attempt: &relay.Attempt{Number: 1, StartedAt: Base}})
	Eventually(t, 2*time.Second, func() error {
		if n := backlog(t, s, "a"); n != 2 {
			return fmt.Errorf("Backlog(a) after one of 3 was delivered = %d, want 2", n)
		}
		return nil
	})
	if n := backlog(t, s, "b"); n != 1 {
		t.Errorf("Backlog(b) = %d after deliveries to a finished, want 1", n)
	}
}

// Complete ends a hold: a pending outcome is due again at its NextAttemptAt,
// a final one is never handed out again, not even after a restart.
func testComplete(t *testing.T, h Harness) {
	t.Run("pending outcome is due again at NextAttemptAt", func(t *testing.T) {
		s := open(t, h)
		ev := Event(Base, "k", "a")
		Ingest(t, s, ev, time.Hour)
		c := Claim(t, s, "a", Base, 1)[0]
		d := c.Delivery
		retryAt := Base.Add(time.Minute)
		d.Attempts, d.LastStatus, d.LastError, d.NextAttemptAt, d.UpdatedAt = 1, 503, "HTTP 503", retryAt, Base
		a := &relay.Attempt{Number: 1, StartedAt: Base, Duration: time.Millisecond, Status: 503, Body: "down"}
		complete(t, s, relay.Outcome{Delivery: d, Attempt: a})
		Eventually(t, 2*time.Second, func() error {
			if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(retryAt) {
				return fmt.Errorf("after Complete(pending, next attempt %v) NextDue is %v %v", retryAt, due, ok)
			}
			return nil
		})
		if cs := Claim(t, s, "a", retryAt.Add(-time.Millisecond), 1); len(cs) != 0 {
			t.Fatalf("Claim before NextAttemptAt returned %v", ClaimIDs(cs))
		}
		cs := Claim(t, s, "a", retryAt, 1)
		if len(cs) != 1 {
			t.Fatal("Claim at NextAttemptAt returned nothing")
		}
		if got := cs[0].Delivery; got.Attempts != 1 || got.LastStatus != 503 || got.LastError != "HTTP 503" || !got.NextAttemptAt.Equal(retryAt) {
			t.Errorf("reclaimed delivery = %+v, want the completed record (1 attempt, 503)", got)
		}
		if got := cs[0].Event; got == nil || got.ID != ev.ID || string(got.Payload) != string(ev.Payload) {
			t.Errorf("reclaimed event = %+v, want %s with its payload", got, ev.ID)
		}
	})

	for _, final := range []relay.State{relay.Delivered, relay.Dead} {
		t.Run(string(final)+" outcome leaves the queue for good", func(t *testing.T) {
			s := open(t, h)
			ev := Event(Base, "k", "a", "b")
			Ingest(t, s, ev, time.Hour)
			c := Claim(t, s, "a", Base, 1)[0]
			d := c.Delivery
			d.State, d.Attempts = final, 1
			complete(t, s, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: Base}})
			if cs := Claim(t, s, "a", Base.Add(1000*time.Hour), 10); len(cs) != 0 {
				t.Errorf("Claim after Complete(%s) returned %v", final, ClaimIDs(cs))
			}
			Eventually(t, 2*time.Second, func() error {
				if n := backlog(t, s, "a"); n != 0 {
					return fmt.Errorf("Backlog(a) after Complete(%s) of its only delivery = %d, want 0", final, n)
				}
				return nil
			})
			if due, ok := nextDue(t, s, "a"); ok {
				t.Errorf("NextDue(a) after Complete(%s) = %v, want none", final, due)
			}
			s = reopen(t, h, s)
			if cs := Claim(t, s, "a", Base.Add(1000*time.Hour), 10); len(cs) != 0 {
				t.Errorf("after reopening, Claim returned %v for a %s delivery", ClaimIDs(cs), final)
			}
			if cs := Claim(t, s, "b", Base, 10); len(cs) != 1 {
				t.Errorf("after reopening, the other target's delivery is gone (%v)", ClaimIDs(cs))
			}
		})
	}

	// Whether a store still holds unwritten outcomes at Close is a matter
	// of timing: a few tries make a missing write at Close hard to miss.
	t.Run("final outcomes written at Close", func(t *testing.T) {
		for try := range 3 {
			t.Run(fmt.Sprint("try ", try+1), func(t *testing.T) { finalOutcomesAtClose(t, h) })
		}
	})
}

// Release ends a hold without charging an attempt.
func testRelease(t *testing.T, h Harness) {
	s := open(t, h)
	Ingest(t, s, Event(Base, "k", "a"), time.Hour)
	c := Claim(t, s, "a", Base, 1)[0]
	at := Base.Add(5 * time.Second)
	if err := s.Release(t.Context(), at, c.Delivery); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(at) {
		t.Errorf("NextDue after Release(at %v) = %v %v", at, due, ok)
	}
	if cs := Claim(t, s, "a", at.Add(-time.Millisecond), 1); len(cs) != 0 {
		t.Errorf("Claim before the release time returned %v", ClaimIDs(cs))
	}
	cs := Claim(t, s, "a", at, 1)
	if len(cs) != 1 || cs[0].Delivery.ID() != c.Delivery.ID() || cs[0].Delivery.Attempts != 0 {
		t.Errorf("Claim at the release time = %+v, want the same delivery with 0 attempts", cs)
	}
}
