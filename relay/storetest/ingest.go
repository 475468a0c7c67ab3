package storetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// A second event with a live mark writes nothing and names the first; marks
// expire ttl after the receive time of the event that set them.
func testIngestDedup(t *testing.T, h Harness) {
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
			s := open(t, h)
			first := Event(Base, "k", "a")
			if res := Ingest(t, s, first, ttl); res.Duplicate || res.EventID != first.ID {
				t.Fatalf("first Ingest = %+v, want new event %s", res, first.ID)
			}
			second := Event(Base.Add(tc.after), tc.key, "a", "b")
			second.Source = tc.source
			res := Ingest(t, s, second, ttl)
			if tc.wantDuplicate {
				if !res.Duplicate || res.EventID != first.ID {
					t.Fatalf("second Ingest (key %q source %q, %v later, ttl %v) = %+v, want duplicate of %s", tc.key, tc.source, tc.after, ttl, res, first.ID)
				}
				// A duplicate writes nothing: no delivery to b, one to a,
				// now and after a restart.
				if cs := Claim(t, s, "b", Base.Add(100*time.Hour), 10); len(cs) != 0 {
					t.Errorf("duplicate created deliveries %v", ClaimIDs(cs))
				}
				if cs := Claim(t, s, "a", Base.Add(100*time.Hour), 10); len(cs) != 1 {
					t.Errorf("target a has %d deliveries after an event and its duplicate, want 1", len(cs))
				}
				s = reopen(t, h, s)
				if cs := Claim(t, s, "b", Base.Add(100*time.Hour), 10); len(cs) != 0 {
					t.Errorf("after reopening, the duplicate has deliveries %v", ClaimIDs(cs))
				}
				if cs := Claim(t, s, "a", Base.Add(100*time.Hour), 10); len(cs) != 1 || cs[0].Event.ID != first.ID {
					t.Errorf("after reopening, target a has deliveries %v, want only the first event's", ClaimIDs(cs))
				}
				third := Event(Base.Add(tc.after), tc.key, "a")
				third.Source = tc.source
				if res := Ingest(t, s, third, ttl); !res.Duplicate || res.EventID != first.ID {
					t.Errorf("after reopening, a third Ingest of key %q = %+v, want duplicate of %s: the mark is still the first event's", tc.key, res, first.ID)
				}
				return
			}
			if res.Duplicate || res.EventID != second.ID {
				t.Fatalf("second Ingest (key %q source %q, %v later, ttl %v) = %+v, want new event %s", tc.key, tc.source, tc.after, ttl, res, second.ID)
			}
			if cs := Claim(t, s, "b", Base.Add(100*time.Hour), 10); len(cs) != 1 || cs[0].Event.ID != second.ID {
				t.Errorf("target b deliveries %v, want the second event's", ClaimIDs(cs))
			}
		})
	}

	t.Run("an expired mark is replaced by the new event", func(t *testing.T) {
		s := open(t, h)
		Ingest(t, s, Event(Base, "k", "a"), ttl)
		second := Event(Base.Add(2*ttl), "k", "a")
		Ingest(t, s, second, ttl)
		res := Ingest(t, s, Event(Base.Add(2*ttl+time.Minute), "k", "a"), ttl)
		if !res.Duplicate || res.EventID != second.ID {
			t.Errorf("third Ingest within the ttl of the second = %+v, want duplicate of %s", res, second.ID)
		}
	})
}

// Ingest is one atomic step: of many callers racing with one key, exactly
// one is accepted and every other is told its id.
func testIngestConcurrentSameKey(t *testing.T, h Harness) {
	s := open(t, h)
	const n = 50
	results := make([]relay.IngestResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			now := time.Now()
			results[i], errs[i] = s.Ingest(t.Context(), Event(now, "same", "a"), time.Hour)
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
	if cs := Claim(t, s, "a", time.Now().Add(time.Hour), n); len(cs) != 1 {
		t.Errorf("%d deliveries stored for one key, want 1", len(cs))
	}
}

// Dedup keys of any length are stored (bbolt refuses keys over 32 KiB, so a
// store must not use a long key as it is), and two long keys that differ
// only at their end are two keys.
func testIngestLongKeys(t *testing.T, h Harness) {
	s := open(t, h)
	long := strings.Repeat("k", 40<<10)
	first := Event(Base, long+"1", "a")
	if res := Ingest(t, s, first, time.Hour); res.Duplicate {
		t.Fatalf("first Ingest of a 40 KiB key = %+v, want new", res)
	}
	other := Event(Base.Add(time.Second), long+"2", "a")
	if res := Ingest(t, s, other, time.Hour); res.Duplicate {
		t.Fatalf("Ingest of another 40 KiB key with the same prefix = %+v, want new", res)
	}
	again := Event(Base.Add(2*time.Second), long+"1", "a")
	if res := Ingest(t, s, again, time.Hour); !res.Duplicate || res.EventID != first.ID {
		t.Fatalf("Ingest of the first 40 KiB key again = %+v, want a duplicate of %s", res, first.ID)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after long keys = %v, want nil", err)
	}
}
