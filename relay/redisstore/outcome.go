package redisstore

import (
	"context"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// completeScript records a batch of outcomes, each as one would alone, in
// one script: Redis's setup of a script run costs about as much as an
// outcome's commands. An outcome is left out when this process no longer
// holds the delivery: its lease ran out, and another relay may hold it
// now or have recorded its own outcome already (outcomes are written
// late, see collect.go), which is the one to keep. A final outcome moves
// the delivery to its state's index and, once the event's last delivery
// is final, starts the retention of the event's keys. It returns how many
// it recorded.
// KEYS: per outcome its deliveries, queue, held, owners, event, final
// state's index.
// ARGV: retention ms (0: none), owner, then per outcome the event id,
// target, record, due ms and attempt ("" for none).
var completeScript = redis.NewScript(luaStateAt + luaClose + `
local keep, owner = tonumber(ARGV[1]), ARGV[2]
local function complete(dels, queue, held, owners, event, final, eid, target, rec, due, att)
  local m = memberOf(eid)
  if redis.call('HGET', owners, m) ~= owner then
    return 0
  end
  redis.call('ZREM', held, m)
  redis.call('HDEL', owners, m)
  local f, h = 'd:' .. target, 'a:' .. target
  -- The attempts so far come with the record, in the same command.
  local cur = redis.call('HMGET', dels, f, h)
  local was = cur[1]
  if not was then
    return 0
  end
  unfoldFor(dels, event, rec)
  if att ~= '' then
    local hist = (cur[2] or '') .. att
    unfoldFor(dels, event, hist)
    redis.call('HSET', dels, f, rec, h, hist)
  else
    redis.call('HSET', dels, f, rec)
  end
  if stateAt(rec) == 'p' then
    redis.call('ZADD', queue, due, m)
    return 1
  end
  redis.call('ZREM', queue, m)
  redis.call('ZADD', final, 0, m)
  -- The first final outcome of this delivery closes it on its event.
  if stateAt(was) == 'p' then
    close(dels, event, eid, keep)
  end
  return 1
end
local n = 0
for i = 0, #KEYS / 6 - 1 do
  local k, a = 6 * i, 3 + 5 * i
  n = n + complete(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6],
    ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
end
return n
`)

// completeArgs are the keys and arguments of completeScript for o, to
// follow the script's first two arguments (completeCall).
func (s *Store) completeArgs(o relay.Outcome) ([]string, []any, error) {
	d := o.Delivery
	rec, err := encodeDelivery(&d)
	if err != nil {
		return nil, nil, err
	}
	var att []byte
	if o.Attempt != nil {
		att = encodeAttempt(d.EventID, o.Attempt)
	}
	tk := s.keysOf(d.Target)
	final := tk.delivered
	if d.State != relay.Delivered {
		final = s.stateIndexKey(d.State, d.Target)
	}
	eid := any(d.EventID)
	return []string{s.dealsKey(d.EventID), tk.queue, tk.held, tk.owner, s.eventKey(d.EventID), final},
		[]any{eid, tk.name, rec, ms(d.NextAttemptAt), att}, nil
}

// completeCall is the run of completeScript that records the outcomes of
// items.
func (s *Store) completeCall(items []pendingOutcome) scriptCall {
	c := scriptCall{keys: make([]string, 0, 6*len(items)), args: make([]any, 0, 2+5*len(items))}
	c.args = append(c.args, s.keepArg, s.ownerArg)
	for _, it := range items {
		c.keys = append(c.keys, it.call.keys...)
		c.args = append(c.args, it.call.args...)
	}
	return c
}

// targetKeys are the keys and name of a target, made once: every outcome
// names them.
type targetKeys struct {
	queue, held, owner, delivered string
	name                          any
}

// keysOf returns the keys of target.
func (s *Store) keysOf(target string) *targetKeys {
	if tk, ok := s.targetKeys.Load(target); ok {
		return tk.(*targetKeys)
	}
	tk := &targetKeys{queue: s.queueKey(target), held: s.heldKey(target), owner: s.ownerKey(target),
		delivered: s.stateIndexKey(relay.Delivered, target), name: target}
	s.targetKeys.Store(target, tk)
	return tk
}

// Complete implements relay.Queue through the collector (collect.go): a
// final outcome is written after it returns, a pending one before.
func (s *Store) Complete(ctx context.Context, outcomes ...relay.Outcome) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	items := make([]pendingOutcome, len(outcomes))
	var waits []chan error
	for i, o := range outcomes {
		keys, args, err := s.completeArgs(o)
		if err != nil {
			return err
		}
		items[i] = pendingOutcome{o: o, call: scriptCall{keys, args}}
		if o.Delivery.State == relay.Pending {
			items[i].done = make(chan error, 1)
			waits = append(waits, items[i].done)
		}
	}
	s.enqueue(items)
	var err error
	for _, w := range waits {
		select {
		case e := <-w:
			if err == nil {
				err = e
			}
		case <-ctx.Done():
			// Written or not, the collector sees to it.
			return ctx.Err()
		}
	}
	return err
}

