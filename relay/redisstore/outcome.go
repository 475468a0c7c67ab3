package redisstore

import (
	"context"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// completeScript records a batch of outcomes, each as one would alone, in
// one script: Redis's setup of a script run, and of each command a script
// calls, cost more than most commands themselves. An outcome is left out
// when this process no longer holds the delivery: its lease ran out, and
// another relay may hold it now or have recorded its own outcome already
// (outcomes are written late, see collect.go), which is the one to keep.
// A final outcome moves the delivery to its state's index and, once the
// event's last delivery is final, starts the retention of the event's
// keys. The commands on the sets and owners shared by the batch are one
// per key for all of its outcomes (no outcome of a batch reads them after
// another wrote them); a delivery's record, its attempts and its event's
// count of pending deliveries are read in one command and written in one.
// It returns how many outcomes it recorded.
// KEYS: per outcome its deliveries, queue, held, owners, event, final
// state's index, and its event's pending and final event indexes and mark
// (each the deliveries again when not known: then read from the record).
// ARGV: retention ms (0: none), owner, then per outcome the target, its
// event's member (memberOf), record, due ms and attempt ("" for none).
var completeScript = redis.NewScript(luaClose + luaBulk + `
local keep, owner = tonumber(ARGV[1]), ARGV[2]
local P = string.byte('p')
-- Lua makes and hashes every string it computes: the member comes from
-- the caller, the fields are made once per target, and the commands
-- gathered for the end are kept per key (seq tells their order).
local sets, seq = {}, {}
local function later(cmd, key, a, b)
  local per = sets[cmd]
  if not per then
    per = {}
    sets[cmd] = per
  end
  local l = per[key]
  if not l then
    l = {}
    per[key] = l
    seq[#seq + 1] = {cmd, key, l}
  end
  l[#l + 1] = a
  if b then
    l[#l + 1] = b
  end
end
-- Which outcomes this process still holds: one HMGET per owners hash.
local groups, gorder, mine = {}, {}, {}
for i = 0, #KEYS / 9 - 1 do
  local owners = KEYS[9 * i + 4]
  local g = groups[owners]
  if not g then
    g = {held = KEYS[9 * i + 3], at = {}, ms = {}}
    groups[owners] = g
    gorder[#gorder + 1] = owners
  end
  g.at[#g.at + 1] = i
  g.ms[#g.ms + 1] = ARGV[4 + 5 * i]
end
for _, owners in ipairs(gorder) do
  local g = groups[owners]
  local got = redis.call('HMGET', owners, unpack(g.ms))
  local ended, seen = {}, {}
  for j, i in ipairs(g.at) do
    local m = g.ms[j]
    -- A second outcome of a delivery in the batch finds it ended.
    if got[j] == owner and not seen[m] then
      seen[m] = true
      mine[i] = true
      ended[#ended + 1] = m
    end
  end
  bulk('ZREM', g.held, ended)
  bulk('HDEL', owners, ended)
end
local fieldsOf = {}
local function complete(k, dels, queue, event, final, target, m, rec, due, att)
  local fs = fieldsOf[target]
  if not fs then
    fs = {'d:' .. target, 'a:' .. target}
    fieldsOf[target] = fs
  end
  local f, h = fs[1], fs[2]
  local cur = redis.call('HMGET', dels, f, h, 'o', 'r')
  local was = cur[1]
  if not was then
    return 0
  end
  local hist
  local moved = #rec > ` + listpackValueLua + `
  if att ~= '' then
    -- A first attempt's history is the attempt: no string to make.
    hist = cur[2] and cur[2] .. att or att
    moved = moved or #hist > ` + listpackValueLua + `
  end
  -- The first final outcome of this delivery closes it on its event; the
  -- last one pending closes the event: its record is read before it may
  -- move to its key (unfold).
  local pending = string.byte(rec, 2) == P
  local open, erec
  if not pending and string.byte(was, 2) == P then
    open = (tonumber(cur[3]) or 0) - 1
    if open <= 0 and KEYS[k + 9] == dels then
      local n = tonumber(cur[4])
      if n then
        local cs = {}
        for i = 1, n do
          cs[i] = 'r' .. i
        end
        local parts = redis.call('HMGET', dels, unpack(cs))
        erec = true
        for i = 1, n do
          erec = erec and parts[i] ~= false
        end
        erec = erec and table.concat(parts)
      else
        erec = redis.call('GET', event)
      end
    end
  end
  if moved then
    unfold(dels, event)
  end
  if open and hist then
    redis.call('HSET', dels, f, rec, h, hist, 'o', open)
  elseif open then
    redis.call('HSET', dels, f, rec, 'o', open)
  elseif hist then
    redis.call('HSET', dels, f, rec, h, hist)
  else
    redis.call('HSET', dels, f, rec)
  end
  if pending then
    later('ZADD', queue, due, m)
    return 1
  end
  later('ZREM', queue, m)
  later('ZADD', final, 0, m)
  if open and open <= 0 then
    if KEYS[k + 9] == dels then
      closed(dels, event, eidOf(m), keep, erec, later, moved or not cur[4])
    else
      closeAt(dels, event, eidOf(m), keep, KEYS[k + 7], KEYS[k + 8], KEYS[k + 9], later, moved or not cur[4])
    end
  end
  return 1
end
local n = 0
for i = 0, #KEYS / 9 - 1 do
  if mine[i] then
    local k, a = 9 * i, 3 + 5 * i
    n = n + complete(k, KEYS[k + 1], KEYS[k + 2], KEYS[k + 5], KEYS[k + 6], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
  end
end
for _, c in ipairs(seq) do
  bulk(c[1], c[2], c[3])
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
	dels := s.dealsKey(d.EventID)
	// Unknown (not claimed here): the deliveries hash stands in for the
	// event's keys, and the script reads them from its record.
	ck := closeKeys{dels, dels, dels}
	if d.State != relay.Pending {
		s.mu.Lock()
		if c := s.closing[d.ID()]; c != nil {
			ck = *c
		}
		s.mu.Unlock()
	}
	return []string{dels, tk.queue, tk.held, tk.owner, s.eventKey(d.EventID), final, ck.pending, ck.final, ck.mark},
		[]any{tk.name, memberOf(d.EventID), rec, ms(d.NextAttemptAt), att}, nil
}

// closeKeys are the keys of an event that closing it (luaClose) touches:
// its task and status's pending and final event indexes and its mark.
type closeKeys struct{ pending, final, mark string }

// completeCall is the run of completeScript that records the outcomes of
// items.
func (s *Store) completeCall(items []pendingOutcome) scriptCall {
	c := scriptCall{keys: make([]string, 0, 9*len(items)), args: make([]any, 0, 2+5*len(items))}
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

// releaseScript puts held deliveries back in line, each unless its lease
// ran out and another relay took it meanwhile; one run for all of them
// (a script run costs Redis more than these commands).
// KEYS: per delivery its queue, held and owners. ARGV: owner, then per
// delivery its event's member (memberOf) and due ms.
var releaseScript = redis.NewScript(`
local n = 0
for i = 0, #KEYS / 3 - 1 do
  local k, a = 3 * i, 2 + 2 * i
  local m = ARGV[a]
  local owner = redis.call('HGET', KEYS[k + 3], m)
  if not owner or owner == ARGV[1] then
    if redis.call('ZREM', KEYS[k + 2], m) == 1 then
      redis.call('ZADD', KEYS[k + 1], ARGV[a + 1], m)
    end
    redis.call('HDEL', KEYS[k + 3], m)
    n = n + 1
  end
end
return n
`)

// Release implements relay.Queue.
func (s *Store) Release(ctx context.Context, at time.Time, ds ...relay.Delivery) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	return s.release(ctx, ds, func(relay.Delivery) time.Time { return at })
}

func (s *Store) release(ctx context.Context, ds []relay.Delivery, at func(relay.Delivery) time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	c := scriptCall{keys: make([]string, 0, 3*len(ds)), args: make([]any, 0, 1+2*len(ds))}
	c.args = append(c.args, s.owner)
	for _, d := range ds {
		tk := s.keysOf(d.Target)
		c.keys = append(c.keys, tk.queue, tk.held, tk.owner)
		c.args = append(c.args, memberOf(d.EventID), ms(at(d)))
	}
	if err := s.evalAll(ctx, releaseScript, []scriptCall{c}); err != nil {
		return s.fail("release deliveries", err)
	}
	s.mu.Lock()
	for _, d := range ds {
		delete(s.held, d.ID())
		delete(s.closing, d.ID())
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
