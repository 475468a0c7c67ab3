// Package redisstore is the relay.Store on Redis, for several relays that
// share one queue and one set of dedup marks.
//
// Every key starts with the configured prefix inside a hash tag
// ("{hooxrelay}:…"), so that on a Redis Cluster all of them live in one slot
// and each script stays atomic. Deliveries wait in a sorted set per target,
// scored by due time; a claim moves them to a second sorted set scored by
// the end of their lease. A lease that runs out (its relay died) puts the
// delivery back in line for any relay to take.
//
// The store only keeps records: which record a delivery gets is decided in
// relay (NewDelivery at ingest, the operator's moves over SwapDeliveries).
// Their encoding, with a layout version first, is in codec.go; the scripts
// read a record's state at a fixed place and never parse JSON.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

var _ relay.Store = (*Store)(nil)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Prefix starts every key; "" means "hooxrelay".
	Prefix string
	// Lease is how long a claim holds a delivery before another relay may
	// take it; 0 means one minute. It must outlast an attempt.
	Lease time.Duration
	// Retention is how long the keys of a delivered or dead delivery, and
	// of an event none of whose deliveries is pending, are kept; 0 keeps
	// them forever.
	Retention time.Duration
	// Renew is how often this process extends the leases of the claims it
	// still works on; 0 means a third of the lease, a negative value
	// never (for tests that move the clock themselves).
	Renew time.Duration
	// PruneInterval is how often the indexes are cleared of entries whose
	// keys expired; 0 means one minute.
	PruneInterval time.Duration
	// Logger receives errors of the background work; nil discards them.
	Logger *slog.Logger
}

// Store is the Redis store. It is safe for concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	pfx       string
	lease     time.Duration
	retention time.Duration

	mu   sync.Mutex
	held map[string]relay.Delivery // claims of this process, released at Close
	// orphans are claims whose claim or outcome could not be completed
	// because Redis went away: they are put back in line as soon as it
	// answers again, instead of waiting for their lease.
	orphans []relay.Delivery
	// uncertain names targets whose last claim got no answer: it may have
	// taken deliveries that this process never heard of. They are found by
	// owner and put back once Redis answers.
	uncertain map[string]bool
	// owner marks this process's claims in Redis.
	owner  string
	closed bool

	opts Options
	log  *slog.Logger
	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a store over rdb, which the store closes at Close.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "hooxrelay"
	}
	if opts.Lease <= 0 {
		opts.Lease = time.Minute
	}
	if opts.Renew == 0 {
		opts.Renew = opts.Lease / 3
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{rdb: rdb, pfx: "{" + opts.Prefix + "}:", lease: opts.Lease, retention: opts.Retention,
		held: map[string]relay.Delivery{}, uncertain: map[string]bool{}, owner: relay.NewEventID(time.Now())[4:],
		opts: opts, log: log, stop: make(chan struct{})}
	if opts.Renew > 0 {
		s.wg.Add(1)
		go s.renewLoop()
	}
	if opts.Retention > 0 {
		s.wg.Add(1)
		go s.pruneLoop()
	}
	return s
}

func (s *Store) eventKey(id string) string     { return s.pfx + "e:" + id }
func (s *Store) deliveryKey(id string) string  { return s.pfx + "d:" + id }
func (s *Store) attemptsKey(id string) string  { return s.pfx + "a:" + id }
func (s *Store) queueKey(target string) string { return s.pfx + "q:" + target }
func (s *Store) heldKey(target string) string  { return s.pfx + "h:" + target }
func (s *Store) ownerKey(target string) string { return s.pfx + "o:" + target }
func (s *Store) markKey(source, key string) string {
	return s.pfx + "m:" + source + "\x00" + relay.MarkKey(key)
}

// Index keys: sorted sets whose members all score 0, so that they sort by
// member, and event and delivery ids sort by receive time.
func (s *Store) eventIndexKey(task, status string) string {
	switch {
	case task != "" && status != "":
		return s.pfx + "i:ts:" + task + "\x00" + status
	case task != "":
		return s.pfx + "i:t:" + task
	case status != "":
		return s.pfx + "i:s:" + status
	}
	return s.pfx + "i:e"
}
func (s *Store) stateIndexKey(state relay.State, target string) string {
	return s.pfx + "i:d:" + string(state) + ":" + target
}
func (s *Store) targetsKey() string   { return s.pfx + "targets" }
func (s *Store) indexesKey() string   { return s.pfx + "indexes" } // the index keys to prune
func (s *Store) pausedKey() string    { return s.pfx + "paused" }
func (s *Store) pruneLockKey() string { return s.pfx + "prune-lock" }

