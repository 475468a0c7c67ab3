package redisstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/redisinfo"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkDeliveryCost ingests b.N events of two targets, then claims and
// completes every delivery as delivered at the first attempt, as a relay
// draining a backlog does, and reports what that cost Redis's one thread:
// the µs of the scripts (INFO commandstats, the commands they call
// included) and the round trips per delivery. The ingest is not counted.
// Run it with -benchtime=Nx: the time per op is not the point.
func BenchmarkDeliveryCost(b *testing.B) {
	srv := redistest.Start(b, true)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64}),
		redisstore.Options{Prefix: "bench", Retention: time.Hour, Renew: -1, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	targets := []string{"first", "second"}
	now := time.Now()
	for i := range b.N {
		ev := &relay.Event{ID: relay.NewEventID(now), Source: "hoox", Task: "video_generate", Status: "completed",
			DedupKey: fmt.Sprintf("video_generate:run_%d:completed", i), ReceivedAt: now, Targets: targets,
			Headers: map[string]string{"Content-Type": "application/json"},
			Payload: fmt.Appendf(nil, `{"task":"video_generate","job_id":"run_%d","status":"completed","result":{"video_id":"v","cost":5}}`, i)}
		if _, err := s.Ingest(ctx, ev, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	// One delivery first, so that Redis knows the scripts.
	warm := &relay.Event{ID: relay.NewEventID(now), Source: "hoox", Task: "warm", ReceivedAt: now, Targets: []string{"warm"}}
	if _, err := s.Ingest(ctx, warm, time.Hour); err != nil {
		b.Fatal(err)
	}
	for range 100 {
		claims, err := s.Claim(ctx, "warm", time.Now(), 1)
		if err != nil {
			b.Fatal(err)
		}
		if len(claims) > 0 {
			d := claims[0].Delivery
			d.State = relay.Delivered
			if err := s.Complete(ctx, relay.Outcome{Delivery: d}); err != nil {
				b.Fatal(err)
			}
			break
		}
	}
	for range 100 {
		if n, _ := rdb.ZCard(ctx, "{bench}:s:delivered:warm").Result(); n == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	// First every claim, then every outcome, to tell their costs apart.
	var mu sync.Mutex
	var claims []relay.Claim
	var wg sync.WaitGroup
	for _, t := range targets {
		for range 4 {
			wg.Go(func() {
				for {
					cs, err := s.Claim(ctx, t, time.Now(), 16)
					if err != nil {
						b.Error(err)
						return
					}
					if len(cs) == 0 {
						return
					}
					mu.Lock()
					claims = append(claims, cs...)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	claimUsec, claimCalls := evalStats(b, rdb, false)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(claims); i += 8 {
				at := time.Now()
				d := claims[i].Delivery
				d.State, d.Attempts, d.BudgetAttempts, d.LastStatus, d.UpdatedAt = relay.Delivered, d.Attempts+1, d.BudgetAttempts+1, 200, at
				a := &relay.Attempt{Number: d.Attempts, StartedAt: at, Duration: 3 * time.Millisecond, Status: 200, Body: "ok"}
				if err := s.Complete(ctx, relay.Outcome{Delivery: d, Attempt: a}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The collector writes the last outcomes after Complete returned.
	for _, t := range targets {
		for {
			n, err := rdb.ZCard(ctx, "{bench}:s:delivered:"+t).Result()
			if err != nil {
				b.Fatal(err)
			}
			if n == int64(b.N) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	completeUsec, completeCalls := evalStats(b, rdb, testing.Verbose())
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	deliveries := float64(2 * b.N)
	b.ReportMetric(claimUsec/deliveries, "claim-µs/delivery")
	b.ReportMetric(completeUsec/deliveries, "complete-µs/delivery")
	b.ReportMetric((claimUsec+completeUsec)/deliveries, "redis-µs/delivery")
	b.ReportMetric((claimCalls+completeCalls)/deliveries, "scripts/delivery")
}

// evalStats returns the µs and calls of the scripts since the last call
// (INFO commandstats, which CONFIG RESETSTAT clears), and logs the stats
// when told.
func evalStats(b *testing.B, rdb *redis.Client, log bool) (usec, calls float64) {
	ctx := context.Background()
	stats, err := rdb.Info(ctx, "commandstats", "errorstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	if log {
		b.Log(stats)
	}
	st := redisinfo.Parse(stats)
	for cmd, n := range st.Calls {
		if strings.HasPrefix(cmd, "eval") {
			calls += n
			usec += st.Usec[cmd]
		}
	}
	return usec, calls
}
