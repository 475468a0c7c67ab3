package redisstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/redis/go-redis/v9"
)

func startRedis(t *testing.T) string { return redistest.Start(t, false).Addr }

// TestConformance runs the relay.Store suite shared with every store, on a
// server that keeps an append-only file, so that the suite's outage (the
// server stopped and started again) loses nothing acked.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, true)
	runConformance(t, "redis://"+srv.Addr+"/0", srv, "")
}

// TestConformanceLayout2 and 3 run the suite on prefixes of the key
// layouts before, which the store keeps writing as their relays read them:
// on layout 2 no folded records and event records of its version, on both
// dedup marks.
func TestConformanceLayout2(t *testing.T) {
	srv := redistest.Start(t, true)
	runConformance(t, "redis://"+srv.Addr+"/0", srv, "2")
}

func TestConformanceLayout3(t *testing.T) {
	srv := redistest.Start(t, true)
	runConformance(t, "redis://"+srv.Addr+"/0", srv, "3")
}

// Keys of finished work expire after the retention; nothing pending does.
// From layout 3 the event's record is folded into its deliveries' hash,
// and the event has no key of its own; on layout 4 it has no dedup mark
// either.
func TestRetentionExpiresFinishedKeys(t *testing.T) {
	addr := startRedis(t)
	for _, layout := range []string{"2", "3", "4"} {
		t.Run("layout"+layout, func(t *testing.T) { testRetention(t, addr, layout) })
	}
}

func testRetention(t *testing.T, addr, layout string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := t.Context()
	rdb.FlushAll(ctx)
	rdb.Set(ctx, "{ret}:layout", layout, 0)
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}), redisstore.Options{Prefix: "ret", Retention: time.Hour})
	defer s.Close()
	base := storetest.Base
	ev := storetest.Event(base, "ret", "a", "b")
	unrouted := storetest.Event(base, "unrouted")
	for _, e := range []*relay.Event{ev, unrouted} {
		if _, err := s.Ingest(ctx, e, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	mark := "{ret}:m:" + ev.Source + "\x00" + ev.DedupKey
	if n, _ := rdb.Exists(ctx, mark).Result(); (n == 1) != (layout != "4") {
		t.Errorf("on layout %s, %d dedup mark keys; want one before layout 4, none on it", layout, n)
	}
	ttl := func(key string) time.Duration {
		d, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// The keys of an event: from layout 3, its deliveries' hash alone.
	keysOf := func(id string) []string {
		if layout != "2" {
			if n, _ := rdb.Exists(ctx, "{ret}:e:"+id).Result(); n != 0 {
				t.Errorf("event %s has a key of its own on layout %s", id, layout)
			}
			return []string{"{ret}:d:" + id}
		}
		return []string{"{ret}:e:" + id, "{ret}:d:" + id}
	}
	if layout == "2" {
		// What relays of layout 2 read: event records up to version 5,
		// delivery records up to 3.
		rec, _ := rdb.Get(ctx, "{ret}:e:"+ev.ID).Bytes()
		drec, _ := rdb.HGet(ctx, "{ret}:d:"+ev.ID, "d:a").Bytes()
		if len(rec) == 0 || rec[0] > 5 || len(drec) == 0 || drec[0] > 3 {
			t.Errorf("on layout 2, records of versions %v and %v; want at most 5 and 3", rec[:min(1, len(rec))], drec[:min(1, len(drec))])
		}
	}
	for _, key := range keysOf(unrouted.ID) {
		if d := ttl(key); d <= 0 || d > time.Hour {
			t.Errorf("unrouted event's key %s TTL = %v, want the retention (1h)", key, d)
		}
	}
	cs, err := s.Claim(ctx, "a", base, 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Claim(a) = %d, %v", len(cs), err)
	}
	d := cs[0].Delivery
	d.State, d.Attempts = relay.Delivered, 1
	if err := s.Complete(ctx, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1}}); err != nil {
		t.Fatal(err)
	}
	storetest.Eventually(t, 5*time.Second, func() error {
		if got := ttl("{ret}:d:" + ev.ID); got != -1 {
			return fmt.Errorf("deliveries hash TTL with b still pending = %v, want none", got)
		}
		if n, _ := rdb.ZCard(ctx, "{ret}:s:delivered:a").Result(); n != 1 {
			return fmt.Errorf("delivered index holds %d, want the delivery", n)
		}
		return nil
	})
	for _, key := range keysOf(ev.ID) {
		if got := ttl(key); got != -1 {
			t.Errorf("key %s TTL with b still pending = %v, want none", key, got)
		}
	}
	cs, err = s.Claim(ctx, "b", base, 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Claim(b) = %d, %v", len(cs), err)
	}
	d = cs[0].Delivery
	d.State, d.Attempts = relay.Dead, 1
	if err := s.Complete(ctx, relay.Outcome{Delivery: d}); err != nil {
		t.Fatal(err)
	}
	// A final outcome is written after Complete returns.
	storetest.Eventually(t, 5*time.Second, func() error {
		keys := keysOf(ev.ID)
		if layout != "4" {
			keys = append(keys, mark)
		}
		for _, key := range keys {
			if got := ttl(key); got <= 0 || got > time.Hour {
				return fmt.Errorf("key %s TTL once every delivery is final = %v, want the retention (1h)", key, got)
			}
		}
		return nil
	})
	pending, _ := rdb.ZCard(ctx, "{ret}:i:p:video_generate\x00completed").Result()
	_, err = rdb.ZScore(ctx, "{ret}:i:f:video_generate\x00completed", strings.TrimPrefix(ev.ID, "evt_")).Result()
	if pending != 0 || err != nil {
		t.Errorf("%d events in the pending index once every delivery is final, want 0; the event in the final one: %v", pending, err)
	}
}

