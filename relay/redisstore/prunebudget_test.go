package redisstore

import (
	"testing"
	"time"
)

// A Prune looks at enough search members that the whole index is walked
// within half the retention, a chunk at least, the whole index at most.
func TestSearchBudget(t *testing.T) {
	const week = 7 * 24 * time.Hour
	cases := []struct {
		card                int64
		interval, retention time.Duration
		want                int
	}{
		{0, time.Minute, week, pruneChunk},
		{100, time.Minute, week, pruneChunk},
		// Half a week is 5,040 minutes.
		{50_000_000, time.Minute, week, 9921}, // ceil(50e6 / 5040)
		{10_080_000, time.Minute, week, 2000}, // exactly
		{10_080_001, time.Minute, week, 2001}, // rounded up
		{1_000_000, time.Minute, week, 500},   // 199 rounds up to a chunk
		{1_000_000, time.Minute, 2 * time.Minute, 1_000_000},
		{1_000_000, time.Minute, time.Hour, 33_334},
		{1_000_000, time.Hour, 300 * time.Millisecond, 1_000_000},
		{1_000_000, time.Minute, time.Nanosecond, 1_000_000},
		// card times the interval in ns is past an int64.
		{1 << 40, 24 * time.Hour, 48 * time.Hour, 1 << 40},
		{1 << 40, 24 * time.Hour, 4800 * time.Hour, 10_995_116_278}, // ceil(2^40 / 100)
	}
	for _, c := range cases {
		got := searchBudget(c.card, c.interval, c.retention)
		if got != c.want {
			t.Errorf("searchBudget(%d, %v, %v) = %d, want %d", c.card, c.interval, c.retention, got, c.want)
		}
		if walks := time.Duration((c.card+int64(got)-1)/int64(got)) * c.interval; c.card > 0 && walks > max(c.retention/2+c.interval, c.interval) {
			t.Errorf("searchBudget(%d, %v, %v) = %d walks the index in %v, more than half the retention", c.card, c.interval, c.retention, got, walks)
		}
	}
}
