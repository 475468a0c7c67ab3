package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// ingestScript checks for an earlier event of the same source and dedup
// key within the ttl in force (ARGV[3]) and, if there is none, writes the
// event, its deliveries, their queue entries and the event's index
// entries, all or nothing.
//
// The earlier event is found by its dedup mark, if it has one, or through
// the search index (dedupScan): an event is its own mark for as long as it
// is kept (store.retention is at least dedup.ttl), so a dedup.ttl raised
// by a reload covers the events already kept. Before dedupLayout a mark is
// written too, for the relays of earlier versions: a key kept as long as
// the retention when that is longer than the ttl, never longer than its
// event (see close).
//
// The SADD of the task and status writes nothing, and so costs no
// append-only file write, but for a new one; the targets are added only
// the first time this process sees them.
// KEYS: mark, event, deliveries, the task and status's pending and final
// event indexes, the list of tasks and statuses, targets, the search
// index, then per target its queue.
// ARGV: event id, received ms, ttl ms, retention ms (0: none), record
// ("" when it is folded into the deliveries' hash, fold.go), the number
// of search members, task and status (combo), the number of fields and
// values of the deliveries' hash, then the dedup scan's index prefix, the
// first ten characters of the oldest event id within the ttl, the source
// and mark key NUL-joined, and "1" to write a mark; then the search
// members, the hash's fields and values (the folded record's chunks among
// them), then the targets to add to the list. The store builds the hash's
// fields, so that the script only passes them on.
var ingestScript = redis.NewScript(luaMembers + luaEventHead + luaFold + luaDedupScan + `
local m = memberOf(ARGV[1])
local keep = tonumber(ARGV[4])
local n = #KEYS - 8
local k = tonumber(ARGV[6])
local hs = 13 + k
local after = hs + tonumber(ARGV[8])
-- The keys of an event id, as KEYS[2] and KEYS[3] name them.
local epfx = string.sub(KEYS[2], 1, #KEYS[2] - #ARGV[1])
local dpfx = string.sub(KEYS[3], 1, #KEYS[3] - #ARGV[1])
-- markOwner is the event a mark names, if within the ttl.
local function markOwner(mark)
  local sep = string.find(mark, '|', 1, true)
  if sep and tonumber(ARGV[2]) - tonumber(string.sub(mark, sep + 1)) < tonumber(ARGV[3]) then
    return string.sub(mark, 1, sep - 1)
  end
  return nil
end
-- A mark an earlier layout wrote, then the events themselves.
local mark = redis.call('GET', KEYS[1])
local first = mark and markOwner(mark) or nil
if not first then
  first = dedupScan(KEYS[8], ARGV[9], ARGV[10], ARGV[11], epfx, dpfx, math.max(tonumber(ARGV[3]), keep))
end
if first then
  -- The first event's trail counts its duplicates: "n" and "l" (the
  -- last one's ms) in its deliveries' hash.
  local dels = dpfx .. first
  if redis.call('EXISTS', dels) == 1 then
    redis.call('HINCRBY', dels, 'n', 1)
    redis.call('HSET', dels, 'l', ARGV[2])
  end
  return {1, first}
end
if ARGV[12] ~= '' then
  -- An event without deliveries is final at once: its mark goes with it.
  local px = math.max(tonumber(ARGV[3]), keep)
  if n == 0 and keep > 0 then
    px = keep
  end
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', px)
end
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[2], ARGV[5])
end
redis.call('HSET', KEYS[3], unpack(ARGV, hs, after - 1))
redis.call('SADD', KEYS[6], ARGV[7])
if k > 0 then
  local z = {'ZADD', KEYS[8]}
  for i = 1, k do
    z[#z + 1] = 0
    z[#z + 1] = ARGV[12 + i]
  end
  redis.call(unpack(z))
end
if n == 0 then
  redis.call('ZADD', KEYS[5], 0, m)
  if keep > 0 then
    redis.call('PEXPIRE', KEYS[2], keep)
    redis.call('PEXPIRE', KEYS[3], keep)
  end
  return {0, ARGV[1]}
end
redis.call('ZADD', KEYS[4], 0, m)
for i = 1, n do
  redis.call('ZADD', KEYS[8 + i], ARGV[2], m)
end
if ARGV[after] then
  redis.call('SADD', KEYS[7], unpack(ARGV, after))
end
return {0, ARGV[1]}
`)

