package redisstore

import (
	"strconv"
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

// luaDedupScan is dedupScan(x, prefix, oldest, want, epfx, dpfx, px): the
// id of the newest event among the search index x's members under prefix
// whose id is not older than oldest (the first ten characters of an id,
// its time) and whose source and mark key, NUL-joined, are want; nil if
// there is none. epfx and dpfx name an event's key and deliveries' hash
// without the id. Of each event it reads the start of the record
// (recordHead: two folded chunks, or 256 bytes of its key), and the whole
// record only when the head is longer.
//
// The members are walked newest first, so the walk ends at the first one
// older than the ttl, and it looks at scanDepth of them at most: a job that
// sends many webhooks within the ttl costs each ingest scanDepth reads, not
// one per earlier event. The events further down have marks instead: when
// the walk saw scanDepth events, the last of them, which the event about to
// be written pushes past the depth, gets its mark (for px ms, as the marks
// of earlier layouts), and a mark is checked before the scan. Members of
// ids other than event ids ("~", tests and imports) carry no time: they are
// always looked at and do not count. An entry whose event expired is
// skipped: only events older than the retention expire, and the retention
// is at least the ttl.
var luaDedupScan = `local function recordHead(dels, event)
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
local ulidDigits = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
-- ulidMs is the receive time, in ms, of an event member.
local function ulidMs(m)
  local t = 0
  for i = 1, 10 do
    t = t * 32 + string.find(ulidDigits, string.sub(m, i, i), 1, true) - 1
  end
  return t
end
local function dedupScan(x, prefix, oldest, want, epfx, dpfx, px)
  local lo = '[' .. prefix
  local hi = '(' .. string.sub(prefix, 1, #prefix - 1) .. '\1'
  local seen = 0
  while true do
    local page = redis.call('ZREVRANGEBYLEX', x, hi, lo, 'LIMIT', 0, ` + scanDepthLua + `)
    for _, member in ipairs(page) do
      local m = string.sub(member, #prefix + 1)
      local timed = string.sub(m, 1, 1) ~= '~'
      if timed and string.sub(m, 1, 10) < oldest then
        return nil
      end
      local eid = eidOf(m)
      local source, _, _, mark = recordHead(dpfx .. eid, epfx .. eid)
      if source and source .. '\0' .. mark == want then
        return eid
      end
      if timed then
        seen = seen + 1
        if seen == ` + scanDepthLua + ` then
          if source then
            redis.call('SET', string.sub(dpfx, 1, #dpfx - 2) .. 'm:' .. source .. '\0' .. mark,
              eid .. '|' .. ulidMs(m), 'PX', px)
          end
          return nil
        end
      end
    end
    if #page < ` + scanDepthLua + ` then
      return nil
    end
    hi = '(' .. page[#page]
  end
end
`

// scanDepth is how many earlier events of its job an ingest's dedup scan
// reads at most (luaDedupScan).
const scanDepth = 16

var scanDepthLua = strconv.Itoa(scanDepth)

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
