package console

import (
	"slices"
	"sync"
	"time"
)

// rateWindow is how far back the live rates look.
const rateWindow = 10 * time.Second

// rateTracker keeps recent samples of the counters, so that a page can
// show rates without the relay keeping any: a rate is the change since the
// newest sample at least rateWindow old (or the oldest one kept).
type rateTracker struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at time.Time
	c  Counters
}

// sample records c and returns it with the sample to compare it with and
// the time between them (0 when there is none yet).
func (t *rateTracker) sample(c Counters) (now, prev Counters, window time.Duration) {
	at := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	// Drop samples older than needed, keeping one at least rateWindow old.
	for len(t.samples) > 1 && at.Sub(t.samples[1].at) >= rateWindow {
		t.samples = t.samples[1:]
	}
	var base *sample
	if len(t.samples) > 0 && at.Sub(t.samples[0].at) >= 500*time.Millisecond {
		base = &t.samples[0]
	}
	if n := len(t.samples); n == 0 || at.Sub(t.samples[n-1].at) >= time.Second {
		t.samples = append(t.samples, sample{at: at, c: c})
	}
	if base == nil {
		return c, Counters{}, 0
	}
	return c, base.c, at.Sub(base.at)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
