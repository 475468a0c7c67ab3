package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/redis/go-redis/v9"
)

// jobEvent is an event of job run at at whose dedup key is made of its
// ids, as the payload parser makes it.
func jobEvent(at time.Time, run, status string) *relay.Event {
	ev := storetest.Event(at, "video_generate:"+run+":"+status, "a")
	ev.JobID, ev.Status = run, status
	return ev
}

// On layout 4 an ingest finds the earlier event of its source and dedup
// key through the search index, or, past the scan's depth of 16 events of
// its job, by the mark the scan left: among many events of one job, past
// newer ones, only within the ttl and only of its source.
func TestDedupScan(t *testing.T) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := t.Context()
	if err := redisstore.CheckLayout(ctx, rdb, "scan"); err != nil {
		t.Fatal(err)
	}
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}), redisstore.Options{Prefix: "scan", Retention: 24 * time.Hour, Renew: -1})
	defer s.Close()
	const ttl = time.Hour
	base := storetest.Base
	var first []*relay.Event
	for i := range 40 {
		ev := jobEvent(base.Add(time.Duration(i)*time.Millisecond), "run_1", fmt.Sprint("s", i))
		if res := storetest.Ingest(t, s, ev, ttl); res.Duplicate {
			t.Fatalf("event %d of a job, its own status: %+v, want new", i, res)
		}
		first = append(first, ev)
	}
	// Marks only for the events past the scan's depth: the oldest 24, each
	// with its receive time.
	for i, ev := range first {
		v, err := rdb.Get(ctx, "{scan}:m:hoox\x00"+ev.DedupKey).Result()
		want := ev.ID + "|" + fmt.Sprint(ev.ReceivedAt.UnixMilli())
		if i < 24 && v != want || i >= 24 && err != redis.Nil {
			t.Errorf("mark of the event %d of 40 = %q, %v; want %q for the oldest 24, none after", i, v, err, want)
		}
	}
	cases := []struct {
		name   string
		ev     *relay.Event
		wantOf *relay.Event // nil: new
	}{
		{"the oldest of the job, 39 newer ones later", jobEvent(base.Add(time.Minute), "run_1", "s0"), first[0]},
		{"the newest", jobEvent(base.Add(time.Minute), "run_1", "s39"), first[39]},
		{"just within the ttl", jobEvent(base.Add(ttl-time.Millisecond), "run_1", "s0"), first[0]},
		{"just past the ttl", jobEvent(base.Add(ttl+5*time.Millisecond), "run_1", "s5"), nil},
		{"another job", jobEvent(base.Add(time.Minute), "run_2", "s0"), nil},
		{"another source", func() *relay.Event { e := jobEvent(base.Add(time.Minute), "run_1", "s1"); e.Source = "other"; return e }(), nil},
	}
	for _, tc := range cases {
		res := storetest.Ingest(t, s, tc.ev, ttl)
		switch {
		case tc.wantOf == nil && res.Duplicate:
			t.Errorf("%s: duplicate of %s, want a new event", tc.name, res.EventID)
		case tc.wantOf != nil && (!res.Duplicate || res.EventID != tc.wantOf.ID):
			t.Errorf("%s: %+v, want a duplicate of %s", tc.name, res, tc.wantOf.ID)
		}
	}
	// The duplicates are counted on the first event's trail.
	got, err := s.Event(ctx, first[0].ID)
	if err != nil || got.Event.Trail.Duplicates != 2 {
		t.Errorf("first event's duplicates = %+v, %v; want 2", got.Event.Trail.Duplicates, err)
	}
}

// While a prefix moves from layout 3 to 4, marks layout 3 wrote still
// count, even for an event the search index does not hold, and a relay
// still on layout 3 finds the events of one on layout 4, which wrote no
// mark.
func TestDedupLayoutMove(t *testing.T) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := t.Context()
	open := func() *redisstore.Store {
		s := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}), redisstore.Options{Prefix: "move", Renew: -1})
		t.Cleanup(func() { s.Close() })
		return s
	}
	rdb.Set(ctx, "{move}:layout", "3", 0)
	three := open()
	ev := jobEvent(storetest.Base, "run_1", "completed")
	storetest.Ingest(t, three, ev, time.Hour)
	if n, _ := rdb.Exists(ctx, "{move}:m:hoox\x00"+ev.DedupKey).Result(); n != 1 {
		t.Fatal("no dedup mark written on layout 3")
	}
	// As an event written before the search index was.
	rdb.Del(ctx, "{move}:x")
	rdb.Set(ctx, "{move}:layout", "4", 0)
	four := open()
	if res := storetest.Ingest(t, four, jobEvent(storetest.Base.Add(time.Second), "run_1", "completed"), time.Hour); !res.Duplicate || res.EventID != ev.ID {
		t.Errorf("ingest on layout 4 of a key layout 3 marked = %+v, want a duplicate of %s", res, ev.ID)
	}
	if res := storetest.Ingest(t, four, jobEvent(storetest.Base.Add(2*time.Hour), "run_1", "completed"), time.Hour); res.Duplicate {
		t.Errorf("ingest on layout 4 past the ttl of a layout 3 mark = %+v, want new", res)
	}
	// The relay that read layout 3 before the move, not restarted yet.
	later := jobEvent(storetest.Base.Add(3*time.Hour), "run_2", "completed")
	storetest.Ingest(t, four, later, time.Hour)
	if res := storetest.Ingest(t, three, jobEvent(storetest.Base.Add(3*time.Hour+time.Second), "run_2", "completed"), time.Hour); !res.Duplicate || res.EventID != later.ID {
		t.Errorf("ingest on layout 3 of a key a layout 4 relay took = %+v, want a duplicate of %s", res, later.ID)
	}
}
