package migrate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/boltstore"
	"github.com/hooxrelay/hooxrelay/internal/migrate"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// oldStore writes a bbolt store file with the store of earlier versions:
// events with pending, retried, delivered and dead deliveries, attempts,
// a dedup key long enough to be kept hashed, and a pause mark.
func oldStore(t *testing.T, path string) {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := storetest.Base
	for i := range 30 {
		ev := storetest.Event(base.Add(time.Duration(i)*time.Second), fmt.Sprint("k", i), "a", "b")
		if i%3 == 0 {
			ev.Task = "avatar_generate"
		}
		if i == 7 {
			ev.DedupKey = strings.Repeat("long", 200)
		}
		storetest.Ingest(t, s, ev, time.Hour)
	}
	storetest.Ingest(t, s, storetest.Event(base.Add(time.Minute), "unrouted"), time.Hour)
	var outcomes []relay.Outcome
	for i, c := range storetest.Claim(t, s, "a", base.Add(time.Hour), 12) {
		d := c.Delivery
		d.Attempts, d.UpdatedAt = 1, base.Add(time.Hour)
		switch i % 3 {
		case 0:
			d.State, d.LastStatus = relay.Delivered, 200
		case 1:
			d.State, d.LastStatus, d.LastError = relay.Dead, 410, "HTTP 410"
		case 2:
			d.NextAttemptAt, d.LastStatus = base.Add(2*time.Hour), 503
		}
		outcomes = append(outcomes, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: base.Add(time.Hour), Duration: time.Millisecond, Status: d.LastStatus, Body: "answer é"}})
	}
	if err := s.Complete(t.Context(), outcomes...); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPaused(t.Context(), "b", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// The migration copies everything the admin API shows, the queue and the
// dedup marks: both stores answer the same, record for record.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "hooxrelay.db"), filepath.Join(dir, "store")
	oldStore(t, from)
	var progress bytes.Buffer
	c, err := migrate.Run(from, to, &progress, time.Nanosecond)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := (migrate.Counts{Events: 31, Deliveries: 60, Attempts: 12, Marks: 31, Paused: 1}); c != want {
		t.Errorf("Run copied %v, want %v", c, want)
	}
	if !strings.Contains(progress.String(), "records (") {
		t.Errorf("progress output %q, want lines counting records", progress.String())
	}

	old, err := boltstore.Open(from, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	s, err := pebblestore.Open(to, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	same := func(what string, get func(relay.Store) (any, error)) {
		t.Helper()
		want, err := get(old)
		if err != nil {
			t.Fatalf("%s of the old store: %v", what, err)
		}
		got, err := get(s)
		if err != nil {
			t.Fatalf("%s of the new store: %v", what, err)
		}
		if !reflect.DeepEqual(norm(got), norm(want)) {
			t.Errorf("%s differs after the migration\n got %+v\nwant %+v", what, got, want)
		}
	}
	same("Counts", func(s relay.Store) (any, error) { return s.Counts(ctx) })
	same("Paused", func(s relay.Store) (any, error) { return s.Paused(ctx) })
	same("Events", func(s relay.Store) (any, error) { return s.Events(ctx, relay.EventFilter{Limit: 100}) })
	same("Events(avatar_generate)", func(s relay.Store) (any, error) {
		return s.Events(ctx, relay.EventFilter{Task: "avatar_generate", Limit: 100})
	})
	for _, st := range []relay.State{relay.Pending, relay.Delivered, relay.Dead} {
		same("Deliveries("+string(st)+")", func(s relay.Store) (any, error) {
			return s.Deliveries(ctx, relay.DeliveryFilter{State: st, Limit: 100})
		})
	}
	evs, _ := old.Events(ctx, relay.EventFilter{Limit: 100})
	for _, e := range evs {
		same("Event("+e.Event.ID+")", func(s relay.Store) (any, error) {
			d, err := s.Event(ctx, e.Event.ID)
			if err != nil {
				return nil, err
			}
			return []any{d, string(d.Event.Payload)}, nil
		})
	}

	// The queue: due deliveries of a come out in order, the retried ones
	// at their time.
	for _, at := range []time.Time{storetest.Base.Add(time.Hour), storetest.Base.Add(3 * time.Hour)} {
		same(fmt.Sprint("Claim(a, ", at, ")"), func(s relay.Store) (any, error) {
			cs, err := s.Claim(ctx, "a", at, 100)
			return storetest.ClaimIDs(cs), err
		})
	}
	// Dedup marks, the hashed one included, still answer duplicates.
	for _, e := range evs {
		res, err := s.Ingest(ctx, storetest.Event(storetest.Base.Add(2*time.Minute), e.Event.DedupKey, "a"), time.Hour)
		if err != nil || !res.Duplicate || res.EventID != e.Event.ID {
			t.Errorf("Ingest of key %.20q after the migration = %+v, %v; want a duplicate of %s", e.Event.DedupKey, res, err, e.Event.ID)
		}
	}

	if _, err := migrate.Run(from, to, nil, 0); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("Run into an existing directory = %v, want a refusal", err)
	}
	if _, err := migrate.Run(to, filepath.Join(dir, "other"), nil, 0); err == nil {
		t.Error("Run from a directory (a new store) = nil, want an error")
	}
}

// norm returns the JSON of v: records compare by value, times whatever
// their location.
func norm(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
