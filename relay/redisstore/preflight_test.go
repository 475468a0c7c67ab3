package redisstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

// Preflight refuses a Redis that may evict queued events, warns about the
// settings that can lose or duplicate them, and about a clock that is off
// Redis's; a durable Redis with noeviction and the same clock passes.
func TestPreflight(t *testing.T) {
	cases := []struct {
		name    string
		durable bool
		args    []string
		skew    time.Duration
		err     string   // part of the error; "" for none
		warn    []string // parts of the warnings, in order
	}{
		{"durable, noeviction", true, nil, 0, "", nil},
		{"allkeys-lru", true, []string{"--maxmemory-policy", "allkeys-lru"}, 0, `maxmemory-policy is "allkeys-lru"`, nil},
		{"allkeys-random", true, []string{"--maxmemory-policy", "allkeys-random"}, 0, "set maxmemory-policy noeviction", nil},
		{"volatile-lru", true, []string{"--maxmemory-policy", "volatile-lru"}, 0, "", []string{`maxmemory-policy is "volatile-lru"`}},
		{"no AOF", false, nil, 0, "", []string{"appendonly is no"}},
		{"appendfsync no", true, []string{"--appendfsync", "no"}, 0, "", []string{"appendfsync is no"}},
		// 5s give or take the round trip, which a busy machine makes ms long.
		{"clock 5s ahead", true, nil, 5 * time.Second, "", []string{"clock is 5"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.Start(t, tc.durable, tc.args...)
			rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
			defer rdb.Close()
			warnings, err := redisstore.Preflight(t.Context(), rdb, func() time.Time { return time.Now().Add(tc.skew) })
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Preflight = %v, want no error", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Preflight error = %v, want one containing %q", err, tc.err)
			}
			if len(warnings) != len(tc.warn) {
				t.Fatalf("Preflight warnings = %q, want %d containing %q", warnings, len(tc.warn), tc.warn)
			}
			for i, w := range tc.warn {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}
