package relay

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// errTargetFailing, errShutdown and errLocal are what the breaker is told:
// the first counts as a failure, the others are not counted at all.
var (
	errTargetFailing = errors.New("target failing")
	errShutdown      = errors.New("shutdown")
	errLocal         = errors.New("request not built")
)

// breaker is a target's circuit breaker, gobreaker's two-step one, which
// also keeps when it last opened so that the feeder can sleep until the
// half-open probe is due. Safe for concurrent use.
type breaker struct {
	*gobreaker.TwoStepCircuitBreaker[struct{}]
	openTimeout time.Duration
	openedAt    atomic.Int64 // unix nanoseconds
}

// newBreaker returns the breaker of the target called name. It trips on
// finished attempts only, and lets one probe decide when half open;
// changed is told of every change of state.
func newBreaker(name string, s BreakerSettings, now func() time.Time, changed func(from, to gobreaker.State)) *breaker {
	b := &breaker{openTimeout: s.OpenTimeout}
	b.TwoStepCircuitBreaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1, // one half-open probe decides
		Interval:    s.Interval,
		Timeout:     s.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			// Finished attempts only: Requests also counts those in flight.
			n := c.TotalSuccesses + c.TotalFailures
			return n >= uint32(s.MinRequests) && float64(c.TotalFailures) >= s.FailureRatio*float64(n)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errShutdown) || errors.Is(err, errLocal) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(now().UnixNano())
			}
			changed(from, to)
		},
	})
	return b
}

// probeDue is when an open breaker lets its half-open probe through.
func (b *breaker) probeDue() time.Time {
	return time.Unix(0, b.openedAt.Load()).Add(b.openTimeout)
}

// probeOut reports whether a half-open breaker's probe is under way.
func (b *breaker) probeOut() bool {
	c := b.Counts()
	return c.Requests > c.TotalSuccesses+c.TotalFailures+c.TotalExclusions
}

// breakerChanged exports and logs a change of t's breaker, and wakes the
// feeder, which sleeps while the breaker is open or its probe is out.
func (t *target) breakerChanged(from, to gobreaker.State) {
	switch to {
	case gobreaker.StateOpen:
		t.breakerGauge.Set(2)
		// Opening stops deliveries: an operator should see it.
		t.log.Warn("breaker state changed", "from", from.String(), "to", to.String())
	case gobreaker.StateHalfOpen:
		t.breakerGauge.Set(1)
		t.log.Info("breaker state changed", "from", from.String(), "to", to.String())
	case gobreaker.StateClosed:
		t.breakerGauge.Set(0)
		t.log.Info("breaker state changed", "from", from.String(), "to", to.String())
	}
	if t.opts.OnBreakerChange != nil {
		t.opts.OnBreakerChange(t.set.Name, from.String(), to.String())
	}
	t.kick()
}
