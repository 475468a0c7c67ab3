package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/redisinfo"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/redis/go-redis/v9"
)

// RedisCost is what the Redis store costs Redis, measured on the store
// alone (no HTTP, no dispatcher) under a prefix of its own: the time of
// Redis's one thread per ingest (INFO commandstats), and the memory per
// event (INFO memory used_memory) while its two deliveries are pending
// and once both are delivered and kept for the retention.
type RedisCost struct {
	Events            int     `json:"events"`
	USPerIngest       float64 `json:"redis_us_per_ingest"`
	CommandsPerIngest float64 `json:"redis_commands_per_ingest"`
	BytesPerPending   float64 `json:"redis_bytes_per_pending_event"`
	BytesPerDelivered float64 `json:"redis_bytes_per_delivered_event"`
	// RefUSPerIngest is Redis's time per run of a lean reference script
	// in the same measurement (refScript): what the machine's load makes
	// of the least an ingest could be, to compare USPerIngest with.
	RefUSPerIngest float64 `json:"redis_us_per_reference_script"`
	// USPerWebhook is the CPU time of Redis's main thread per acked
	// webhook during the relay's load run (INFO cpu): its ingest, its
	// deliveries' bookkeeping as far as it happened within the run, the
	// network and the append-only file's writes.
	USPerWebhook float64 `json:"redis_us_per_webhook_under_load,omitempty"`
}

// redisStats are what INFO tells of the time Redis spent: per command,
// the calls and µs of INFO commandstats (a command a script calls counts
// there too, and its time again in the script's), the CPU seconds of its
// main thread (user and system), and used_memory.
type redisStats redisinfo.Stats

// scripts are the commands that run a script.
var scripts = []string{"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall"}

// scriptUsec is the µs spent in scripts; otherCalls the calls of every
// other command, those the scripts made included.
func (st redisStats) scriptUsec() (n float64) {
	for _, c := range scripts {
		n += st.Usec[c]
	}
	return n
}

func (st redisStats) otherCalls() (n float64) {
	for c, v := range st.Calls {
		if !slices.Contains(scripts, c) && c != "info" {
			n += v
		}
	}
	return n
}

func readRedisStats(ctx context.Context, rdb *redis.Client) (redisStats, error) {
	info, err := rdb.Info(ctx, "commandstats", "memory", "cpu").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("INFO of the bench's Redis: %w", err)
	}
	return redisStats(redisinfo.Parse(info)), nil
}

// statsClient is a plain client of the bench's Redis, for INFO.
func statsClient(redisURL string) (*redis.Client, error) {
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	return redis.NewClient(o), nil
}

