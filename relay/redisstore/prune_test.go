package redisstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/redis/go-redis/v9"
)

// retention is the retention of pruneStore's stores.
const retention = 300 * time.Millisecond

// pruneStore returns a store on a new Redis whose keys expire after
// retention and whose pruning runs only when called, and a client of the
// same Redis to look at its keys.
func pruneStore(t *testing.T, prefix string) (*redisstore.Store, *redis.Client) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}), redisstore.Options{Prefix: prefix, Retention: retention, PruneInterval: time.Hour, Renew: -1})
	t.Cleanup(func() { s.Close() })
	return s, rdb
}

// Index entries of expired keys are pruned, so that lists and counts
// follow the retention.
func TestPruneIndexes(t *testing.T) {
	s, rdb := pruneStore(t, "prune")
	ctx := t.Context()
	now := time.Now()
	done, pending, unrouted := storetest.Event(now, "done", "a"), storetest.Event(now, "pending", "a"), storetest.Event(now, "unrouted")
	for _, ev := range []*relay.Event{done, pending, unrouted} {
		ev.JobID = "run_" + ev.DedupKey
		if _, err := s.Ingest(ctx, ev, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := s.Claim(ctx, "a", now, 1)
	if err != nil || len(cs) != 1 || cs[0].Event.ID != done.ID {
		t.Fatalf("Claim = %v, %v", cs, err)
	}
	d := cs[0].Delivery
	d.State, d.Attempts = relay.Dead, 1
	if err := s.Complete(ctx, relay.Outcome{Delivery: d}); err != nil {
		t.Fatal(err)
	}

	time.Sleep(2 * retention)
	n, err := s.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// done's event and its dead delivery, unrouted's event; each event in
	// the one index of its task and status, and twice in the search index
	// (its job, and its dedup key, which is not made of its ids).
	if n != 1+1+1+2*2 {
		t.Errorf("Prune removed %d index entries, want 7", n)
	}
	if n, _ := rdb.ZCard(ctx, "{prune}:x").Result(); n != 2 {
		t.Errorf("ZCARD of the search index = %d after Prune, want 2 (the pending event's job and key)", n)
	}
	es, err := s.Events(ctx, relay.EventFilter{})
	if err != nil || len(es) != 1 || es[0].Event.ID != pending.ID {
		t.Errorf("Events after Prune = %d, %v; want only the pending event", len(es), err)
	}
	counts, err := s.Counts(ctx)
	if err != nil || counts["a"] != (relay.StateCounts{Pending: 1}) {
		t.Errorf("Counts after Prune = %+v, %v; want a: 1 pending", counts, err)
	}
	for _, key := range []string{"{prune}:i:p:video_generate\x00completed"} {
		if n, _ := rdb.ZCard(ctx, key).Result(); n != 1 {
			t.Errorf("ZCARD %q = %d, want 1 (the pending event)", key, n)
		}
	}
	if n, _ := rdb.ZCard(ctx, "{prune}:s:dead:a").Result(); n != 0 {
		t.Errorf("ZCARD of the dead index = %d after Prune, want 0", n)
	}
}

// The list of indexes to prune does not grow with every status ever seen:
// an index emptied by pruning leaves it, and comes back with its next event.
func TestPruneForgetsEmptyIndexes(t *testing.T) {
	s, rdb := pruneStore(t, "names")
	ctx := t.Context()
	for i := range 50 {
		ev := storetest.Event(time.Now(), fmt.Sprintf("k%d", i)) // unrouted: it expires after the retention
		ev.Status = fmt.Sprintf("status_%d", i)
		if _, err := s.Ingest(ctx, ev, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := rdb.SCard(ctx, "{names}:ix").Result(); n != 50 {
		t.Fatalf("SCARD ix = %d after 50 statuses, want 50 (one per task and status)", n)
	}
	time.Sleep(2 * retention)
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if names, _ := rdb.SMembers(ctx, "{names}:ix").Result(); len(names) != 0 {
		t.Errorf("indexes listed after every event expired and Prune ran: %d, e.g. %q; want none", len(names), names[0])
	}
	ev := storetest.Event(time.Now(), "again")
	ev.Status = "status_7"
	if _, err := s.Ingest(ctx, ev, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, _ := rdb.SIsMember(ctx, "{names}:ix", "video_generate\x00status_7").Result(); !ok {
		t.Error("an index that comes back with a new event is not listed for pruning again")
	}
	if es, err := s.Events(ctx, relay.EventFilter{Status: "status_7"}); err != nil || len(es) != 1 {
		t.Errorf("Events(status_7) after the index came back = %d, %v; want the new event", len(es), err)
	}
}

// The search index is walked a budget of members per Prune, on from where
// the last Prune stopped, whichever relay ran it, so that a long retention
// does not make every Prune walk the whole index; once the walk reaches
// the end, the next starts over.
func TestPruneSearchResumes(t *testing.T) {
	const budget = 5
	s, rdb := pruneStore(t, "walk")
	other := redisstore.New(redis.NewClient(&redis.Options{Addr: rdb.Options().Addr}), redisstore.Options{Prefix: "walk", Retention: retention, PruneInterval: time.Hour, Renew: -1})
	t.Cleanup(func() { other.Close() })
	redisstore.SetSearchBudget(s, budget)
	redisstore.SetSearchBudget(other, budget)
	ctx := t.Context()
	ingest := func(at time.Time, key string, targets ...string) {
		ev := storetest.Event(at, key, targets...)
		ev.JobID = "run_" + key
		if _, err := s.Ingest(ctx, ev, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		ingest(time.Now(), fmt.Sprintf("old%02d", i)) // unrouted: its keys expire after the retention
	}
	for i := range 3 {
		ingest(time.Now(), fmt.Sprintf("pending%d", i), "a") // pending: its keys never expire
	}
	time.Sleep(2 * retention)
	// Members of events within the retention stay, their keys gone or
	// not: only events received before the retention are pruned. These are
	// received a minute ahead (another relay's clock), so that they stay
	// within it however long the test takes.
	ahead := time.Now().Add(time.Minute)
	for i := range 2 {
		ingest(ahead, fmt.Sprintf("new%d", i))
	}
	for _, v := range []string{"lost0", "lost1"} {
		rdb.ZAdd(ctx, "{walk}:x", redis.Z{Member: "j\x00" + v + "\x00" + strings.TrimPrefix(relay.NewEventID(ahead), "evt_")})
	}
	members := func() ([]string, error) {
		return rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: "{walk}:x", Start: "-", Stop: "+", ByLex: true}).Result()
	}
	all, err := members()
	if err != nil || len(all) != 12*2+3*2+2*2+2 {
		t.Fatalf("search index before Prune: %d members, %v; want 36", len(all), err)
	}
	expired := func(m string) bool { return strings.Contains(m, "old") }

	walked, removed := 0, 0 // members of all the walk has passed
	for call := 1; walked < len(all); call++ {
		if call > len(all)/budget+1 {
			t.Fatalf("the walk has not reached the end of %d members after %d calls", len(all), call-1)
		}
		p := s
		if call%2 == 0 {
			p = other // another relay on the same prefix resumes the walk
		}
		rdb.Del(ctx, "{walk}:prune-lock") // as if its time had run out
		before, _ := rdb.ZCard(ctx, "{walk}:x").Result()
		n, err := p.Prune(ctx)
		if err != nil {
			t.Fatal(err)
		}
		removed += n
		after, _ := rdb.ZCard(ctx, "{walk}:x").Result()
		if before-after > budget {
			t.Errorf("Prune %d removed %d search members, want at most the budget, %d", call, before-after, budget)
		}
		wantCursor := ""
		if len(all)-walked >= budget {
			wantCursor = all[walked+budget-1]
		}
		walked = min(walked+budget, len(all))
		if cursor, _ := rdb.Get(ctx, "{walk}:prune-x").Result(); cursor != wantCursor {
			t.Fatalf("cursor after Prune %d = %q, want %q", call, cursor, wantCursor)
		}
		pipe := rdb.Pipeline()
		scores := make([]*redis.FloatCmd, len(all))
		for i, m := range all {
			scores[i] = pipe.ZScore(ctx, "{walk}:x", m)
		}
		pipe.Exec(ctx)
		for i, m := range all {
			if gone, want := scores[i].Err() == redis.Nil, expired(m) && i < walked; gone != want {
				t.Errorf("after Prune %d (%d of %d members walked), member %d %q gone: %v, want %v", call, walked, len(all), i, m, gone, want)
			}
		}
	}
	// The 12 expired events' entries in the event index, and in the
	// search index under their job and dedup key.
	if removed != 12+12*2 {
		t.Errorf("the Prunes removed %d entries in all, want 36", removed)
	}
	rdb.Del(ctx, "{walk}:prune-lock")
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	left, _ := members()
	if cursor, _ := rdb.Get(ctx, "{walk}:prune-x").Result(); len(left) != 12 || cursor != left[budget-1] {
		t.Errorf("after the walk's end, %d members left and the cursor at %q; want 12 and the next walk from the start, at %q", len(left), cursor, left[min(budget, len(left))-1])
	}
}
