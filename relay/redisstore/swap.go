package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// luaClose is close(deliveries, event, event id, keep), for the scripts
// that make a pending delivery final: once none of the event's deliveries
// is pending, the event moves from the pending event index of its task and
// status to the final one, its keys start their retention, and its dedup
// mark, if the mark is still the event's, expires no later than they do.
// The task, status and mark are read from the event's record; the keys
// made of them are in the same hash slot as every key of the store.
// closed(deliveries, event, event id, keep, record, zcall, keyed) is that
// last part, for a script that read the record already, and closeAt(…,
// pending index, final index, mark, zcall, keyed) for one that was given
// those keys: zcall runs the index commands (redis.call, or one that
// gathers them), keyed tells whether the event's record may be in its key
// (not folded).
var luaClose = luaMembers + luaEventHead + luaFold + `local function closeAt(dels, event, eid, keep, pending, final, mark, zcall, keyed)
  zcall('ZREM', pending, memberOf(eid))
  zcall('ZADD', final, 0, memberOf(eid))
  if keep <= 0 then
    return
  end
  local owner = redis.call('GET', mark)
  if owner and string.sub(owner, 1, #eid + 1) == eid .. '|' then
    local ttl = redis.call('PTTL', mark)
    if ttl < 0 or ttl > keep then
      redis.call('PEXPIRE', mark, keep)
    end
  end
  if keyed then
    redis.call('PEXPIRE', event, keep)
  end
  redis.call('PEXPIRE', dels, keep)
end
local function closed(dels, event, eid, keep, rec, zcall, keyed)
  -- The prefix, as the deliveries hash's key has it.
  local pfx = string.sub(dels, 1, #dels - #eid - 2)
  local source, task, status, mark = eventHead(rec)
  closeAt(dels, event, eid, keep, pfx .. 'i:p:' .. task .. '\0' .. status, pfx .. 'i:f:' .. task .. '\0' .. status,
    pfx .. 'm:' .. source .. '\0' .. mark, zcall, keyed)
end
local function close(dels, event, eid, keep)
  local open = redis.call('HINCRBY', dels, 'o', -1)
  if open > 0 then
    return
  end
  closed(dels, event, eid, keep, eventRecord(dels, event), redis.call, true)
end
`

// LoadDelivery implements relay.Admin.
func (s *Store) LoadDelivery(ctx context.Context, id string) (relay.Delivery, bool, error) {
	if s.isClosed() {
		return relay.Delivery{}, false, relay.ErrClosed
	}
	eid, target, ok := relay.SplitDeliveryID(id)
	if !ok {
		return relay.Delivery{}, false, relay.DeliveryNotFound(id)
	}
	pipe := s.rdb.Pipeline()
	rec := pipe.HGet(ctx, s.dealsKey(eid), recField(target))
	held := pipe.ZScore(ctx, s.heldKey(target), memberOf(eid))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return relay.Delivery{}, false, s.fail("read delivery "+id, err)
	}
	raw, err := rec.Bytes()
	if err != nil {
		return relay.Delivery{}, false, relay.DeliveryNotFound(id)
	}
	d, err := decodeDelivery(eid, target, raw)
	if err != nil {
		return relay.Delivery{}, false, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return d, held.Err() == nil, nil
}