// The shared limit lets a burst through, then reserves one token per
// interval: each call's wait is one interval later than the last.
func TestReserve(t *testing.T) {
	addr := startRedis(t)
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}), redisstore.Options{Prefix: "limit"})
	defer s.Close()
	for i := range 3 {
		if wait, err := s.Reserve(t.Context(), "a", 10, 3); err != nil || wait != 0 {
			t.Fatalf("token %d of a burst of 3: wait %v, %v; want 0", i+1, wait, err)
		}
	}
	var waits []time.Duration
	for range 3 {
		wait, err := s.Reserve(t.Context(), "a", 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, wait)
	}
	// Reserved 100ms apart (less the few ms the calls take).
	if waits[0] <= 0 || waits[0] > 100*time.Millisecond || waits[1]-waits[0] < 90*time.Millisecond || waits[2]-waits[1] < 90*time.Millisecond {
		t.Fatalf("waits past the burst at 10/s: %v; want (0,100ms], then 100ms more each", waits)
	}
	if wait, _ := s.Reserve(t.Context(), "b", 10, 3); wait != 0 {
		t.Errorf("another target's bucket is not shared: wait %v, want 0", wait)
	}
	if wait, _ := s.Reserve(t.Context(), "c", 0, 1); wait != 0 {
		t.Errorf("rps 0 (unlimited): wait %v, want 0", wait)
	}
}

// runConformance runs the suite on stores whose clients come from url, each
// with a prefix of its own; the outage test stops srv, when it is not nil.
// The leases of Open's stores are far longer than the suite's clock jumps,
// and not renewed: the suite checks holds there, and their end on the
// stores of Shared.
//
// With layout set, each prefix gets that key layout first.
func runConformance(t *testing.T, url string, srv *redistest.Server, layout string) {
	var n atomic.Int64
	newStore := func(t testing.TB, rdb redis.UniversalClient, opts redisstore.Options) *redisstore.Store {
		if layout != "" {
			if err := rdb.Set(t.Context(), "{"+opts.Prefix+"}:layout", layout, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		return redisstore.New(rdb, opts)
	}
	var mu sync.Mutex
	prefixes := map[relay.Store]string{}
	open := func(t testing.TB, prefix string) relay.Store {
		rdb, err := redisstore.NewClient(url)
		if err != nil {
			t.Fatal(err)
		}
		s := newStore(t, rdb, redisstore.Options{Prefix: prefix, Lease: 100000 * time.Hour, Renew: -1})
		mu.Lock()
		prefixes[s] = prefix
		mu.Unlock()
		return s
	}
	var outage func(testing.TB, relay.Store) func()
	if srv != nil {
		outage = func(testing.TB, relay.Store) func() {
			srv.Stop()
			return srv.Restart
		}
	}
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB) relay.Store { return open(t, fmt.Sprint("conf", n.Add(1))) },
		Reopen: func(t testing.TB, s relay.Store) relay.Store {
			mu.Lock()
			prefix, ok := prefixes[s]
			delete(prefixes, s)
			mu.Unlock()
			if !ok {
				t.Fatalf("Reopen of a store that Open did not return")
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close before reopening: %v", err)
			}
			return open(t, prefix)
		},
		Outage: outage,
		Shared: func(t testing.TB, lease time.Duration) func(bool) relay.Store {
			prefix := fmt.Sprint("shared", n.Add(1))
			return func(live bool) relay.Store {
				rdb, err := redisstore.NewClient(url)
				if err != nil {
					t.Fatal(err)
				}
				renew := time.Duration(-1)
				if live {
					renew = lease / 4
				}
				return newStore(t, rdb, redisstore.Options{Prefix: prefix, Lease: lease, Renew: renew})
			}
		},
		Retained: func(t testing.TB) (relay.Store, func()) {
			const retention = time.Hour
			rdb, err := redisstore.NewClient(url)
			if err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprint("retained", n.Add(1))
			s := newStore(t, rdb, redisstore.Options{Prefix: prefix, Lease: 100000 * time.Hour, Renew: -1,
				Retention: retention, PruneInterval: time.Hour})
			return s, func() {
				passTime(t, url, prefix, retention)
				if _, err := s.Prune(t.Context()); err != nil {
					t.Fatalf("Prune: %v", err)
				}
			}
		},
	})
}

