// Package redisstore is the relay.Store on Redis, for several relays that
// share one queue and one set of dedup marks.
//
// Every key starts with the configured prefix inside a hash tag
// ("{hooxrelay}:…"), so that on a Redis Cluster all of them live in one slot
// and each script stays atomic. The layout (version 4, or 3 or 2, recorded
// in the key "layout"; CheckLayout refuses another) keeps an ingest to a
// few commands in one script:
//
//	e:EVENT          string: the event's record and payload (codec.go),
//	                 unless folded into d:EVENT (layout 3, fold.go)
//	d:EVENT          hash: "t" its targets, "o" how many are pending, "n"
//	                 and "l" how many duplicates came and the last one's
//	                 ms, per target "d:T" the delivery record and "a:T"
//	                 its attempts, and "r", "r1".."rN" a folded record
//	m:SOURCE\0KEY    string: the dedup mark, "EVENT|received ms", before
//	                 layout 4 (dedup.go)
//	q:T, h:T         sorted sets of event ids (as every sorted set here,
//	                 without "evt_": memberOf): T's deliveries due (scored
//	                 by due ms) and held (scored by the lease's end)
//	o:T              hash: event id → the relay holding its delivery to T
//	i:p:TASK\0STATUS sorted sets (score 0, by id): the events of a task
//	i:f:TASK\0STATUS and status with a pending delivery, and the others;
//	                 "ix" lists the tasks and statuses
//	s:STATE:T        sorted set: T's delivered or dead deliveries
//	x                sorted set (score 0, by member): the search index of
//	                 the payloads' ids and dedup keys (search.go)
//	targets, paused  sets of target names
//	prune-lock       string: the relay pruning the indexes now (Prune)
//	prune-x          string: the search index member where the last
//	                 Prune's walk of it stopped (pruneSearch)
//
// A claim moves deliveries from q:T to h:T until the end of their lease. A
// lease that runs out (its relay died) puts the delivery back in line for
// any relay to take.
//
// The store only keeps records: which record a delivery gets is decided in
// relay (NewDelivery at ingest, the operator's moves over SwapDeliveries).
// The scripts read a record's state at a fixed place and never decode it.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// closing are the keys that a final outcome of a held claim may
	// touch, known from its event at the claim (completeArgs).
	closing map[string]*closeKeys
	// orphans are claims whose claim or outcome could not be completed
	// because Redis went away: they are put back in line as soon as it
	// answers again, instead of waiting for their lease.
	orphans []relay.Delivery
	// uncertain names targets whose last claim got no answer: it may have
	// taken deliveries that this process never heard of. They are found by
	// owner and put back once Redis answers.
	uncertain map[string]bool
	// targetKeys caches keysOf; keepArg and ownerArg are the retention in
	// ms and owner as script arguments, boxed once.
	targetKeys        sync.Map
	keepArg, ownerArg any
	// knownTargets are the targets this process added to the list.
	knownTargets map[string]bool
	// searchBudget replaces searchBudget's count of search index
	// members one Prune looks at when above 0 (tests).
	searchBudget int
	// owner marks this process's claims in Redis.
	owner  string
	closed bool

	// layout is the key layout of the prefix, 0 before it was read
	// (layoutOf).
	layout atomic.Int32

	// durability is what CheckDurability found at start.
	durability atomic.Pointer[relay.Durability]

	// batch are the outcomes waiting for the collector; kick tells it of
	// new ones, full that a batch is full.
	batch      []pendingOutcome
	kick, full chan struct{}

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
		held: map[string]relay.Delivery{}, closing: map[string]*closeKeys{}, knownTargets: map[string]bool{}, uncertain: map[string]bool{}, owner: relay.NewEventID(time.Now())[4:],
		opts: opts, log: log, stop: make(chan struct{}), kick: make(chan struct{}, 1), full: make(chan struct{}, 1)}
	s.keepArg, s.ownerArg = s.retention.Milliseconds(), s.owner
	s.wg.Add(2)
	go s.collectLoop()
	go s.checkDurability()
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
func (s *Store) dealsKey(id string) string     { return s.pfx + "d:" + id }
func (s *Store) queueKey(target string) string { return s.pfx + "q:" + target }
func (s *Store) heldKey(target string) string  { return s.pfx + "h:" + target }
func (s *Store) ownerKey(target string) string { return s.pfx + "o:" + target }
func (s *Store) markKey(source, key string) string {
	return s.pfx + "m:" + source + "\x00" + relay.MarkKey(key)
}

// The fields of a deliveries hash: a delivery's record and its attempts.
func recField(target string) string     { return "d:" + target }
func historyField(target string) string { return "a:" + target }

// Index keys: sorted sets whose members all score 0, so that they sort by
// member, and event ids sort by receive time.
func (s *Store) eventIndexKey(pending bool, combo string) string {
	if pending {
		return s.pfx + "i:p:" + combo
	}
	return s.pfx + "i:f:" + combo
}

// combo names the event indexes of a task and status.
func combo(task, status string) string { return task + "\x00" + status }
func (s *Store) stateIndexKey(state relay.State, target string) string {
	return s.pfx + "s:" + string(state) + ":" + target
}
func (s *Store) eventIndexesKey() string { return s.pfx + "ix" }
func (s *Store) targetsKey() string      { return s.pfx + "targets" }
func (s *Store) pausedKey() string       { return s.pfx + "paused" }
func (s *Store) pruneLockKey() string    { return s.pfx + "prune-lock" }
func (s *Store) searchCursorKey() string { return s.pfx + "prune-x" }

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

