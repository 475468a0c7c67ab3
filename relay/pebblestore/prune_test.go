package pebblestore_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

func open(t testing.TB, path string, opts pebblestore.Options) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestPrune(t *testing.T) {
	base := storetest.Base
	path := filepath.Join(t.TempDir(), "store")
	const ttl = 24 * time.Hour
	s, err := pebblestore.Open(path, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := storetest.Event(base, "done", "a", "b")       // delivered to a, dead at b
	pending := storetest.Event(base, "pending", "a", "b") // a delivered, b still pending
	unrouted := storetest.Event(base, "unrouted")         // no deliveries at all
	recent := storetest.Event(base.Add(90*time.Minute), "recent", "a")
	for _, ev := range []*relay.Event{done, pending, unrouted, recent} {
		ev.JobID = "run_" + ev.DedupKey
		storetest.Ingest(t, s, ev, ttl)
	}
	var outcomes []relay.Outcome
	for _, c := range storetest.Claim(t, s, "a", base.Add(2*time.Hour), 10) {
		d := c.Delivery
		d.State, d.Attempts = relay.Delivered, 1
		outcomes = append(outcomes, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1}})
	}
	for _, c := range storetest.Claim(t, s, "b", base.Add(2*time.Hour), 10) {
		if c.Event.ID == done.ID {
			d := c.Delivery
			d.State, d.Attempts = relay.Dead, 3
			outcomes = append(outcomes, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 3}})
		}
	}
	if err := s.Complete(t.Context(), outcomes...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // writes every outcome
		t.Fatal(err)
	}

	clk := &clock{now: base}
	s = open(t, path, pebblestore.Options{Retention: time.Hour, Now: clk.Now, PruneInterval: time.Hour})
	// The background pruner reads the clock once at start; let it do so
	// at base, when nothing is old enough, before moving the clock.
	storetest.Eventually(t, 2*time.Second, func() error {
		if clk.readCount() == 0 {
			return errors.New("the store's pruner has not read the clock yet")
		}
		return nil
	})
	clk.set(base.Add(2 * time.Hour))
	n, err := s.Prune(t.Context())
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if n != 2 {
		t.Errorf("Prune at +2h with retention 1h deleted %d events, want 2 (the finished one and the unrouted one)", n)
	}
	// The search index keys of the two events went with them: a job's
	// and a dedup key's for each of the two left.
	if n, err := pebblestore.SearchKeys(s); err != nil || n != 4 {
		t.Errorf("search index keys after Prune = %d, %v; want 4, those of the events kept", n, err)
	}
	// Left: a delivered for pending and recent, b pending for pending.
	counts, err := s.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := counts["a"], counts["b"]; a != (relay.StateCounts{Delivered: 2}) || b != (relay.StateCounts{Pending: 1}) {
		t.Errorf("Counts after Prune = a %+v, b %+v; want a with 2 delivered (pending's and recent's) and b with 1 pending: pruned deliveries are no longer counted", a, b)
	}
	if dead, err := s.Deliveries(t.Context(), relay.DeliveryFilter{State: relay.Dead}); err != nil || len(dead) != 0 {
		t.Errorf("dead deliveries after Prune = %v, %v; want none", dead, err)
	}
	now := base.Add(2 * time.Hour)
	for _, tc := range []struct {
		ev      *relay.Event
		wantDup bool
		why     string
	}{
		{done, false, "its event was pruned, and its mark with it"},
		{unrouted, false, "its event was pruned, and its mark with it"},
		{pending, true, "its event still has a pending delivery"},
		{recent, true, "its event is younger than the retention"},
	} {
		res := storetest.Ingest(t, s, storetest.Event(now, tc.ev.DedupKey, "c"), ttl)
		if res.Duplicate != tc.wantDup || (tc.wantDup && res.EventID != tc.ev.ID) {
			t.Errorf("re-ingesting key %q after Prune: %+v, want duplicate %v: %s", tc.ev.DedupKey, res, tc.wantDup, tc.why)
		}
	}
	if cs := storetest.Claim(t, s, "b", now, 10); len(cs) != 1 || cs[0].Event.ID != pending.ID || string(cs[0].Event.Payload) != string(pending.Payload) {
		t.Errorf("after Prune the pending delivery of b = %v, want the pending event's, payload intact", storetest.ClaimIDs(cs))
	}
	if n, err := s.Prune(t.Context()); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0, nil", n, err)
	}

	t.Run("expired dedup marks", func(t *testing.T) {
		clk := &clock{now: base}
		s := open(t, filepath.Join(t.TempDir(), "marks"), pebblestore.Options{DedupTTL: time.Hour, Now: clk.Now, PruneInterval: time.Hour})
		first := storetest.Event(base, "k", "a")
		storetest.Ingest(t, s, first, 100*time.Hour)
		storetest.Eventually(t, 2*time.Second, func() error {
			if clk.readCount() == 0 {
				return errors.New("the store's pruner has not read the clock yet")
			}
			return nil
		})
		if res := storetest.Ingest(t, s, storetest.Event(base.Add(2*time.Hour), "k", "a"), 100*time.Hour); !res.Duplicate {
			t.Fatalf("before pruning, a mark within the Ingest ttl is a duplicate: got %+v", res)
		}
		clk.set(base.Add(3 * time.Hour))
		if _, err := s.Prune(t.Context()); err != nil {
			t.Fatal(err)
		}
		if res := storetest.Ingest(t, s, storetest.Event(base.Add(3*time.Hour), "k", "a"), 100*time.Hour); res.Duplicate {
			t.Errorf("after pruning marks older than DedupTTL 1h, the key is still a duplicate: %+v", res)
		}
		if cs := storetest.Claim(t, s, "a", base.Add(3*time.Hour), 10); len(cs) != 2 {
			t.Errorf("pruning marks must not touch events: %d deliveries due, want 2", len(cs))
		}
	})
}
