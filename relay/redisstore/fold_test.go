package redisstore_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/redis/go-redis/v9"
)

// From layout 3 an event's record is folded into its deliveries' hash, which
// stays a listpack; a long value (a grown attempt history) moves the
// record to a key of its own first; a large record never folds. The event
// reads the same in each form, and its keys and its mark (found through
// the dedup key the record rebuilds; layout 3 has marks) get the retention
// once it is final.
func TestFoldedRecords(t *testing.T) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := t.Context()
	if err := rdb.Set(ctx, "{fold}:layout", "3", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}), redisstore.Options{Prefix: "fold", Retention: time.Hour, Renew: -1})
	defer s.Close()
	base := storetest.Base
	ev := storetest.Event(base, "video_generate:run_1:completed", "a", "b")
	ev.JobID = "run_1"
	big := storetest.Event(base.Add(time.Millisecond), "video_generate:run_2:completed", "c")
	big.JobID, big.Payload = "run_2", bytes.Repeat([]byte("x"), 2000)
	mid := storetest.Event(base.Add(2*time.Millisecond), "video_generate:run_3:completed", "c")
	mid.JobID, mid.Payload = "run_3", bytes.Repeat([]byte("x"), 900)
	for _, e := range []*relay.Event{ev, big, mid} {
		storetest.Ingest(t, s, e, time.Hour)
	}
	eKey, dKey := "{fold}:e:"+ev.ID, "{fold}:d:"+ev.ID
	exists := func(key string) bool { n, _ := rdb.Exists(ctx, key).Result(); return n == 1 }
	if exists(eKey) || !exists(dKey) || !exists("{fold}:e:"+big.ID) {
		t.Fatalf("after ingest: event key %v, deliveries hash %v, large event's key %v; want the record folded, the large one not",
			exists(eKey), exists(dKey), exists("{fold}:e:"+big.ID))
	}
	for _, key := range []string{dKey, "{fold}:d:" + mid.ID} {
		if enc, _ := rdb.ObjectEncoding(ctx, key).Result(); enc != "listpack" {
			t.Errorf("deliveries hash %s of a folded event is a %s, want a listpack", key, enc)
		}
	}
	if exists("{fold}:e:" + mid.ID) {
		t.Error("a record of about 1 KB was not folded")
	}
	check := func(when string) {
		t.Helper()
		got, err := s.Event(ctx, ev.ID)
		if err != nil || !bytes.Equal(got.Event.Payload, ev.Payload) || got.Event.DedupKey != ev.DedupKey || got.Event.Trace != ev.Trace {
			t.Errorf("%s: Event = %+v, %v; want the event as ingested", when, got, err)
		}
	}
	check("folded")
	claim := func(target string) relay.Claim {
		t.Helper()
		cs, err := s.Claim(ctx, target, base.Add(time.Hour), 10)
		if err != nil || len(cs) != 1 || !bytes.Equal(cs[0].Event.Payload, ev.Payload) {
			t.Fatalf("Claim(%s) = %+v, %v; want the event", target, cs, err)
		}
		return cs[0]
	}
	// A failed attempt whose answer is longer than a chunk.
	c := claim("a")
	d := c.Delivery
	d.Attempts, d.LastStatus, d.NextAttemptAt = 1, 500, base
	if err := s.Complete(ctx, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, Status: 500, Body: strings.Repeat("e", 200)}}); err != nil {
		t.Fatal(err)
	}
	if !exists(eKey) {
		t.Error("the record stayed folded in a hash that took a 200-byte value")
	}
	if n, _ := rdb.HLen(ctx, dKey).Result(); n != 5 { // t, o, d:a, d:b, a:a
		fields, _ := rdb.HKeys(ctx, dKey).Result()
		t.Errorf("deliveries hash after unfolding holds %q, want t, o, d:a, d:b, a:a", fields)
	}
	check("unfolded")
	for _, target := range []string{"a", "b"} {
		c := claim(target)
		d := c.Delivery
		d.State, d.Attempts = relay.Delivered, d.Attempts+1
		if err := s.Complete(ctx, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: d.Attempts, Status: 200}}); err != nil {
			t.Fatal(err)
		}
	}
	storetest.Eventually(t, 5*time.Second, func() error {
		for _, key := range []string{eKey, dKey, "{fold}:m:hoox\x00" + ev.DedupKey} {
			if ttl, _ := rdb.PTTL(ctx, key).Result(); ttl <= 0 || ttl > time.Hour {
				return &ttlError{key, ttl}
			}
		}
		return nil
	})
	// A folded record of more chunks than the claim reads at first, and
	// one in its key: claimed whole, and their keys' retention started.
	cs, err := s.Claim(ctx, "c", base.Add(time.Hour), 10)
	if err != nil || len(cs) != 2 || !bytes.Equal(cs[0].Event.Payload, big.Payload) || !bytes.Equal(cs[1].Event.Payload, mid.Payload) {
		t.Fatalf("Claim(c) = %d claims, %v; want the 2000- and 900-byte events whole", len(cs), err)
	}
	for _, c := range cs {
		d := c.Delivery
		d.State, d.Attempts = relay.Delivered, 1
		if err := s.Complete(ctx, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, Status: 200}}); err != nil {
			t.Fatal(err)
		}
	}
	storetest.Eventually(t, 5*time.Second, func() error {
		for _, key := range []string{"{fold}:e:" + big.ID, "{fold}:d:" + big.ID, "{fold}:d:" + mid.ID} {
			if ttl, _ := rdb.PTTL(ctx, key).Result(); ttl <= 0 || ttl > time.Hour {
				return &ttlError{key, ttl}
			}
		}
		return nil
	})
}

type ttlError struct {
	key string
	ttl time.Duration
}

func (e *ttlError) Error() string {
	return "key " + e.key + " TTL " + e.ttl.String() + ", want the retention"
}