// claimScript returns deliveries whose lease ran out to the queue, then
// moves up to n due ones to the held set until the lease ends, noting the
// claiming process as their owner, and returns for each its event's
// member (memberOf), delivery record, event record and targets, so that a claim is one round
// trip. A delivery whose keys expired meanwhile is dropped. A claimed
// delivery costs one read (HMGET of its record, its event's targets and a
// folded record's chunks, missing fields being cheap), or two for an event
// record in its own key; the moves between the sets are one command each
// for all of them.
// KEYS: queue, held, owners. ARGV: now ms, n, lease end ms, owner, key
// prefix, target.
var claimScript = redis.NewScript(luaMembers + luaBulk + `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #expired > 0 then
  local back = {}
  for _, m in ipairs(expired) do
    back[#back + 1] = ARGV[1]
    back[#back + 1] = m
  end
  bulk('ZREM', KEYS[2], expired)
  bulk('HDEL', KEYS[3], expired)
  bulk('ZADD', KEYS[1], back)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then
  return {}
end
bulk('ZREM', KEYS[1], ids)
-- The record and the first chunks of a folded record in one command:
-- most records fit in those; the rest, if any, in a second one.
local fields = {'d:' .. ARGV[6], 't', 'r', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6'}
local out, held, owners = {}, {}, {}
for _, m in ipairs(ids) do
  -- Lua makes and hashes every string it computes: as few as it can.
  local dels
  if string.byte(m, 1) == 126 then
    dels = ARGV[5] .. 'd:' .. eidOf(m)
  else
    dels = ARGV[5] .. 'd:evt_' .. m
  end
  local d = redis.call('HMGET', dels, unpack(fields))
  local ev = false
  local n = tonumber(d[3])
  if n then
    if n > 6 then
      local more = {}
      for i = 7, n do
        more[#more + 1] = 'r' .. i
      end
      local rest = redis.call('HMGET', dels, unpack(more))
      for i = 1, #rest do
        d[9 + i] = rest[i]
      end
    end
    ev = true
    for i = 4, 3 + n do
      ev = ev and d[i] ~= false
    end
    ev = ev and table.concat(d, '', 4, 3 + n)
  else
    ev = redis.call('GET', ARGV[5] .. 'e:' .. eidOf(m))
  end
  if d[1] and ev then
    held[#held + 1] = ARGV[3]
    held[#held + 1] = m
    owners[#owners + 1] = m
    owners[#owners + 1] = ARGV[4]
    out[#out + 1] = m
    out[#out + 1] = d[1]
    out[#out + 1] = ev
    out[#out + 1] = d[2]
  end
end
bulk('ZADD', KEYS[2], held)
bulk('HSET', KEYS[3], owners)
return out
`)

// Claim implements relay.Queue.
func (s *Store) Claim(ctx context.Context, target string, now time.Time, n int) ([]relay.Claim, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	if err := s.adoptOrphans(ctx); err != nil {
		return nil, err
	}
	res, err := claimScript.Run(ctx, s.rdb, []string{s.queueKey(target), s.heldKey(target), s.ownerKey(target)},
		ms(now), n, ms(now.Add(s.lease)), s.owner, s.pfx, target).Slice()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			s.mu.Lock()
			s.uncertain[target] = true
			s.mu.Unlock()
		}
		return nil, s.fail("claim "+target+" deliveries", err)
	}
	claims := make([]relay.Claim, 0, len(res)/4)
	for i := 0; i+3 < len(res); i += 4 {
		m, _ := res[i].(string)
		id := eidOf(m)
		rec, _ := res[i+1].(string)
		evRec, _ := res[i+2].(string)
		targets, _ := res[i+3].(string)
		var c relay.Claim
		if c.Delivery, err = decodeDelivery(id, target, []byte(rec)); err != nil {
			err = fmt.Errorf("decode delivery %s: %w", relay.DeliveryID(id, target), err)
		} else if c.Event, err = decodeEvent(id, []byte(evRec), targets, true); err != nil {
			err = fmt.Errorf("decode event %s: %w", id, err)
		}
		if err != nil {
			// Held by this process now: put them back in line.
			s.orphanClaims(target, now, res)
			return nil, err
		}
		claims = append(claims, c)
	}
	s.mu.Lock()
	for _, c := range claims {
		id := c.Delivery.ID()
		s.held[id] = c.Delivery
		ev := c.Event
		s.closing[id] = &closeKeys{pending: s.eventIndexKey(true, combo(ev.Task, ev.Status)),
			final: s.eventIndexKey(false, combo(ev.Task, ev.Status)), mark: s.markKey(ev.Source, ev.DedupKey)}
	}
	s.mu.Unlock()
	return claims, nil
}

// orphanClaims notes the claims of res (as claimScript returns them) that
// this process will not work on, for adoptOrphans.
func (s *Store) orphanClaims(target string, now time.Time, res []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < len(res); i += 4 {
		m, _ := res[i].(string)
		s.orphans = append(s.orphans, relay.Delivery{EventID: eidOf(m), Target: target, NextAttemptAt: now})
	}
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
	s.mu.Unlock()
	// After the collector's last flush, which ends the holds it records.
	s.wg.Wait()
	s.mu.Lock()
	held := make([]relay.Delivery, 0, len(s.held))
	for _, d := range s.held {
		held = append(held, d)
	}
	s.mu.Unlock()
	var err error
	if len(held) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.release(ctx, held, func(d relay.Delivery) time.Time { return d.NextAttemptAt })
		cancel()
	}
	return errors.Join(err, s.rdb.Close())
}
