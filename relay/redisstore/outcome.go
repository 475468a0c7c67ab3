package redisstore

import (
	"context"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// completeScript records an outcome and ends the hold, unless the lease ran
// out and another relay holds the delivery now: then that relay's outcome
// is the one to keep. A final outcome moves the delivery to its state's
// index and starts the retention of its keys, and of the event's once its
// last delivery is final.
// KEYS: delivery, queue, held, attempts, event, owners, pending index,
// final state's index, indexes.
// ARGV: record, state, due ms, delivery id, attempt ("" for none),
// retention ms (0: none), owner.
var completeScript = redis.NewScript(luaStateAt + luaClose + `
local owner = redis.call('HGET', KEYS[6], ARGV[4])
if owner and owner ~= ARGV[7] then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('HDEL', KEYS[6], ARGV[4])
  return 0
end
local was = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('HDEL', KEYS[6], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('RPUSH', KEYS[4], ARGV[5])
end
if ARGV[2] == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[7], ARGV[4])
redis.call('ZADD', KEYS[8], 0, ARGV[4])
redis.call('SADD', KEYS[9], KEYS[8])
local keep = tonumber(ARGV[6])
if keep > 0 then
  redis.call('PEXPIRE', KEYS[1], keep)
  redis.call('PEXPIRE', KEYS[4], keep)
end
-- The first final outcome of this delivery closes it on its event.
if stateAt(was) == 'p' then
  close(KEYS[5], ARGV[4], keep)
end
return 1
`)

// Complete implements relay.Queue; outcomes are written before it returns.
func (s *Store) Complete(ctx context.Context, outcomes ...relay.Outcome) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	pipe := s.rdb.Pipeline()
	for _, o := range outcomes {
		d := o.Delivery
		rec, err := encodeDelivery(&d)
		if err != nil {
			return err
		}
		var att []byte
		if o.Attempt != nil {
			if att, err = encodeAttempt(o.Attempt); err != nil {
				return err
			}
		}
		id := d.ID()
		final := s.stateIndexKey(d.State, d.Target)
		completeScript.Eval(ctx, pipe, []string{s.deliveryKey(id), s.queueKey(d.Target), s.heldKey(d.Target), s.attemptsKey(id),
			s.eventKey(d.EventID), s.ownerKey(d.Target), s.stateIndexKey(relay.Pending, d.Target), final, s.indexesKey()},
			rec, string(d.State), ms(d.NextAttemptAt), id, att, s.retention.Milliseconds(), s.owner)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// Not known to be written: the deliveries go back in line (at
		// least once) when Redis answers again.
		s.mu.Lock()
		for _, o := range outcomes {
			d := s.held[o.Delivery.ID()]
			if d.EventID == "" {
				d = o.Delivery
			}
			s.orphans = append(s.orphans, d)
			delete(s.held, o.Delivery.ID())
		}
		s.mu.Unlock()
		return s.fail("complete deliveries", err)
	}
	s.mu.Lock()
	for _, o := range outcomes {
		delete(s.held, o.Delivery.ID())
	}
	s.mu.Unlock()
	return nil
}

// releaseScript puts a held delivery back in line, unless its lease ran out
// and another relay took it meanwhile.
// KEYS: queue, held, owners. ARGV: delivery id, due ms, owner.
var releaseScript = redis.NewScript(`
local owner = redis.call('HGET', KEYS[3], ARGV[1])
if owner and owner ~= ARGV[3] then
  return 0
end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('HDEL', KEYS[3], ARGV[1])
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
	pipe := s.rdb.Pipeline()
	for _, d := range ds {
		releaseScript.Eval(ctx, pipe, []string{s.queueKey(d.Target), s.heldKey(d.Target), s.ownerKey(d.Target)}, d.ID(), ms(at(d)), s.owner)
	}
	if _, err := pipe.Exec(ctx); err != nil {
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
		for id, owner := range owners {
			if _, ours := s.held[id]; owner == s.owner && !ours {
				eid, _, _ := relay.SplitDeliveryID(id)
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
