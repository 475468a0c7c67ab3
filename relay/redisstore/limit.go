package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// limitScript is a GCRA token bucket on Redis's own clock, so that relays
// with skewed clocks share one pace. The key holds the theoretical arrival
// time (ms) of the next token; it expires once the bucket is full again.
// KEYS: bucket. ARGV: emission interval ms, burst.
// Returns 0 when a token was taken, else the ms to wait for one.
var limitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - burst * interval
if wait > 0 then
  return math.ceil(wait)
end
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return 0
`)

// Limit takes one token of target's rate limit, shared by every relay on
// this Redis, or says how long to wait for one. It is the dispatcher's
// shared-limit hook.
func (s *Store) Limit(ctx context.Context, target string, rps float64, burst int) (time.Duration, error) {
	if rps <= 0 {
		return 0, nil
	}
	wait, err := limitScript.Run(ctx, s.rdb, []string{s.pfx + "rate:" + target},
		1000/rps, max(burst, 1)).Int64()
	if err != nil {
		return 0, s.fail("rate limit of "+target, err)
	}
	return time.Duration(wait) * time.Millisecond, nil
}