// Ingest implements relay.Queue.
func (s *Store) Ingest(ctx context.Context, ev *relay.Event, ttl time.Duration) (relay.IngestResult, error) {
	if s.isClosed() {
		return relay.IngestResult{}, relay.ErrClosed
	}
	// On keys of layout 2, what relays of that layout read (fold.go).
	layout, err := s.layoutOf(ctx)
	if err != nil {
		return relay.IngestResult{}, err
	}
	fold := layout >= foldLayout
	version := byte(eventCompactVersion)
	if !fold {
		version = eventTrailVersion
	}
	rec, err := encodeEventAs(ev, version)
	if err != nil {
		return relay.IngestResult{}, err
	}
	keys := make([]string, 0, 8+len(ev.Targets))
	c := combo(ev.Task, ev.Status)
	keys = append(keys, s.markKey(ev.Source, ev.DedupKey), s.eventKey(ev.ID), s.dealsKey(ev.ID),
		s.eventIndexKey(true, c), s.eventIndexKey(false, c), s.eventIndexesKey(), s.targetsKey(), s.searchKey())
	members := searchMembers(ev)
	targets := strings.Join(ev.Targets, "\x00")
	drecs := make([][]byte, len(ev.Targets))
	for i, t := range ev.Targets {
		d := relay.NewDelivery(ev, t)
		var short bool
		if fold {
			drecs[i], short = encodeNewDelivery(&d)
		}
		if !short {
			if drecs[i], err = encodeDelivery(&d); err != nil {
				return relay.IngestResult{}, err
			}
		}
		keys = append(keys, s.queueKey(t))
	}
	fields := make([]any, 0, 6+2*len(ev.Targets)+2*foldChunksMax)
	fields = append(fields, "t", targets, "o", len(ev.Targets))
	for i, t := range ev.Targets {
		fields = append(fields, recField(t), drecs[i])
	}
	stored := any(rec)
	if fold && foldable(rec, targets, drecs) {
		fields, stored = appendChunks(fields, rec), ""
	}
	scan, oldest, want := dedupArgs(ev, ttl)
	writeMark := ""
	if layout < dedupLayout {
		writeMark = "1"
	}
	args := make([]any, 0, 12+len(members)+len(fields)+len(ev.Targets))
	args = append(args, ev.ID, ms(ev.ReceivedAt), max(ttl.Milliseconds(), 1), s.retention.Milliseconds(), stored, len(members), c, len(fields),
		scan, oldest, want, writeMark)
	args = append(append(args, members...), fields...)
	added := s.newTargets(ev.Targets)
	for _, t := range added {
		args = append(args, t)
	}
	res, err := ingestScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		s.mu.Lock()
		for _, t := range added {
			delete(s.knownTargets, t)
		}
		s.mu.Unlock()
		return relay.IngestResult{}, s.fail("ingest "+ev.ID, err)
	}
	if len(res) != 2 {
		return relay.IngestResult{}, fmt.Errorf("ingest %s: unexpected reply %v", ev.ID, res)
	}
	dup, _ := res[0].(int64)
	id, _ := res[1].(string)
	return relay.IngestResult{EventID: id, Duplicate: dup == 1}, nil
}

// newTargets returns the targets of ts that this process has not yet
// added to the list of targets, and counts them as added. Nothing removes
// a target from the list.
func (s *Store) newTargets(ts []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, t := range ts {
		if !s.knownTargets[t] {
			s.knownTargets[t] = true
			out = append(out, t)
		}
	}
	return out
}
