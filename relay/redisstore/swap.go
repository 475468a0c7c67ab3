package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// luaClose is close(event, delivery id, keep), for the scripts that make a
// pending delivery final: once none of the event's deliveries is pending,
// the event's key starts its retention, and its dedup mark, if the mark is
// still the event's, expires no later than it. The mark's key is read from
// the event's hash: it is in the same hash slot as every key of the store.
const luaClose = `local function close(event, id, keep)
  local open = redis.call('HINCRBY', event, 'open', -1)
  if open > 0 or keep <= 0 then
    return
  end
  local mark = redis.call('HGET', event, 'mark')
  local owner = mark and redis.call('GET', mark)
  local eid = string.match(id, '^[^:]*')
  if owner and string.sub(owner, 1, #eid + 1) == eid .. '|' then
    local ttl = redis.call('PTTL', mark)
    if ttl < 0 or ttl > keep then
      redis.call('PEXPIRE', mark, keep)
    end
  end
  redis.call('PEXPIRE', event, keep)
end
`

// LoadDelivery implements relay.Admin.
func (s *Store) LoadDelivery(ctx context.Context, id string) (relay.Delivery, bool, error) {
	if s.isClosed() {
		return relay.Delivery{}, false, relay.ErrClosed
	}
	_, target, ok := relay.SplitDeliveryID(id)
	if !ok {
		return relay.Delivery{}, false, relay.DeliveryNotFound(id)
	}
	pipe := s.rdb.Pipeline()
	rec := pipe.Get(ctx, s.deliveryKey(id))
	held := pipe.ZScore(ctx, s.heldKey(target), id)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return relay.Delivery{}, false, s.fail("read delivery "+id, err)
	}
	raw, err := rec.Bytes()
	if err != nil {
		return relay.Delivery{}, false, relay.DeliveryNotFound(id)
	}
	d, err := decodeDelivery(raw)
	if err != nil {
		return relay.Delivery{}, false, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return d, held.Err() == nil, nil
}

// swapScript stores the new record of each swap whose stored record is
// still the old one (for a new delivery: there is none, and its event
// exists) and that no relay holds, and moves it between the queue and the
// indexes by the states of the two records. It returns how many it stored.
// KEYS: targets, indexes, then per swap its delivery, queue, held,
// attempts, event, the old state's index and the new state's index.
// ARGV: retention ms (0: none), then per swap the delivery id, the old
// record ("" for none), the new record, its due ms and its target.
var swapScript = redis.NewScript(luaStateAt + luaClose + `
local keep = tonumber(ARGV[1])
local n = 0
for i = 0, (#KEYS - 2) / 7 - 1 do
  local k, a = 2 + i * 7, 1 + i * 5
  local rec, queue, held, atts, event = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local id, old, new = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local cur = redis.call('GET', rec)
  local ok
  if old == '' then
    ok = not cur and redis.call('EXISTS', event) == 1
  else
    ok = cur == old
  end
  if ok and not redis.call('ZSCORE', held, id) then
    local was, now = '', stateAt(new)
    if old == '' then
      local t = ARGV[a + 5]
      local ts = redis.call('HGET', event, 'targets')
      if not ts or ts == '' then
        ts = t
      elseif not string.find('\0' .. ts .. '\0', '\0' .. t .. '\0', 1, true) then
        ts = ts .. '\0' .. t
      end
      redis.call('HSET', event, 'targets', ts)
      redis.call('SADD', KEYS[1], t)
    else
      was = stateAt(old)
      redis.call('ZREM', KEYS[k + 6], id)
    end
    redis.call('SET', rec, new)
    redis.call('ZADD', KEYS[k + 7], 0, id)
    if now == 'p' then
      redis.call('ZADD', queue, ARGV[a + 4], id)
      redis.call('PERSIST', atts)
      if was ~= 'p' then
        redis.call('HINCRBY', event, 'open', 1)
        redis.call('PERSIST', event)
      end
    else
      redis.call('ZREM', queue, id)
      redis.call('SADD', KEYS[2], KEYS[k + 7])
      if keep > 0 then
        redis.call('PEXPIRE', rec, keep)
        redis.call('PEXPIRE', atts, keep)
      end
      if was == 'p' then
        close(event, id, keep)
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
		cur[i] = pipe.Get(ctx, s.deliveryKey(sw.New.ID()))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, s.fail("read deliveries", err)
	}
	keys := []string{s.targetsKey(), s.indexesKey()}
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
			stored, err := decodeDelivery(old)
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
		was := relay.Pending // any index: a new delivery is in none
		if sw.Old != nil {
			was = sw.Old.State
		}
		keys = append(keys, s.deliveryKey(id), s.queueKey(d.Target), s.heldKey(d.Target), s.attemptsKey(id),
			s.eventKey(d.EventID), s.stateIndexKey(was, d.Target), s.stateIndexKey(d.State, d.Target))
		args = append(args, id, old, rec, ms(d.NextAttemptAt), d.Target)
	}
	if len(keys) == 2 {
		return 0, nil
	}
	n, err := swapScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, s.fail("swap deliveries", err)
	}
	return n, nil
}