// passTime makes Redis behave as it will once d has passed: the keys of the
// store with prefix that would expire within d are deleted now. Keys expire
// on Redis's clock, which the suite cannot move.
func passTime(t testing.TB, url, prefix string, d time.Duration) {
	t.Helper()
	rdb, err := redisstore.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	expire := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			ttl, err := c.PTTL(ctx, iter.Val()).Result()
			if err != nil {
				return err
			}
			if ttl > 0 && ttl <= d {
				if err := c.Del(ctx, iter.Val()).Err(); err != nil {
					return err
				}
			}
		}
		return iter.Err()
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error { return expire(ctx, c) })
	} else {
		err = expire(t.Context(), rdb)
	}
	if err != nil {
		t.Fatalf("expire the keys of %s within %v: %v", prefix, d, err)
	}
}

// Through Sentinel, the store finds its master and works as on one server.
func TestConformanceOnSentinel(t *testing.T) {
	master := redistest.Start(t, false)
	sentinel := redistest.StartSentinel(t, master)
	runConformance(t, "redis+sentinel://"+sentinel+"/mymaster", nil, "")
}

// On a Cluster, every script touches keys of one hash slot: a key outside
// it would fail with CROSSSLOT.
func TestConformanceOnCluster(t *testing.T) {
	addrs := redistest.StartCluster(t)
	runConformance(t, "redis+cluster://"+strings.Join(addrs, ","), nil, "")
}

func TestNewClientURLs(t *testing.T) {
	for _, tc := range []struct{ url, err string }{
		{"redis://127.0.0.1:6379/0", ""},
		{"rediss://u:p@127.0.0.1:6379/1", ""},
		{"redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/2", ""},
		{"redis+cluster://127.0.0.1:7000,127.0.0.1:7001", ""},
		{"redis+sentinel://127.0.0.1:26379", "names the master"},
		{"redis+sentinel://127.0.0.1:26379/m/x", "not a number"},
		{"redis+cluster://127.0.0.1:7000/3", "no path"},
		{"http://127.0.0.1:6379", "not one of"},
	} {
		rdb, err := redisstore.NewClient(tc.url)
		if rdb != nil {
			rdb.Close()
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("NewClient(%q) = %v, want a client", tc.url, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("NewClient(%q) = %v, want an error about %q", tc.url, err, tc.err)
		}
	}
}

// The pool is DefaultPoolSize unless the URL sets pool_size.
func TestNewClientPoolSize(t *testing.T) {
	for url, want := range map[string]int{
		"redis://127.0.0.1:6379/0":                    redisstore.DefaultPoolSize,
		"redis://127.0.0.1:6379/0?pool_size=7":        7,
		"redis+sentinel://127.0.0.1:26379/mymaster/2": redisstore.DefaultPoolSize,
		"redis+cluster://127.0.0.1:7000":              redisstore.DefaultPoolSize,
	} {
		rdb, err := redisstore.NewClient(url)
		if err != nil {
			t.Fatalf("NewClient(%q): %v", url, err)
		}
		var got int
		switch c := rdb.(type) {
		case *redis.Client:
			got = c.Options().PoolSize
		case *redis.ClusterClient:
			got = c.Options().PoolSize
		default:
			t.Fatalf("NewClient(%q): a %T", url, rdb)
		}
		rdb.Close()
		if got != want {
			t.Errorf("NewClient(%q): pool of %d, want %d", url, got, want)
		}
	}
}

// go-redis's own messages go to slog, at most one a second.
func TestSetLogger(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	redisstore.SetLogger(slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil)))
	t.Cleanup(func() { redisstore.SetLogger(slog.New(slog.DiscardHandler)) })
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	start := time.Now()
	for range 20 {
		rdb.Ping(t.Context()) // refused: go-redis logs each dial failure
	}
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Count(buf.String(), "\n")
	if lines == 0 || lines > int(elapsed/time.Second)+1 || strings.Count(buf.String(), `"msg":"redis client"`) != lines {
		t.Errorf("log after 20 refused pings in %v:\n%s\nwant JSON lines, at most one a second", elapsed, buf.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A mark outlives the ttl it was written with, up to the retention, so a
// dedup.ttl raised by a reload covers the events received before it.
func TestRaisedTTLCoversEarlierMarks(t *testing.T) {
	addr := startRedis(t)
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}), redisstore.Options{Prefix: "ttl", Retention: time.Minute})
	defer s.Close()
	first := storetest.Event(time.Now(), "raised", "a")
	if _, err := s.Ingest(t.Context(), first, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // past the ttl the mark was written with
	dup := storetest.Event(time.Now(), "raised", "a")
	res, err := s.Ingest(t.Context(), dup, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Duplicate || res.EventID != first.ID {
		t.Errorf("Ingest 500ms later with the ttl raised from 300ms to 5m = %+v, want a duplicate of %s", res, first.ID)
	}
}
