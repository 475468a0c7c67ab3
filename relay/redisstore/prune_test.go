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
