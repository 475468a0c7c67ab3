package redisstore

import (
	"context"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Limit takes one token of target's rate limit, shared by every relay on
// this Redis (GCRA, by github.com/go-redis/redis_rate), or says how long
// to wait for one. It is the dispatcher's shared-limit hook.
func (s *Store) Limit(ctx context.Context, target string, rps float64, burst int) (time.Duration, error) {
	if rps <= 0 {
		return 0, nil
	}
	s.limOnce.Do(func() { s.lim = redis_rate.NewLimiter(s.rdb) })
	res, err := s.lim.Allow(ctx, s.pfx+"rate:"+target, redis_rate.Limit{
		Rate:   1,
		Period: time.Duration(float64(time.Second) / rps),
		Burst:  max(burst, 1),
	})
	if err != nil {
		return 0, s.fail("rate limit of "+target, err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}