// swapScript stores the new record of each swap whose stored record is
// still the old one (for a new delivery: there is none, and its event
// exists) and that no relay holds, and moves it between the queue and the
// indexes by the states of the two records. It returns how many it stored.
// KEYS: targets, then per swap its deliveries hash, event,
// queue, held, the old state's index and the new state's index.
// ARGV: retention ms (0: none), then per swap the event id, the target,
// the old record ("" for none), the new record and its due ms.
var swapScript = redis.NewScript(luaStateAt + luaClose + `
local keep = tonumber(ARGV[1])
local n = 0
for i = 0, (#KEYS - 1) / 6 - 1 do
  local k, a = 1 + i * 6, 1 + i * 5
  local dels, event, queue, held = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local eid, t, old, new = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local m = memberOf(eid)
  local f = 'd:' .. t
  local cur = redis.call('HGET', dels, f)
  local ok
  if old == '' then
    ok = not cur and (redis.call('EXISTS', event) == 1 or redis.call('HEXISTS', dels, 'r') == 1)
  else
    ok = cur == old
  end
  if ok and not redis.call('ZSCORE', held, m) then
    local was, now = '', stateAt(new)
    if old == '' then
      local ts = redis.call('HGET', dels, 't')
      if not ts or ts == '' then
        ts = t
      elseif not string.find('\0' .. ts .. '\0', '\0' .. t .. '\0', 1, true) then
        ts = ts .. '\0' .. t
      end
      unfoldFor(dels, event, ts)
      redis.call('HSET', dels, 't', ts)
      redis.call('SADD', KEYS[1], t)
    else
      was = stateAt(old)
      if was ~= 'p' then
        redis.call('ZREM', KEYS[k + 5], m)
      end
    end
    unfoldFor(dels, event, new)
    redis.call('HSET', dels, f, new)
    if now == 'p' then
      redis.call('ZADD', queue, ARGV[a + 5], m)
      if was ~= 'p' and redis.call('HINCRBY', dels, 'o', 1) == 1 then
        -- The event has a pending delivery again.
        local pfx = string.sub(dels, 1, #dels - #eid - 2)
        local _, task, status = eventHead(eventRecord(dels, event))
        redis.call('ZREM', pfx .. 'i:f:' .. task .. '\0' .. status, m)
        redis.call('ZADD', pfx .. 'i:p:' .. task .. '\0' .. status, 0, m)
        redis.call('PERSIST', event)
        redis.call('PERSIST', dels)
      end
    else
      redis.call('ZREM', queue, m)
      redis.call('ZADD', KEYS[k + 6], 0, m)
      if was == 'p' then
        close(dels, event, eid, keep)
      end
    end
    n = n + 1
  end
end
return n
`)

// SwapDeliveries implements relay.Admin: the stored records are read and
// compared first, then one script stores those that have not changed since.
func (s *Store) SwapDeliveries(ctx context.Context, swaps ...relay.Swap) (int, error) {
	if s.isClosed() {
		return 0, relay.ErrClosed
	}
	if len(swaps) == 0 {
		return 0, nil
	}
	// The Old of a swap is compared with the stored record as decoded, and
	// the script then checks that the record is still those bytes.
	pipe := s.rdb.Pipeline()
	cur := make([]*redis.StringCmd, len(swaps))
	for i, sw := range swaps {
		if sw.Old != nil && sw.Old.ID() != sw.New.ID() {
			return 0, fmt.Errorf("swap of delivery %s for %s: not the same delivery", sw.Old.ID(), sw.New.ID())
		}
		cur[i] = pipe.HGet(ctx, s.dealsKey(sw.New.EventID), recField(sw.New.Target))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, s.fail("read deliveries", err)
	}
	keys := []string{s.targetsKey()}
	args := []any{s.retention.Milliseconds()}
	for i, sw := range swaps {
		d := sw.New
		id := d.ID()
		old, err := cur[i].Bytes()
		switch {
		case sw.Old == nil && err == nil:
			continue // exists already
		case sw.Old != nil && err != nil:
			continue // gone
		case sw.Old != nil:
			stored, err := decodeDelivery(d.EventID, d.Target, old)
			if err != nil {
				return 0, fmt.Errorf("decode delivery %s: %w", id, err)
			}
			if !stored.Equal(*sw.Old) {
				continue
			}
		}
		rec, err := encodeDelivery(&d)
		if err != nil {
			return 0, err
		}
		was := relay.Pending // no index: a new delivery is in none
		if sw.Old != nil {
			was = sw.Old.State
		}
		keys = append(keys, s.dealsKey(d.EventID), s.eventKey(d.EventID), s.queueKey(d.Target), s.heldKey(d.Target),
			s.stateIndexKey(was, d.Target), s.stateIndexKey(d.State, d.Target))
		args = append(args, d.EventID, d.Target, old, rec, ms(d.NextAttemptAt))
	}
	if len(keys) == 1 {
		return 0, nil
	}
	n, err := swapScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, s.fail("swap deliveries", err)
	}
	return n, nil
}
