package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// reserveScript is a GCRA token bucket on Redis's own clock, so that relays
// with skewed clocks share one pace. The key holds the theoretical arrival
// time (ms) of the next token; it expires once the bucket is full again.
// A call always reserves the next token and returns how long until it may
// be used: a caller that asked again after waiting would lose a round trip
// per token and fall behind the limit (170/s for 200/s, measured).
// KEYS: bucket. ARGV: emission interval ms, burst.
// Returns the ms to wait before using the token (0: now).
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
local wait = next_tat - now - burst * interval
if wait > 0 then
  return math.ceil(wait)
end
return 0
`)

// Reserve reserves one token of target's rate limit, shared by every relay on
// this Redis, and returns how long to wait before using it. It is the
// dispatcher's shared-limit hook.
func (s *Store) Reserve(ctx context.Context, target string, rps float64, burst int) (time.Duration, error) {
	if rps <= 0 {
		return 0, nil
	}
	wait, err := reserveScript.Run(ctx, s.rdb, []string{s.pfx + "rate:" + target},
		1000/rps, max(burst, 1)).Int64()
	if err != nil {
		return 0, s.fail("rate limit of "+target, err)
	}
	return time.Duration(wait) * time.Millisecond, nil
}