func ms(t time.Time) int64 { return t.UnixMilli() }

// fail wraps err with what was being done; a call cut short by Close
// reports relay.ErrClosed.
func (s *Store) fail(what string, err error) error {
	if errors.Is(err, redis.ErrClosed) || s.isClosed() {
		return fmt.Errorf("%s: %w", what, relay.ErrClosed)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ingestScript checks the dedup mark and writes the event, its deliveries,
// their index entries and the mark, all or nothing. The mark is judged by
// the ttl in force (ARGV[3]) but kept as long as the retention when that is
// longer, so that a dedup.ttl raised by a reload covers the marks already
// written; never longer than its event, whose hash names it (see close).
// KEYS: mark, event, the four event indexes, targets, indexes, then per
// target its queue, its delivery record and its pending index.
// ARGV: event id, received ms, ttl ms, meta, payload, retention ms (0:
// none), targets, then per target delivery id, delivery record, due ms,
// target.
var ingestScript = redis.NewScript(`
local mark = redis.call('GET', KEYS[1])
if mark then
  local sep = string.find(mark, '|', 1, true)
  if sep and tonumber(ARGV[2]) - tonumber(string.sub(mark, sep + 1)) < tonumber(ARGV[3]) then
    return {1, string.sub(mark, 1, sep - 1)}
  end
end
local n = (#KEYS - 8) / 3
local keep = tonumber(ARGV[6])
-- An event without deliveries is final at once: its mark goes with it.
local px = math.max(tonumber(ARGV[3]), keep)
if n == 0 and keep > 0 then
  px = keep
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', px)
redis.call('HSET', KEYS[2], 'meta', ARGV[4], 'targets', ARGV[7], 'payload', ARGV[5], 'open', n, 'mark', KEYS[1])
if n == 0 and keep > 0 then
  redis.call('PEXPIRE', KEYS[2], keep)
end
for i = 3, 6 do
  redis.call('ZADD', KEYS[i], 0, ARGV[1])
end
redis.call('SADD', KEYS[8], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for i = 1, n do
  local k, a = 8 + (i - 1) * 3, 7 + (i - 1) * 4
  redis.call('SET', KEYS[k + 2], ARGV[a + 2])
  redis.call('ZADD', KEYS[k + 1], ARGV[a + 3], ARGV[a + 1])
  redis.call('ZADD', KEYS[k + 3], 0, ARGV[a + 1])
  redis.call('SADD', KEYS[7], ARGV[a + 4])
end
return {0, ARGV[1]}
`)

// Ingest implements relay.Queue.
func (s *Store) Ingest(ctx context.Context, ev *relay.Event, ttl time.Duration) (relay.IngestResult, error) {
	if s.isClosed() {
		return relay.IngestResult{}, relay.ErrClosed
	}
	meta, targets, err := encodeEvent(ev)
	if err != nil {
		return relay.IngestResult{}, err
	}
	keys := []string{s.markKey(ev.Source, ev.DedupKey), s.eventKey(ev.ID),
		s.eventIndexKey("", ""), s.eventIndexKey(ev.Task, ""), s.eventIndexKey("", ev.Status), s.eventIndexKey(ev.Task, ev.Status),
		s.targetsKey(), s.indexesKey()}
	args := []any{ev.ID, ms(ev.ReceivedAt), max(ttl.Milliseconds(), 1), meta, ev.Payload, s.retention.Milliseconds(), targets}
	for _, t := range ev.Targets {
		d := relay.NewDelivery(ev, t)
		rec, err := encodeDelivery(&d)
		if err != nil {
			return relay.IngestResult{}, err
		}
		keys = append(keys, s.queueKey(t), s.deliveryKey(d.ID()), s.stateIndexKey(relay.Pending, t))
		args = append(args, d.ID(), rec, ms(ev.ReceivedAt), t)
	}
	res, err := ingestScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return relay.IngestResult{}, s.fail("ingest "+ev.ID, err)
	}
	if len(res) != 2 {
		return relay.IngestResult{}, fmt.Errorf("ingest %s: unexpected reply %v", ev.ID, res)
	}
	dup, _ := res[0].(int64)
	id, _ := res[1].(string)
	return relay.IngestResult{EventID: id, Duplicate: dup == 1}, nil
}

// claimScript returns deliveries whose lease ran out to the queue, then
// moves up to n due ones to the held set until the lease ends, noting the
// claiming process as their owner.
// KEYS: queue, held, owners. ARGV: now ms, n, lease end ms, owner.
var claimScript = redis.NewScript(`
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[3], id)
  redis.call('HSET', KEYS[3], id, ARGV[4])
end
return ids
`)

// Claim implements relay.Queue.
func (s *Store) Claim(ctx context.Context, target string, now time.Time, n int) ([]relay.Claim, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	if err := s.adoptOrphans(ctx); err != nil {
		return nil, err
	}
	ids, err := claimScript.Run(ctx, s.rdb, []string{s.queueKey(target), s.heldKey(target), s.ownerKey(target)},
		ms(now), n, ms(now.Add(s.lease)), s.owner).StringSlice()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			s.mu.Lock()
			s.uncertain[target] = true
			s.mu.Unlock()
		}
		return nil, s.fail("claim "+target+" deliveries", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	recs := make([]*redis.StringCmd, len(ids))
	evs := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		eid, _, _ := relay.SplitDeliveryID(id)
		recs[i] = pipe.Get(ctx, s.deliveryKey(id))
		evs[i] = pipe.HMGet(ctx, s.eventKey(eid), eventFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		s.mu.Lock()
		for _, id := range ids {
			eid, _, _ := relay.SplitDeliveryID(id)
			s.orphans = append(s.orphans, relay.Delivery{EventID: eid, Target: target, NextAttemptAt: now})
		}
		s.mu.Unlock()
		return nil, s.fail("claim "+target+" deliveries: read", err)
	}
	claims := make([]relay.Claim, 0, len(ids))
	var gone []string
	for i, id := range ids {
		var c relay.Claim
		rec, err := recs[i].Bytes()
		ev, ok, evErr := readEvent(evs[i].Val())
		if evErr != nil {
			return nil, fmt.Errorf("decode event of %s: %w", id, evErr)
		}
		if err != nil || !ok {
			gone = append(gone, id) // pruned meanwhile
			continue
		}
		if c.Delivery, err = decodeDelivery(rec); err != nil {
			return nil, fmt.Errorf("decode delivery %s: %w", id, err)
		}
		c.Event = ev
		claims = append(claims, c)
	}
	if len(gone) > 0 {
		pipe := s.rdb.TxPipeline()
		pipe.ZRem(ctx, s.heldKey(target), toAny(gone)...)
		pipe.HDel(ctx, s.ownerKey(target), gone...)
		pipe.Exec(ctx) // best effort: a lease left behind runs out by itself
	}
	s.mu.Lock()
	for _, c := range claims {
		s.held[c.Delivery.ID()] = c.Delivery
	}
	s.mu.Unlock()
	return claims, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// NextDue implements relay.Queue. A held delivery counts from the end of
// its lease, when it is free to take again: that is how a relay notices,
// without polling, the claims of a relay that died.
func (s *Store) NextDue(ctx context.Context, target string) (time.Time, bool, error) {
	if s.isClosed() {
		return time.Time{}, false, relay.ErrClosed
	}
	pipe := s.rdb.Pipeline()
	q := pipe.ZRangeWithScores(ctx, s.queueKey(target), 0, 0)
	h := pipe.ZRangeWithScores(ctx, s.heldKey(target), 0, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, false, s.fail("next due of "+target, err)
	}
	var due time.Time
	ok := false
	for _, zs := range [][]redis.Z{q.Val(), h.Val()} {
		if len(zs) == 0 {
			continue
		}
		if t := time.UnixMilli(int64(zs[0].Score)); !ok || t.Before(due) {
			due, ok = t, true
		}
	}
	return due, ok, nil
}

// Backlog implements relay.Queue.
func (s *Store) Backlog(ctx context.Context, target string) (int, error) {
	if s.isClosed() {
		return 0, relay.ErrClosed
	}
	pipe := s.rdb.Pipeline()
	q := pipe.ZCard(ctx, s.queueKey(target))
	h := pipe.ZCard(ctx, s.heldKey(target))
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, s.fail("backlog of "+target, err)
	}
	return int(q.Val() + h.Val()), nil
}

// Ping implements relay.Queue.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	return s.rdb.Ping(ctx).Err()
}

// Close returns this process's claims to the queue at their due time, so
// that they need not wait for their leases, and closes the client.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	held := make([]relay.Delivery, 0, len(s.held))
	for _, d := range s.held {
		held = append(held, d)
	}
	s.mu.Unlock()
	s.wg.Wait()
	var err error
	if len(held) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.release(ctx, held, func(d relay.Delivery) time.Time { return d.NextAttemptAt })
		cancel()
	}
	return errors.Join(err, s.rdb.Close())
}
