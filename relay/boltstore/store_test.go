package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/boltstore"
)

// eventually polls cond until it returns nil or timeout passes. Complete may
// write after it returns (group commit), so its effects are awaited.
func eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func open(t testing.TB, path string, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, opts)
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

func tempStore(t testing.TB) (*boltstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	return open(t, path, boltstore.Options{}), path
}

// base is a fixed receive time, on a millisecond (event ids keep ms).
var base = time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)

// event returns a new event received at at, with a dedup key and targets.
func event(at time.Time, key string, targets ...string) *relay.Event {
	return &relay.Event{
		ID:         relay.NewEventID(at),
		Source:     "hoox",
		Task:       "video_generate",
		Status:     "completed",
		DedupKey:   key,
		ReceivedAt: at,
		Targets:    targets,
		Headers:    map[string]string{"User-Agent": "Hoox/1.0"},
		Payload:    fmt.Appendf(nil, " {\"task\":\"video_generate\",\n\"job_id\":%q, \"status\":\"completed\",\"é\":\"🎬\"}\t", key),
	}
}

func ingest(t testing.TB, s *boltstore.Store, ev *relay.Event, ttl time.Duration) relay.IngestResult {
	t.Helper()
	res, err := s.Ingest(t.Context(), ev, ttl)
	if err != nil {
		t.Fatalf("Ingest(%s, key %q): %v", ev.ID, ev.DedupKey, err)
	}
	return res
}

func claim(t testing.TB, s *boltstore.Store, target string, now time.Time, max int) []relay.Claim {
	t.Helper()
	cs, err := s.Claim(t.Context(), target, now, max)
	if err != nil {
		t.Fatalf("Claim(%q, %v, %d): %v", target, now, max, err)
	}
	return cs
}

func claimIDs(cs []relay.Claim) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Delivery.ID()
	}
	return ids
}

func nextDue(t testing.TB, s *boltstore.Store, target string) (time.Time, bool) {
	t.Helper()
	due, ok, err := s.NextDue(t.Context(), target)
	if err != nil {
		t.Fatalf("NextDue(%q): %v", target, err)
	}
	return due, ok
}

func TestIngestDedup(t *testing.T) {
	const ttl = time.Hour
	cases := []struct {
		name          string
		source, key   string
		after         time.Duration // receive time of the second, after the first
		wantDuplicate bool
	}{
		{"same key at once", "hoox", "k", 0, true},
		{"same key just within the ttl", "hoox", "k", ttl - time.Millisecond, true},
		{"same key just past the ttl", "hoox", "k", ttl + time.Millisecond, false},
		{"same key long after", "hoox", "k", 48 * time.Hour, false},
		{"other key", "hoox", "k2", time.Second, false},
		{"same key, other source", "other", "k", time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := tempStore(t)
			first := event(base, "k", "a")
			if res := ingest(t, s, first, ttl); res.Duplicate || res.EventID != first.ID {
				t.Fatalf("first Ingest = %+v, want new event %s", res, first.ID)
			}
			second := event(base.Add(tc.after), tc.key, "a", "b")
			second.Source = tc.source
			res := ingest(t, s, second, ttl)
			if tc.wantDuplicate {
				if !res.Duplicate || res.EventID != first.ID {
					t.Fatalf("second Ingest (key %q source %q, %v later, ttl %v) = %+v, want duplicate of %s", tc.key, tc.source, tc.after, ttl, res, first.ID)
				}
				// A duplicate writes nothing: no delivery to b, one to a.
				if cs := claim(t, s, "b", base.Add(100*time.Hour), 10); len(cs) != 0 {
					t.Errorf("duplicate created deliveries %v", claimIDs(cs))
				}
				if cs := claim(t, s, "a", base.Add(100*time.Hour), 10); len(cs) != 1 {
					t.Errorf("target a has %d deliveries after an event and its duplicate, want 1", len(cs))
				}
				return
			}
			if res.Duplicate || res.EventID != second.ID {
				t.Fatalf("second Ingest (key %q source %q, %v later, ttl %v) = %+v, want new event %s", tc.key, tc.source, tc.after, ttl, res, second.ID)
			}
			if cs := claim(t, s, "b", base.Add(100*time.Hour), 10); len(cs) != 1 || cs[0].Event.ID != second.ID {
				t.Errorf("target b deliveries %v, want the second event's", claimIDs(cs))
			}
		})
	}

	t.Run("an expired mark is replaced by the new event", func(t *testing.T) {
		s, _ := tempStore(t)
		ingest(t, s, event(base, "k", "a"), ttl)
		second := event(base.Add(2*ttl), "k", "a")
		ingest(t, s, second, ttl)
		res := ingest(t, s, event(base.Add(2*ttl+time.Minute), "k", "a"), ttl)
		if !res.Duplicate || res.EventID != second.ID {
			t.Errorf("third Ingest within the ttl of the second = %+v, want duplicate of %s", res, second.ID)
		}
	})
}

