package redisstore

import (
	"context"
	"math"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// renewScript extends the leases of the given deliveries that this process
// still owns; a lease already taken over is left alone. One call renews
// every claim of the process, whatever its target.
// KEYS: per target its held set and owners. ARGV: lease end ms, owner,
// then per target how many ids follow, and the event ids.
var renewScript = redis.NewScript(luaMembers + `
local n, a = 0, 3
for k = 1, #KEYS, 2 do
  local count = tonumber(ARGV[a])
  for i = a + 1, a + count do
    local m = memberOf(ARGV[i])
    if redis.call('HGET', KEYS[k + 1], m) == ARGV[2] then
      n = n + redis.call('ZADD', KEYS[k], 'XX', 'GT', 'CH', ARGV[1], m)
    end
  end
  a = a + count + 1
end
return n
`)

// renewLoop keeps the leases of this process's claims from running out
// while their attempts go on, so that the lease can be short (a dead
// relay's claims come back quickly) whatever the targets' timeouts.
func (s *Store) renewLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Renew)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.Renew(context.Background()); err != nil {
			s.log.Warn("renew claim leases", "err", err)
		}
	}
}

// Renew extends the leases of this process's claims now, in one command;
// the store does it every Options.Renew by itself.
func (s *Store) Renew(ctx context.Context) error {
	s.mu.Lock()
	byTarget := make(map[string][]any)
	for _, d := range s.held {
		byTarget[d.Target] = append(byTarget[d.Target], d.EventID)
	}
	s.mu.Unlock()
	if len(byTarget) == 0 {
		return nil
	}
	if s.opts.Renew > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.Renew)
		defer cancel()
	}
	keys := make([]string, 0, 2*len(byTarget))
	args := []any{ms(time.Now().Add(s.lease)), s.owner}
	for target, ids := range byTarget {
		keys = append(keys, s.heldKey(target), s.ownerKey(target))
		args = append(append(args, len(ids)), ids...)
	}
	return renewScript.Run(ctx, s.rdb, keys, args...).Err()
}

// pruneIndexScript walks an index from after a cursor up to a cutoff and
// removes the members whose record key expired. It returns the last member
// looked at ("" when the walk is done) and how many it removed. A task and
// status whose two event indexes the walk leaves empty leaves the list of
// them too, in the same atomic step, so that the list does not keep every
// status ever seen; an ingest that adds to it again puts it back in its
// own atomic step.
// KEYS: index, the list of tasks and statuses, the index's pending twin.
// ARGV: cursor ("" for the start), cutoff, record key prefix, max members
// to look at, the task and status of an event index ("" for another).
var pruneIndexScript = redis.NewScript(luaMembers + `
local from = '-'
if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
local ids = redis.call('ZRANGEBYLEX', KEYS[1], from, '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local gone = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[3] .. eidOf(id)) == 0 then
    redis.call('ZREM', KEYS[1], id)
    gone = gone + 1
  end
end
if #ids < tonumber(ARGV[4]) then
  if ARGV[5] ~= '' and redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('SREM', KEYS[2], ARGV[5])
  end
  return {'', gone}
end
return {ids[#ids], gone}
`)

// pruneSearchScript walks the search index on from the cursor kept in
// its key and removes the members of events received before the cutoff
// whose record key expired. Its members sort by value, not time, so the
// walk covers the whole index, a chunk per call and a budget per Prune
// (searchBudget). It saves the last member looked at in the cursor key,
// or deletes the key at the end of the index so that the next walk starts
// over, and returns how many members it looked at, how many it removed and
// 1 at the end (else 0).
// KEYS: the search index, the cursor. ARGV: cutoff (an event member),
// record key prefix, max members to look at.
var pruneSearchScript = redis.NewScript(luaMembers + `
local from = '-'
local cursor = redis.call('GET', KEYS[2])
if cursor then from = '(' .. cursor end
local ms = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
local gone = 0
for _, x in ipairs(ms) do
  local m = string.match(x, '%z([^%z]*)$')
  if m and m < ARGV[1] and redis.call('EXISTS', ARGV[2] .. eidOf(m)) == 0 then
    redis.call('ZREM', KEYS[1], x)
    gone = gone + 1
  end
end
if #ms < tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[2])
  return {#ms, gone, 1}
end
redis.call('SET', KEYS[2], ms[#ms])
return {#ms, gone, 0}
`)

// pruneChunk bounds the members one prune script looks at, so that no
// script blocks Redis for long.
const pruneChunk = 500

