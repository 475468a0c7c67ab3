package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// target is the delivery machinery of one target.
type target struct {
	d            *Dispatcher
	cfg          TargetSettings
	client       *http.Client
	signer       *verify.Signer // nil: requests are not signed
	limiter      *rate.Limiter  // nil: unlimited
	breaker      *breaker
	slots        slots
	wake         chan struct{}
	log          *slog.Logger
	pending      prometheus.Gauge
	inFlight     prometheus.Gauge
	breakerGauge prometheus.Gauge
	// attemptsOut counts attempts in flight; the store's backlog includes
	// them, the pending gauge does not.
	attemptsOut atomic.Int64
	paused      atomic.Bool
	// stopFeeding ends this target's feeder alone (a reload removed or
	// replaced it); nil until it starts.
	stopFeeding context.CancelFunc
}

func (d *Dispatcher) newTarget(tc TargetSettings) (*target, error) {
	t := &target{
		d:     d,
		cfg:   tc,
		slots: newSlots(tc.MaxInFlight),
		wake:  make(chan struct{}, 1),
		log:   d.log.With("target", tc.Name),
	}
	for _, outcome := range []string{"delivered", "retry", "dead"} {
		d.metrics.Deliveries.WithLabelValues(tc.Name, outcome) // from 0, for increase()
	}
	t.pending = d.metrics.QueueDepth.WithLabelValues(tc.Name, "pending")
	t.inFlight = d.metrics.QueueDepth.WithLabelValues(tc.Name, "in_flight")
	if tc.RateLimit.RPS > 0 && d.opts.Limit == nil {
		t.limiter = rate.NewLimiter(rate.Limit(tc.RateLimit.RPS), max(tc.RateLimit.Burst, 1))
	}
	signer, err := verify.NewSigner(tc.SigningSecrets)
	if err != nil {
		return nil, fmt.Errorf("signing_secret: %w", err)
	}
	t.signer = signer
	if t.client, err = newClient(tc); err != nil {
		return nil, err
	}
	t.breakerGauge = d.metrics.BreakerState.WithLabelValues(tc.Name)
	t.breakerGauge.Set(0)
	t.breaker = newBreaker(tc.Name, tc.Breaker, d.opts.Now, t.breakerChanged)
	return t, nil
}

func (t *target) kick() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Why a target's pending deliveries wait, in the admin API: paused by an
// operator, the breaker open (until its half-open probe is due) or half
// open (one probe out decides), or a target the config no longer has.
const (
	WaitingPaused         = "paused"
	WaitingBreakerOpen    = "breaker_open"
	WaitingBreakerProbing = "breaker_half_open"
	WaitingNoTarget       = "no_target"
)

// Waiting says why target's pending deliveries are not attempted when they
// fall due, and until when when that is known (an open breaker); "" when
// nothing holds them back.
func (d *Dispatcher) Waiting(target string) (why string, until time.Time) {
	d.mu.Lock()
	t, paused := d.targets[target], d.paused[target]
	d.mu.Unlock()
	switch {
	case t == nil:
		return WaitingNoTarget, time.Time{}
	case paused:
		return WaitingPaused, time.Time{}
	}
	switch t.breaker.State() {
	case gobreaker.StateOpen:
		return WaitingBreakerOpen, t.breaker.probeDue()
	case gobreaker.StateHalfOpen:
		return WaitingBreakerProbing, time.Time{}
	}
	return "", time.Time{}
}