func TestIngestConcurrentSameKey(t *testing.T) {
	s, _ := tempStore(t)
	const n = 50
	results := make([]relay.IngestResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			now := time.Now()
			results[i], errs[i] = s.Ingest(t.Context(), event(now, "same", "a"), time.Hour)
		})
	}
	close(start)
	wg.Wait()
	accepted := 0
	ids := map[string]int{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("Ingest %d: %v", i, errs[i])
		}
		if !r.Duplicate {
			accepted++
		}
		ids[r.EventID]++
	}
	if accepted != 1 || len(ids) != 1 {
		t.Fatalf("%d concurrent Ingests of one key: %d accepted, event ids %v; want 1 accepted and every answer naming it", n, accepted, ids)
	}
	if cs := claim(t, s, "a", time.Now().Add(time.Hour), n); len(cs) != 1 {
		t.Errorf("%d deliveries stored for one key, want 1", len(cs))
	}
}

func TestClaim(t *testing.T) {
	s, _ := tempStore(t)
	e1 := event(base, "k1", "a", "b")
	e2 := event(base.Add(time.Second), "k2", "a")
	e3 := event(base.Add(2*time.Second), "k3", "a")
	for _, ev := range []*relay.Event{e1, e2, e3} {
		ingest(t, s, ev, time.Hour)
	}

	if cs := claim(t, s, "a", base.Add(-time.Millisecond), 10); len(cs) != 0 {
		t.Fatalf("Claim before anything is due returned %v", claimIDs(cs))
	}
	if cs := claim(t, s, "nobody", base.Add(time.Hour), 10); len(cs) != 0 {
		t.Fatalf("Claim for a target without deliveries returned %v", claimIDs(cs))
	}
	got := claim(t, s, "a", base.Add(time.Second), 10)
	if ids := claimIDs(got); !slices.Equal(ids, []string{relay.DeliveryID(e1.ID, "a"), relay.DeliveryID(e2.ID, "a")}) {
		t.Fatalf("Claim(a, due at +1s) = %v, want the deliveries of e1 and e2, oldest first", ids)
	}
	c := got[0]
	if c.Event == nil || string(c.Event.Payload) != string(e1.Payload) || c.Event.DedupKey != "k1" ||
		!c.Event.ReceivedAt.Equal(base) || !slices.Equal(c.Event.Targets, []string{"a", "b"}) || c.Event.Headers["User-Agent"] != "Hoox/1.0" {
		t.Errorf("claimed event = %+v (payload %q), want e1 as ingested (payload %q)", c.Event, c.Event.Payload, e1.Payload)
	}
	d := c.Delivery
	if d.State != relay.Pending || d.Attempts != 0 || d.Target != "a" || d.EventID != e1.ID || !d.NextAttemptAt.Equal(base) || !d.BudgetSince.Equal(base) {
		t.Errorf("claimed delivery = %+v, want a fresh pending delivery of e1 to a, due and budgeted from its receive time", d)
	}

	if again := claim(t, s, "a", base.Add(time.Hour), 10); !slices.Equal(claimIDs(again), []string{relay.DeliveryID(e3.ID, "a")}) {
		t.Errorf("second Claim = %v, want only e3's delivery: held ones are never handed out twice", claimIDs(again))
	}
	if again := claim(t, s, "a", base.Add(time.Hour), 10); len(again) != 0 {
		t.Errorf("third Claim = %v, want nothing: everything is held", claimIDs(again))
	}
	if b := claim(t, s, "b", base, 1); len(b) != 1 || b[0].Event.ID != e1.ID {
		t.Errorf("Claim(b) = %v, want e1's delivery to b (claims are per target)", claimIDs(b))
	}

	t.Run("max", func(t *testing.T) {
		s, _ := tempStore(t)
		for i := range 5 {
			ingest(t, s, event(base, fmt.Sprint("m", i), "a"), time.Hour)
		}
		if cs := claim(t, s, "a", base, 2); len(cs) != 2 {
			t.Errorf("Claim(max 2) returned %d", len(cs))
		}
		if cs := claim(t, s, "a", base, 0); len(cs) != 0 {
			t.Errorf("Claim(max 0) returned %d", len(cs))
		}
		if cs := claim(t, s, "a", base, 10); len(cs) != 3 {
			t.Errorf("Claim(max 10) after 2 held returned %d, want the other 3", len(cs))
		}
	})

	t.Run("concurrent claimers never share a delivery", func(t *testing.T) {
		s, _ := tempStore(t)
		const n = 60
		for i := range n {
			ingest(t, s, event(base, fmt.Sprint("c", i), "a"), time.Hour)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					cs, err := s.Claim(t.Context(), "a", base, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(cs) == 0 {
						return
					}
					mu.Lock()
					for _, c := range cs {
						seen[c.Delivery.ID()]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Errorf("concurrent claimers got %d distinct deliveries, want %d", len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Errorf("delivery %s claimed %d times", id, k)
			}
		}
	})
}

func TestNextDue(t *testing.T) {
	s, _ := tempStore(t)
	if _, ok := nextDue(t, s, "a"); ok {
		t.Fatal("NextDue on an empty store reports a delivery")
	}
	e1 := event(base.Add(time.Minute), "k1", "a")
	e2 := event(base, "k2", "a")
	ingest(t, s, e1, time.Hour)
	ingest(t, s, e2, time.Hour)
	if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(base) {
		t.Fatalf("NextDue = %v %v, want %v (the earliest)", due, ok, base)
	}
	claim(t, s, "a", base, 1)
	if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(base.Add(time.Minute)) {
		t.Fatalf("NextDue with the earliest held = %v %v, want %v: held deliveries do not count", due, ok, base.Add(time.Minute))
	}
	claim(t, s, "a", base.Add(time.Minute), 1)
	if due, ok := nextDue(t, s, "a"); ok {
		t.Fatalf("NextDue with everything held = %v, want none", due)
	}
	if _, ok := nextDue(t, s, "b"); ok {
		t.Error("NextDue(b) reports a delivery; b has none")
	}
}

func TestCompleteAndRelease(t *testing.T) {
	t.Run("pending outcome is due again at NextAttemptAt", func(t *testing.T) {
		s, _ := tempStore(t)
		ev := event(base, "k", "a")
		ingest(t, s, ev, time.Hour)
		c := claim(t, s, "a", base, 1)[0]
		d := c.Delivery
		retryAt := base.Add(time.Minute)
		d.Attempts, d.LastStatus, d.LastError, d.NextAttemptAt, d.UpdatedAt = 1, 503, "HTTP 503", retryAt, base
		a := &relay.Attempt{Number: 1, StartedAt: base, Duration: time.Millisecond, Status: 503, Body: "down"}
		if err := s.Complete(t.Context(), relay.Outcome{Delivery: d, Attempt: a}); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		eventually(t, 2*time.Second, func() error {
			if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(retryAt) {
				return fmt.Errorf("after Complete(pending, next attempt %v) NextDue is %v %v", retryAt, due, ok)
			}
			return nil
		})
		if cs := claim(t, s, "a", retryAt.Add(-time.Millisecond), 1); len(cs) != 0 {
			t.Fatalf("Claim before NextAttemptAt returned %v", claimIDs(cs))
		}
		cs := claim(t, s, "a", retryAt, 1)
		if len(cs) != 1 {
			t.Fatal("Claim at NextAttemptAt returned nothing")
		}
		if got := cs[0].Delivery; got.Attempts != 1 || got.LastStatus != 503 || got.LastError != "HTTP 503" || !got.NextAttemptAt.Equal(retryAt) {
			t.Errorf("reclaimed delivery = %+v, want the completed record (1 attempt, 503)", got)
		}
	})

	for _, final := range []relay.State{relay.Delivered, relay.Dead} {
		t.Run(string(final)+" outcome leaves the queue for good", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			s, err := boltstore.Open(path, boltstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ev := event(base, "k", "a", "b")
			ingest(t, s, ev, time.Hour)
			c := claim(t, s, "a", base, 1)[0]
			d := c.Delivery
			d.State, d.Attempts = final, 1
			if err := s.Complete(t.Context(), relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: base}}); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if cs := claim(t, s, "a", base.Add(1000*time.Hour), 10); len(cs) != 0 {
				t.Errorf("Claim after Complete(%s) returned %v", final, claimIDs(cs))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, path, boltstore.Options{})
			if cs := claim(t, s, "a", base.Add(1000*time.Hour), 10); len(cs) != 0 {
				t.Errorf("after reopening, Claim returned %v for a %s delivery", claimIDs(cs), final)
			}
			if cs := claim(t, s, "b", base, 10); len(cs) != 1 {
				t.Errorf("after reopening, the other target's delivery is gone (%v)", claimIDs(cs))
			}
		})
	}

	t.Run("release puts a delivery back uncharged", func(t *testing.T) {
		s, _ := tempStore(t)
		ingest(t, s, event(base, "k", "a"), time.Hour)
		c := claim(t, s, "a", base, 1)[0]
		at := base.Add(5 * time.Second)
		if err := s.Release(t.Context(), at, c.Delivery); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(at) {
			t.Errorf("NextDue after Release(at %v) = %v %v", at, due, ok)
		}
		if cs := claim(t, s, "a", at.Add(-time.Millisecond), 1); len(cs) != 0 {
			t.Errorf("Claim before the release time returned %v", claimIDs(cs))
		}
		cs := claim(t, s, "a", at, 1)
		if len(cs) != 1 || cs[0].Delivery.ID() != c.Delivery.ID() || cs[0].Delivery.Attempts != 0 {
			t.Errorf("Claim at the release time = %+v, want the same delivery with 0 attempts", cs)
		}
	})
}

func TestReopenRestoresPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []*relay.Event
	for i := range 4 {
		ev := event(base.Add(time.Duration(i)*time.Millisecond), fmt.Sprint("k", i), "a", "b")
		ingest(t, s, ev, time.Hour)
		evs = append(evs, ev)
	}
	held := claim(t, s, "a", base.Add(time.Second), 3) // e0, e1, e2 held for a
	// e0 delivered, e1 retried later, e2 still held (in flight) at Close.
	d0, d1 := held[0].Delivery, held[1].Delivery
	d0.State, d0.Attempts = relay.Delivered, 1
	d1.Attempts, d1.NextAttemptAt = 1, base.Add(time.Hour)
	if err := s.Complete(t.Context(), relay.Outcome{Delivery: d0, Attempt: &relay.Attempt{Number: 1}}, relay.Outcome{Delivery: d1, Attempt: &relay.Attempt{Number: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, boltstore.Options{})
	got := claimIDs(claim(t, s, "a", base.Add(time.Second), 10))
	want := []string{relay.DeliveryID(evs[2].ID, "a"), relay.DeliveryID(evs[3].ID, "a")}
	if !slices.Equal(got, want) {
		t.Errorf("after reopening, due deliveries of a = %v, want %v (the one in flight at Close comes back, the unclaimed one stays)", got, want)
	}
	later := claim(t, s, "a", base.Add(time.Hour), 10)
	if len(later) != 1 || later[0].Delivery.ID() != relay.DeliveryID(evs[1].ID, "a") || later[0].Delivery.Attempts != 1 {
		t.Errorf("after reopening, at the retry time Claim = %v, want e1's delivery with its 1 attempt", claimIDs(later))
	}
	if b := claim(t, s, "b", base.Add(time.Second), 10); len(b) != 4 {
		t.Errorf("after reopening, target b has %d due deliveries, want 4", len(b))
	}
	for _, c := range later {
		if string(c.Event.Payload) != string(evs[1].Payload) {
			t.Errorf("after reopening, payload %q, want %q", c.Event.Payload, evs[1].Payload)
		}
	}
}

// clock is a settable clock that counts its readers.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	reads int
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *clock) readCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func TestPrune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	const ttl = 24 * time.Hour
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := event(base, "done", "a", "b")       // delivered to a, dead at b
	pending := event(base, "pending", "a", "b") // a delivered, b still pending
	unrouted := event(base, "unrouted")         // no deliveries at all
	recent := event(base.Add(90*time.Minute), "recent", "a")
	for _, ev := range []*relay.Event{done, pending, unrouted, recent} {
		ingest(t, s, ev, ttl)
	}
	var outcomes []relay.Outcome
	for _, c := range claim(t, s, "a", base.Add(2*time.Hour), 10) {
		d := c.Delivery
		d.State, d.Attempts = relay.Delivered, 1
		outcomes = append(outcomes, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1}})
	}
	for _, c := range claim(t, s, "b", base.Add(2*time.Hour), 10) {
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
	s = open(t, path, boltstore.Options{Retention: time.Hour, Now: clk.Now, PruneInterval: time.Hour})
	// The background pruner reads the clock once at start; let it do so
	// at base, when nothing is old enough, before moving the clock.
	eventually(t, 2*time.Second, func() error {
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
		res := ingest(t, s, event(now, tc.ev.DedupKey, "c"), ttl)
		if res.Duplicate != tc.wantDup || (tc.wantDup && res.EventID != tc.ev.ID) {
			t.Errorf("re-ingesting key %q after Prune: %+v, want duplicate %v: %s", tc.ev.DedupKey, res, tc.wantDup, tc.why)
		}
	}
	if cs := claim(t, s, "b", now, 10); len(cs) != 1 || cs[0].Event.ID != pending.ID || string(cs[0].Event.Payload) != string(pending.Payload) {
		t.Errorf("after Prune the pending delivery of b = %v, want the pending event's, payload intact", claimIDs(cs))
	}
	if n, err := s.Prune(t.Context()); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0, nil", n, err)
	}

	t.Run("expired dedup marks", func(t *testing.T) {
		clk := &clock{now: base}
		s := open(t, filepath.Join(t.TempDir(), "marks.db"), boltstore.Options{DedupTTL: time.Hour, Now: clk.Now, PruneInterval: time.Hour})
		first := event(base, "k", "a")
		ingest(t, s, first, 100*time.Hour)
		eventually(t, 2*time.Second, func() error {
			if clk.readCount() == 0 {
				return errors.New("the store's pruner has not read the clock yet")
			}
			return nil
		})
		if res := ingest(t, s, event(base.Add(2*time.Hour), "k", "a"), 100*time.Hour); !res.Duplicate {
			t.Fatalf("before pruning, a mark within the Ingest ttl is a duplicate: got %+v", res)
		}
		clk.set(base.Add(3 * time.Hour))
		if _, err := s.Prune(t.Context()); err != nil {
			t.Fatal(err)
		}
		if res := ingest(t, s, event(base.Add(3*time.Hour), "k", "a"), 100*time.Hour); res.Duplicate {
			t.Errorf("after pruning marks older than DedupTTL 1h, the key is still a duplicate: %+v", res)
		}
		if cs := claim(t, s, "a", base.Add(3*time.Hour), 10); len(cs) != 2 {
			t.Errorf("pruning marks must not touch events: %d deliveries due, want 2", len(cs))
		}
	})
}

func TestClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	// No retention: the background pruner would race with Close (see
	// TestCloseWhilePruningIsRaceFree). Prune after Close is checked there.
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev := event(base, "k", "a")
	ingest(t, s, ev, time.Hour)
	c := claim(t, s, "a", base, 1)[0]
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	ctx := context.Background()
	_, ingestErr := s.Ingest(ctx, event(base, "k2", "a"), time.Hour)
	_, claimErr := s.Claim(ctx, "a", base, 1)
	_, _, nextErr := s.NextDue(ctx, "a")
	for name, err := range map[string]error{
		"Ingest":   ingestErr,
		"Claim":    claimErr,
		"NextDue":  nextErr,
		"Complete": s.Complete(ctx, relay.Outcome{Delivery: c.Delivery}),
		"Release":  s.Release(ctx, base, c.Delivery),
		"Ping":     s.Ping(ctx),
	} {
		if !errors.Is(err, relay.ErrClosed) {
			t.Errorf("%s after Close = %v, want relay.ErrClosed", name, err)
		}
	}
	if err := open(t, path, boltstore.Options{}).Ping(ctx); err != nil {
		t.Errorf("Ping after reopening: %v", err)
	}
}

// Close cancels the background pruner's context; its submit then returns
// while the committer, draining the queue, still applies the pruning write.
// Run with -race to see it.
func TestCloseWhilePruningIsRaceFree(t *testing.T) {
	for i := range 100 {
		path := filepath.Join(t.TempDir(), fmt.Sprint("race", i, ".db"))
		s, err := boltstore.Open(path, boltstore.Options{Retention: time.Hour, DedupTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// One durable write lets the pruner queue its second chunk, which
		// Close then finds in the queue.
		ingest(t, s, event(time.Now(), "k", "a"), time.Hour)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := s.Prune(context.Background()); !errors.Is(err, relay.ErrClosed) {
			t.Errorf("Prune after Close = %v, want relay.ErrClosed", err)
		}
	}
}