// releaseScript puts a held delivery back in line, unless its lease ran out
// and another relay took it meanwhile.
// KEYS: queue, held, owners. ARGV: delivery id, due ms, owner.
var releaseScript = redis.NewScript(luaMembers + `
local m = memberOf(ARGV[1])
local owner = redis.call('HGET', KEYS[3], m)
if owner and owner ~= ARGV[3] then
  return 0
end
if redis.call('ZREM', KEYS[2], m) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[2], m)
end
redis.call('HDEL', KEYS[3], m)
return 1
`)

// Release implements relay.Queue.
func (s *Store) Release(ctx context.Context, at time.Time, ds ...relay.Delivery) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	return s.release(ctx, ds, func(relay.Delivery) time.Time { return at })
}

func (s *Store) release(ctx context.Context, ds []relay.Delivery, at func(relay.Delivery) time.Time) error {
	calls := make([]scriptCall, len(ds))
	for i, d := range ds {
		calls[i] = scriptCall{[]string{s.queueKey(d.Target), s.heldKey(d.Target), s.ownerKey(d.Target)}, []any{d.EventID, ms(at(d)), s.owner}}
	}
	if err := s.evalAll(ctx, releaseScript, calls); err != nil {
		return s.fail("release deliveries", err)
	}
	s.mu.Lock()
	for _, d := range ds {
		delete(s.held, d.ID())
	}
	s.mu.Unlock()
	return nil
}

// adoptOrphans puts the orphaned claims back in line.
func (s *Store) adoptOrphans(ctx context.Context) error {
	s.mu.Lock()
	var targets []string
	for t := range s.uncertain {
		targets = append(targets, t)
	}
	s.mu.Unlock()
	for _, t := range targets {
		owners, err := s.rdb.HGetAll(ctx, s.ownerKey(t)).Result()
		if err != nil {
			return s.fail("find the claims of "+t, err)
		}
		s.mu.Lock()
		delete(s.uncertain, t)
		for m, owner := range owners {
			eid := eidOf(m)
			if _, ours := s.held[relay.DeliveryID(eid, t)]; owner == s.owner && !ours {
				s.orphans = append(s.orphans, relay.Delivery{EventID: eid, Target: t, NextAttemptAt: time.Now()})
			}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	orphans := s.orphans
	s.orphans = nil
	s.mu.Unlock()
	if len(orphans) == 0 {
		return nil
	}
	if err := s.release(ctx, orphans, func(d relay.Delivery) time.Time { return d.NextAttemptAt }); err != nil {
		s.mu.Lock()
		s.orphans = append(s.orphans, orphans...)
		s.mu.Unlock()
		return err
	}
	return nil
}

// scriptCall is one run of a script: its keys and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// evalAll runs the calls of script by EVALSHA in one pipeline. When Redis
// does not know the script (it started afresh, or was flushed), every call
// failed alike: it loads the script and sends them again.
func (s *Store) evalAll(ctx context.Context, script *redis.Script, calls []scriptCall) error {
	run := func() error {
		pipe := s.rdb.Pipeline()
		for _, c := range calls {
			script.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return err
	}
	if err := script.Load(ctx, s.rdb).Err(); err != nil {
		return err
	}
	return run()
}
