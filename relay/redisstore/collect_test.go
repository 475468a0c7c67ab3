package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/redis/go-redis/v9"
)

// roundTrips counts the commands and pipelines a client sends.
type roundTrips struct{ cmds, pipelines, piped atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.cmds.Add(1)
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.pipelines.Add(1)
		r.piped.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// Outcomes of concurrent attempts share round trips, and one command
// renews the leases of every claim of a process, whatever the target.
func TestOutcomesShareRoundTrips(t *testing.T) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	var rt roundTrips
	rdb.AddHook(&rt)
	s := redisstore.New(rdb, redisstore.Options{Prefix: "batch", Renew: -1, Lease: time.Hour})
	defer s.Close()
	ctx := t.Context()
	const n = 200
	for i := range n {
		storetest.Ingest(t, s, storetest.Event(storetest.Base, fmt.Sprint("b", i), "a", "b"), time.Hour)
	}
	var claims []relay.Claim
	for _, target := range []string{"a", "b"} {
		cs, err := s.Claim(ctx, target, storetest.Base, n)
		if err != nil || len(cs) != n {
			t.Fatalf("Claim(%s) = %d claims, %v; want %d", target, len(cs), err, n)
		}
		claims = append(claims, cs...)
	}

	if err := s.Renew(ctx); err != nil { // the first loads the script
		t.Fatal(err)
	}
	cmds := rt.cmds.Load()
	if err := s.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rt.cmds.Load() - cmds; got != 1 {
		t.Errorf("renewing %d claims of two targets took %d commands, want 1", len(claims), got)
	}

	pipelines := rt.pipelines.Load()
	var wg sync.WaitGroup
	for i, c := range claims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := c.Delivery
			d.Attempts = 1
			if i%2 == 0 {
				d.State = relay.Delivered
			} else {
				d.NextAttemptAt = storetest.Base.Add(time.Minute) // a retry: awaited
			}
			if err := s.Complete(ctx, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, Status: 200}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	storetest.Eventually(t, 5*time.Second, func() error {
		counts, err := s.Counts(ctx)
		if err != nil {
			return err
		}
		if got := counts["a"].Delivered + counts["b"].Delivered; got != n {
			return fmt.Errorf("%d delivered, want %d", got, n)
		}
		return nil
	})
	if got := rt.pipelines.Load() - pipelines; got > 2*n/10 {
		t.Errorf("%d concurrent outcomes took %d pipelines, want them to share (at most %d)", 2*n, got, 2*n/10)
	}
	t.Logf("%d outcomes in %d pipelines", 2*n, rt.pipelines.Load()-pipelines)
}