func (s *Store) pruneLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if _, err := s.Prune(context.Background()); err != nil && !s.isClosed() {
			s.log.Warn("prune Redis indexes", "err", err)
		}
	}
}

// Prune removes from the indexes the entries whose keys expired after the
// retention, and reports how many it removed. Only entries of events
// received more than the retention ago can have expired, so the walk stops
// there; the search index, not in time order, is walked a budget of
// members per call (pruneSearch). One relay at a time prunes: the others
// find the lock taken.
func (s *Store) Prune(ctx context.Context) (int, error) {
	if s.retention <= 0 {
		return 0, nil
	}
	ok, err := s.rdb.SetNX(ctx, s.pruneLockKey(), s.owner, max(s.opts.PruneInterval/2, time.Second)).Result()
	if err != nil || !ok {
		return 0, err
	}
	combos, err := s.rdb.SMembers(ctx, s.eventIndexesKey()).Result()
	if err != nil {
		return 0, s.fail("list indexes", err)
	}
	// Per index its pending twin and its task and status, for the list.
	type index struct{ key, twin, combo string }
	var keys []index
	for _, c := range combos {
		keys = append(keys, index{s.eventIndexKey(false, c), s.eventIndexKey(true, c), c})
	}
	targets, err := s.rdb.SMembers(ctx, s.targetsKey()).Result()
	if err != nil {
		return 0, s.fail("list targets", err)
	}
	for _, t := range targets {
		for _, st := range []relay.State{relay.Delivered, relay.Dead} {
			keys = append(keys, index{s.stateIndexKey(st, t), s.stateIndexKey(st, t), ""})
		}
	}
	cutoff := memberOf(relay.NewEventID(time.Now().Add(-s.retention)))
	total := 0
	// Every index's members are event ids, gone once the event's
	// deliveries hash expired.
	record := s.pfx + "d:"
	for _, ix := range keys {
		key := ix.key
		cursor := ""
		for {
			select {
			case <-s.stop:
				return total, nil
			default:
			}
			res, err := pruneIndexScript.Run(ctx, s.rdb, []string{key, s.eventIndexesKey(), ix.twin}, cursor, cutoff, record, pruneChunk, ix.combo).Slice()
			if err != nil {
				return total, s.fail("prune index "+key, err)
			}
			n, _ := res[1].(int64)
			total += int(n)
			if cursor, _ = res[0].(string); cursor == "" {
				break
			}
		}
	}
	n, err := s.pruneSearch(ctx, cutoff, record)
	return total + n, err
}

// pruneSearch removes the search index's members of events whose keys
// expired, walking on from where the last Prune of any relay stopped for
// at most searchBudget members, a chunk per script. The cursor is saved by
// each script, so a walk cut short (Close, an error, a relay gone) loses
// nothing. Relays of earlier versions walk the whole index from its start
// with a cursor of their own, and leave this one alone: while both run, the
// index is only walked more often.
func (s *Store) pruneSearch(ctx context.Context, cutoff, record string) (int, error) {
	budget := s.searchBudget
	if budget <= 0 {
		card, err := s.rdb.ZCard(ctx, s.searchKey()).Result()
		if err != nil {
			return 0, s.fail("count the search index", err)
		}
		budget = searchBudget(card, s.opts.PruneInterval, s.retention)
	}
	keys := []string{s.searchKey(), s.searchCursorKey()}
	total := 0
	for looked := 0; looked < budget; {
		select {
		case <-s.stop:
			return total, nil
		default:
		}
		res, err := pruneSearchScript.Run(ctx, s.rdb, keys, cutoff, record, min(pruneChunk, budget-looked)).Slice()
		if err != nil {
			return total, s.fail("prune the search index", err)
		}
		n, _ := res[0].(int64)
		gone, _ := res[1].(int64)
		end, _ := res[2].(int64)
		looked += int(n)
		total += int(gone)
		if end == 1 {
			break
		}
	}
	return total, nil
}

// searchBudget is how many members of the search index, of card, one
// Prune looks at: enough that a walk of the whole index takes at most half
// the retention, so that a member of an expired event goes at most about
// 1.5 times the retention after its event was received, and at most the
// whole index (the walk stops at its end), however short the retention.
// Each Prune looks at pruneChunk at least.
func searchBudget(card int64, interval, retention time.Duration) int {
	if card <= pruneChunk {
		return pruneChunk
	}
	if retention/2 <= 0 {
		return int(card)
	}
	// In floats: card times an interval in ns can overflow an int64.
	n := math.Ceil(float64(card) * float64(interval) / float64(retention/2))
	if n >= float64(card) {
		return int(card)
	}
	return max(pruneChunk, int(n))
}