// measureRedisCost ingests n events of the bench's first task into a
// store of its own on redisURL from 16 callers, then claims and completes
// both deliveries of each as delivered with a 200 attempt, and measures
// what each step cost Redis. It deletes its keys at the end. Nothing else
// should write to that Redis meanwhile.
func measureRedisCost(ctx context.Context, redisURL string, n int) (RedisCost, error) {
	out := RedisCost{Events: n}
	info, err := statsClient(redisURL)
	if err != nil {
		return out, err
	}
	defer info.Close()
	rdb, err := redisstore.NewClient(redisURL)
	if err != nil {
		return out, err
	}
	// As long as the default prefix, "hooxrelay": key names count.
	prefix := fmt.Sprintf("hxb%06d", time.Now().UnixNano()%1e6)
	s := redisstore.New(rdb, redisstore.Options{Prefix: prefix, Retention: 24 * time.Hour, Renew: -1})
	defer func() {
		s.Close()
		deleteKeys(context.Background(), info, "{"+prefix+"}:*")
	}()
	before, err := readRedisStats(ctx, info)
	if err != nil {
		return out, err
	}
	targets := []string{"first", "second"}
	err = concurrently(n, func(i int) error {
		now := time.Now()
		ev := &relay.Event{ID: relay.NewEventID(now), Source: "hoox", Task: "video_generate", Status: "completed",
			DedupKey: fmt.Sprintf("video_generate:run_%d:completed", i), JobID: fmt.Sprintf("run_%d", i), ReceivedAt: now, RemoteAddr: "127.0.0.1",
			Headers: map[string]string{"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"},
			Targets: targets, Payload: fmt.Appendf(nil, tasks[0], i, i)}
		_, err := s.Ingest(ctx, ev, time.Hour)
		return err
	})
	if err != nil {
		return out, err
	}
	ingested, err := readRedisStats(ctx, info)
	if err != nil {
		return out, err
	}
	out.USPerIngest = (ingested.scriptUsec() - before.scriptUsec()) / float64(n)
	out.CommandsPerIngest = (ingested.otherCalls() - before.otherCalls()) / float64(n)
	out.BytesPerPending = (ingested.Used - before.Used) / float64(n)

	for _, t := range targets {
		for {
			claims, err := s.Claim(ctx, t, time.Now(), 200)
			if err != nil {
				return out, err
			}
			if len(claims) == 0 {
				break
			}
			outcomes := make([]relay.Outcome, len(claims))
			for i, c := range claims {
				d := c.Delivery
				now := time.Now()
				d.State, d.Attempts, d.LastStatus, d.UpdatedAt = relay.Delivered, 1, 200, now
				outcomes[i] = relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: now, Duration: time.Millisecond, Status: 200, Body: `{"status":"ok"}`}}
			}
			if err := s.Complete(ctx, outcomes...); err != nil {
				return out, err
			}
		}
	}
	// Close writes what Complete deferred.
	if err := s.Close(); err != nil {
		return out, err
	}
	delivered, err := readRedisStats(ctx, info)
	if err != nil {
		return out, err
	}
	out.BytesPerDelivered = (delivered.Used - before.Used) / float64(n)

	// The reference, on keys of its own.
	ref := "{" + prefix + "}:ref:"
	payload := fmt.Appendf(nil, tasks[0], 0, 0)
	err = concurrently(n, func(i int) error {
		id := relay.NewEventID(time.Now())
		return refScript.Run(ctx, info, []string{fmt.Sprint(ref, "m:", i), ref + "e:" + id, ref + "q:first", ref + "q:second", ref + "i"},
			id, payload, time.Now().UnixMilli()).Err()
	})
	if err != nil {
		return out, err
	}
	after, err := readRedisStats(ctx, info)
	if err != nil {
		return out, err
	}
	out.RefUSPerIngest = (after.scriptUsec() - delivered.scriptUsec()) / float64(n)
	return out, nil
}

// refScript is the least an ingest could be: a dedup mark set if absent,
// the event as one hash, two queue entries and one index entry.
var refScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', 3600) then
  return 1
end
redis.call('HSET', KEYS[2], 'meta', ARGV[1], 'payload', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[5], 0, ARGV[1])
return 0
`)

// concurrently runs f(0) to f(n-1) from 16 callers, and returns the first
// error.
func concurrently(n int, f func(i int) error) error {
	const callers = 16
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			for i := c; i < n; i += callers {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// deleteKeys deletes the keys matching pattern, best effort.
func deleteKeys(ctx context.Context, rdb *redis.Client, pattern string) {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			rdb.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Unlink(ctx, batch...)
	}
}

// table prints c as the lines of the load report.
func (c RedisCost) table(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "Redis, store alone (%d events, 2 targets): %.1f µs of Redis per ingest (%.1f commands; a 5-command reference script: %.1f µs), %.0f bytes per pending event, %.0f bytes per delivered event\n",
		c.Events, c.USPerIngest, c.CommandsPerIngest, c.RefUSPerIngest, c.BytesPerPending, c.BytesPerDelivered)
	if c.USPerWebhook > 0 {
		fmt.Fprintf(w, "Redis under the relay's load: %.1f µs of Redis main-thread CPU per acked webhook (ingest, delivery bookkeeping, network, AOF)\n", c.USPerWebhook)
	}
}

// redisCostEvents is how many events measureRedisCost ingests.
const redisCostEvents = 10000
