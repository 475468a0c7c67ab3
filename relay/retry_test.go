package relay

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name   string
		status int
		err    error
		want   class
	}{
		{"network error", 0, errors.New("connection refused"), retryable},
		{"timeout", 0, errors.New("timeout after 10s"), retryable},
		{"error wins over a status", 200, errors.New("body cut off"), retryable},
		{"200", 200, nil, delivered},
		{"201", 201, nil, delivered},
		{"202", 202, nil, delivered},
		{"204", 204, nil, delivered},
		{"299", 299, nil, delivered},
		{"301 (redirects are never followed)", 301, nil, permanent},
		{"302", 302, nil, permanent},
		{"304", 304, nil, permanent},
		{"307", 307, nil, permanent},
		{"400", 400, nil, permanent},
		{"401", 401, nil, permanent},
		{"403", 403, nil, permanent},
		{"404", 404, nil, permanent},
		{"409", 409, nil, permanent},
		{"410", 410, nil, permanent},
		{"413", 413, nil, permanent},
		{"422", 422, nil, permanent},
		{"499", 499, nil, permanent},
		{"408 Request Timeout", 408, nil, retryable},
		{"425 Too Early", 425, nil, retryable},
		{"429 Too Many Requests", 429, nil, retryable},
		{"500", 500, nil, retryable},
		{"501", 501, nil, retryable},
		{"502", 502, nil, retryable},
		{"503", 503, nil, retryable},
		{"504", 504, nil, retryable},
		{"599", 599, nil, retryable},
	}
	names := map[class]string{delivered: "delivered", retryable: "retryable", permanent: "permanent"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.status, tc.err); got != tc.want {
				t.Errorf("classify(%d, %v) = %s, want %s", tc.status, tc.err, names[got], names[tc.want])
			}
		})
	}
}

func retryPolicy(initial, maxInterval time.Duration, multiplier, jitter float64) RetryPolicy {
	return RetryPolicy{
		MaxAttempts:     12,
		InitialInterval: initial,
		MaxInterval:     maxInterval,
		Multiplier:      multiplier,
		Jitter:          jitter,
		MaxAge:          24 * time.Hour,
	}
}

func fixedRand(v float64) func() float64 { return func() float64 { return v } }

func TestBackoff(t *testing.T) {
	exact := retryPolicy(time.Second, 10*time.Minute, 2, 0)
	cases := []struct {
		name       string
		p          RetryPolicy
		n          int
		retryAfter time.Duration
		rnd        float64
		want       time.Duration
	}{
		{"after attempt 1: initial", exact, 1, 0, 0.5, time.Second},
		{"after attempt 2: initial × 2", exact, 2, 0, 0.5, 2 * time.Second},
		{"after attempt 3: initial × 4", exact, 3, 0, 0.5, 4 * time.Second},
		{"after attempt 10: initial × 512", exact, 10, 0, 0.5, 512 * time.Second},
		{"after attempt 11: capped at max_interval", exact, 11, 0, 0.5, 10 * time.Minute},
		{"huge attempt number: capped, no overflow", exact, 5000, 0, 0.5, 10 * time.Minute},
		{"multiplier 1: constant", retryPolicy(250*time.Millisecond, time.Minute, 1, 0), 7, 0, 0.5, 250 * time.Millisecond},
		{"multiplier 1.5", retryPolicy(time.Second, time.Minute, 1.5, 0), 3, 0, 0.5, 2250 * time.Millisecond},
		{"jitter 0.2, lowest draw", retryPolicy(time.Second, time.Minute, 2, 0.2), 2, 0, 0, 1600 * time.Millisecond},
		{"jitter 0.2, middle draw", retryPolicy(time.Second, time.Minute, 2, 0.2), 2, 0, 0.5, 2 * time.Second},
		{"jitter 0.2, highest draw", retryPolicy(time.Second, time.Minute, 2, 0.2), 2, 0, 1, 2400 * time.Millisecond},
		{"jitter applies after the cap", retryPolicy(time.Second, 4*time.Second, 2, 0.5), 9, 0, 0, 2 * time.Second},
		{"Retry-After longer than the backoff wins", exact, 1, 30 * time.Second, 0.5, 30 * time.Second},
		{"Retry-After shorter than the backoff loses", exact, 4, 3 * time.Second, 0.5, 8 * time.Second},
		{"Retry-After capped at max_interval", exact, 1, time.Hour, 0.5, 10 * time.Minute},
		{"Retry-After over jittered-low backoff", retryPolicy(time.Second, time.Minute, 2, 0.5), 1, 800 * time.Millisecond, 0, 800 * time.Millisecond},
		{"zero Retry-After ignored", exact, 1, 0, 0.5, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := backoff(tc.p, tc.n, tc.retryAfter, fixedRand(tc.rnd))
			if got != tc.want {
				t.Errorf("backoff(initial %s, max %s, multiplier %v, jitter %v; attempt %d, Retry-After %s, rand %v) = %s, want %s",
					tc.p.InitialInterval, tc.p.MaxInterval, tc.p.Multiplier, tc.p.Jitter, tc.n, tc.retryAfter, tc.rnd, got, tc.want)
			}
		})
	}

	t.Run("jitter stays within [1-j, 1+j]", func(t *testing.T) {
		p := retryPolicy(time.Second, time.Minute, 2, 0.2)
		for i := range 1000 {
			got := backoff(p, 3, 0, defaultRand)
			if got < 3200*time.Millisecond || got > 4800*time.Millisecond {
				t.Fatalf("draw %d: backoff with jitter 0.2 around 4s = %s, want within [3.2s, 4.8s]", i, got)
			}
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	cases := []struct {
		name, value string
		want        time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "5", 5 * time.Second},
		{"zero", "0", 0},
		{"large but sane", "86400", 24 * time.Hour},
		{"negative", "-3", 0},
		{"fraction", "1.5", 0},
		{"garbage", "soon", 0},
		{"HTTP date in the future", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"HTTP date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"HTTP date now", now.Format(http.TimeFormat), 0},
		{"RFC 850 date", now.Add(time.Hour).Format("Monday, 02-Jan-06 15:04:05 GMT"), time.Hour},
		{"ANSI C date", now.Add(2 * time.Minute).Format(time.ANSIC), 2 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.value, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.value, got, tc.want)
			}
		})
	}
}

// A Retry-After in seconds that does not fit a time.Duration must saturate
// (and then be capped at max_interval by backoff), not wrap around.
func TestParseRetryAfterHugeSecondsOverflow(t *testing.T) {
	now := time.Now()
	p := retryPolicy(time.Second, 10*time.Minute, 2, 0)
	for _, v := range []string{"9223372037", "9999999999", "18446744074", "99999999999999999999999"} {
		ra := parseRetryAfter(v, now)
		if ra <= 0 || ra < 24*time.Hour {
			t.Errorf("parseRetryAfter(%q) = %s, want a huge positive delay (saturated)", v, ra)
		}
		if got := backoff(p, 1, ra, fixedRand(0.5)); got != 10*time.Minute {
			t.Errorf("backoff after a 503 with Retry-After %s = %s, want max_interval 10m0s", v, got)
		}
	}
}
