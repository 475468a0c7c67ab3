package redisstore

import (
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// dedupLayout is the key layout in which an event is its own dedup mark:
// no key "m:SOURCE\0KEY" is written. Every layout finds an earlier event
// of the same source and dedup key through the search index, which holds
// every event under its job id, its look id or its dedup key
// (searchMembers). A mark costs Redis about 240 bytes per event (the key,
// its value and its expiry); the scan costs a range read and, for each
// event of the same job received within the ttl, a read of its record.
//
// Relays of earlier versions check marks alone, so they would not see the
// events of a relay that writes none: a prefix moves to this layout only
// when the operator records it (README), once every relay runs a version
// that scans.
const dedupLayout = 4

// luaDedupScan is dedupScan(x, prefix, oldest, want, epfx, dpfx): the id
// of the newest event among the search index x's members under prefix
// whose id is not older than oldest (the first ten characters of an id,
// its time) and whose source and mark key, NUL-joined, are want; nil if
// there is none. epfx and dpfx name an event's key and deliveries' hash
// without the id. Of each event it reads the start of the record
// (recordHead: two folded chunks, or 256 bytes of its key), and the whole
// record only when the head is longer: a job's earlier events cost a read
// each, whatever their payloads. The members are walked newest first, so the walk ends
// at the first one older than the ttl. Members of ids other than event
// ids ("~", tests and imports) carry no time and are always looked at.
// An entry whose event expired is skipped: only events older than the
// retention expire, and the retention is at least the ttl.
const luaDedupScan = `local function recordHead(dels, event)
  local h = redis.call('HMGET', dels, 'r', 'r1', 'r2')
  local head
  if h[1] then
    head = (h[2] or '') .. (h[3] or '')
  else
    head = redis.call('GETRANGE', event, 0, 255)
  end
  local source, task, status, mark = eventHead(head)
  if source then
    return source, task, status, mark
  end
  local rec = eventRecord(dels, event)
  if rec then
    return eventHead(rec)
  end
  return nil
end
local function dedupScan(x, prefix, oldest, want, epfx, dpfx)
  local lo = '[' .. prefix
  local hi = '(' .. string.sub(prefix, 1, #prefix - 1) .. '\1'
  while true do
    local page = redis.call('ZREVRANGEBYLEX', x, hi, lo, 'LIMIT', 0, 16)
    for _, member in ipairs(page) do
      local m = string.sub(member, #prefix + 1)
      if string.sub(m, 1, 1) ~= '~' and string.sub(m, 1, 10) < oldest then
        return nil
      end
      local eid = eidOf(m)
      local source, _, _, mark = recordHead(dpfx .. eid, epfx .. eid)
      if source and source .. '\0' .. mark == want then
        return eid
      end
    end
    if #page < 16 then
      return nil
    end
    hi = '(' .. page[#page]
  end
end
`

// dedupArgs returns the ingest script's arguments for the dedup scan of
// ev with ttl: the search index prefix of ev's events, the time part of
// the oldest id within the ttl, and ev's source and mark key.
func dedupArgs(ev *relay.Event, ttl time.Duration) (prefix, oldest, want string) {
	ttl = max(ttl, time.Millisecond)
	mark := relay.MarkKey(ev.DedupKey)
	switch {
	case !dedupFromIDs(ev):
		prefix = searchPrefix('k', mark)
	case strings.Count(ev.DedupKey, ":") == 2:
		prefix = searchPrefix('j', ev.JobID)
	default:
		prefix = searchPrefix('l', ev.LookID)
	}
	// An event at most ttl-1ms older is within the ttl (markOwner).
	oldest = "0000000000"
	if t := ev.ReceivedAt.Add(-ttl + time.Millisecond); t.UnixMilli() > 0 {
		oldest = memberOf(relay.NewEventID(t))[:10]
	}
	return prefix, oldest, ev.Source + "\x00" + mark
}
