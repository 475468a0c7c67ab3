package redisstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// foldLayout is the key layout in which an event's record may be kept in
// its deliveries' hash instead of a key of its own ("folded"): in chunks
// "r1".."rN" of at most foldChunk bytes, "r" their count. A key costs
// Redis about 100 bytes besides its value, and the hash stays a listpack
// (compact, no per-field allocations) as long as every value is at most
// hash-max-listpack-value, 64 by default (listpackValueMax); a listpack
// entry of up to 63 bytes has a one-byte length, one of 64 a two-byte
// one. A record of more than foldChunksMax chunks, or an event whose other
// fields are longer, keeps the key "e:EVENT". Before a longer value is
// written into a hash that holds a folded record (an attempt history that
// grew, a long error), the record moves to its key (unfold), so that the
// hash turning into a hash table does not take the chunks with it.
//
// Relays of this version read both forms, and fold only on a prefix in
// foldLayout (CheckLayout writes it on a new prefix): a relay of layout 2
// would not find a folded record. The records only layout 3 has
// (eventCompactVersion, deliveryNewVersion) are written there alone too.
const (
	foldLayout       = 3
	foldChunk        = 63
	foldChunksMax    = 16
	listpackValueMax = 64
)

// listpackValueLua is listpackValueMax, for the scripts.
var listpackValueLua = strconv.Itoa(listpackValueMax)

// luaBulk is bulk(command, key, args): the command on key with args, in
// as few calls as Lua's stack allows (an even number of args each, for
// pairs); none for no args.
const luaBulk = `local function bulk(cmd, key, args)
  for i = 1, #args, 1000 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args)))
  end
end
`

// chunkFields are the fields of a folded record's chunks.
var chunkFields = func() []string {
	out := make([]string, foldChunksMax)
	for i := range out {
		out[i] = "r" + strconv.Itoa(i+1)
	}
	return out
}()

// appendChunks appends to fields the fields and values of rec folded: its
// chunks, then their count.
func appendChunks(fields []any, rec []byte) []any {
	n := 0
	for ; len(rec) > 0; n++ {
		c := rec[:min(len(rec), foldChunk)]
		fields = append(fields, chunkFields[n], c)
		rec = rec[len(c):]
	}
	return append(fields, "r", n)
}

// luaFold are, for the scripts, eventRecord(dels, event), the record of
// an event folded or not (false if gone), and unfold(dels, event).
var luaFold = `local function recordFields(dels)
  local n = tonumber(redis.call('HGET', dels, 'r'))
  if not n then
    return nil
  end
  local f = {}
  for i = 1, n do
    f[i] = 'r' .. i
  end
  return f
end
local function eventRecord(dels, event)
  local f = recordFields(dels)
  if not f then
    return redis.call('GET', event)
  end
  local parts = redis.call('HMGET', dels, unpack(f))
  for i = 1, #f do
    if not parts[i] then
      return false
    end
  end
  return table.concat(parts)
end
local function unfold(dels, event)
  local f = recordFields(dels)
  if not f then
    return
  end
  redis.call('SET', event, table.concat(redis.call('HMGET', dels, unpack(f))))
  local ttl = redis.call('PTTL', dels)
  if ttl > 0 then
    redis.call('PEXPIRE', event, ttl)
  end
  f[#f + 1] = 'r'
  redis.call('HDEL', dels, unpack(f))
end
-- unfoldFor unfolds the record before v, if longer than a listpack
-- value may be, goes into the hash.
local function unfoldFor(dels, event, v)
  if #v > ` + listpackValueLua + ` then
    unfold(dels, event)
  end
end
`

// foldedRecord is the record of a folded event in fields, its deliveries'
// hash; false if it is not folded or a chunk is missing.
func foldedRecord(fields map[string]string) ([]byte, bool) {
	n, err := strconv.Atoi(fields["r"])
	if err != nil || n <= 0 {
		return nil, false
	}
	var rec []byte
	for i := 1; i <= n; i++ {
		c, ok := fields["r"+strconv.Itoa(i)]
		if !ok {
			return nil, false
		}
		rec = append(rec, c...)
	}
	return rec, true
}

// layoutOf returns the key layout of this store's prefix (2, foldLayout
// or dedupLayout; none recorded, as in tests, counts as the newest): read
// once, the first time it is asked. CheckLayout refuses the others.
func (s *Store) layoutOf(ctx context.Context) (int, error) {
	if v := s.layout.Load(); v != 0 {
		return int(v), nil
	}
	v, err := s.rdb.Get(ctx, s.pfx+"layout").Int()
	switch {
	case errors.Is(err, redis.Nil):
		v = dedupLayout
	case err != nil:
		return 0, s.fail("read the key layout", err)
	}
	s.layout.Store(int32(v))
	return v, nil
}

// foldable reports whether an event of record rec, whose deliveries'
// hash holds targets (NUL-joined) and the delivery records drecs, can
// keep its record in that hash.
func foldable(rec []byte, targets string, drecs [][]byte) bool {
	// Each target adds two fields (its record and attempts) to the hash,
	// which stays a listpack up to 128 (hash-max-listpack-entries).
	if len(rec) > foldChunk*foldChunksMax || len(targets) > listpackValueMax || len(drecs) > 32 {
		return false
	}
	for _, d := range drecs {
		if len(d) > listpackValueMax {
			return false
		}
	}
	return true
}
