package relay

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// class is what an attempt's answer means for the delivery and the breaker
// (docs/http.md).
type class int

const (
	delivered class = iota // 2xx
	retryable              // network error, timeout, 408, 425, 429, 5xx: the target is failing
	permanent              // 3xx, any other 4xx: the target is up and said no
)

func classify(status int, err error) class {
	switch {
	case err != nil:
		return retryable
	case status >= 200 && status < 300:
		return delivered
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500:
		return retryable
	}
	return permanent
}

// backoff returns the delay before the attempt that follows attempt n (1 for
// the first) of a budget: initial × multiplier^(n-1), capped at max_interval,
// scaled by a random factor in [1-jitter, 1+jitter]. retryAfter, when
// positive, is what a 429 or 503 asked for; the delay is then at least
// min(retryAfter, max_interval).
func backoff(p RetryPolicy, n int, retryAfter time.Duration, rnd func() float64) time.Duration {
	d := float64(p.InitialInterval) * math.Pow(p.Multiplier, float64(n-1))
	if max := float64(p.MaxInterval); d > max || math.IsInf(d, 0) || math.IsNaN(d) {
		d = max
	}
	if p.Jitter > 0 {
		d *= 1 - p.Jitter + 2*p.Jitter*rnd()
	}
	delay := time.Duration(d)
	if retryAfter > 0 {
		delay = max(delay, min(retryAfter, p.MaxInterval))
	}
	return delay
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case s < 0:
			return 0
		case s > math.MaxInt64/int64(time.Second):
			return math.MaxInt64 // the caller caps it at max_interval
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func defaultRand() float64 { return rand.Float64() }
