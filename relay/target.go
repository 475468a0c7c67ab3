package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/shape"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// target is the delivery machinery of one target. Everything it depends
// on is its own or given to newTarget: the store, the options (clock,
// jitter, hooks), the metrics and the log.
type target struct {
	set          TargetSettings
	store        Store
	opts         DispatcherOptions
	metrics      *Metrics
	log          *slog.Logger
	client       *http.Client
	signer       *verify.Signer // nil: requests are not signed
	shaper       *shape.Shaper
	tokens       *shape.Tokens // nil: no OAuth2 token to send
	limiter      *rate.Limiter // nil: unlimited, or limited by opts.Reserve
	breaker      *breaker
	slots        slots
	jobs         chan job // unbuffered: to a worker waiting for one
	wake         chan struct{}
	pending      prometheus.Gauge
	inFlight     prometheus.Gauge
	breakerGauge prometheus.Gauge
	// outcomes counts attempts by outcome (delivered, retry, dead) and
	// duration observes them: bound once, so that an attempt costs no
	// label lookup.
	outcomes map[string]prometheus.Counter
	duration prometheus.Observer
	lastURL  atomic.Pointer[parsedURL] // of the last attempt
	// attemptsOut counts attempts in flight; the store's backlog includes
	// them, the pending gauge does not.
	attemptsOut atomic.Int64
	paused      atomic.Bool
	// hold is the last time the feeder held the target's due deliveries
	// back (paused, breaker open), for the attempts' Waited.
	hold atomic.Pointer[hold]
	// stopFeeding ends this target's feeder alone (a reload removed or
	// replaced it); nil until it starts.
	stopFeeding context.CancelFunc
	// writes counts the outcomes of Run's attempts that the store has yet
	// to write; nil until the target starts.
	writes *writes
}

// newTarget builds the machinery of ts over store, with opts as
// NewDispatcher completed them. It fails when ts's signing secrets, TLS
// files or request shaping are unusable.
func newTarget(ts TargetSettings, store Store, opts DispatcherOptions) (*target, error) {
	t := &target{
		set:     ts,
		store:   store,
		opts:    opts,
		metrics: opts.Metrics,
		log:     opts.Logger.With("target", ts.Name),
		slots:   newSlots(ts.MaxInFlight),
		jobs:    make(chan job),
		wake:    make(chan struct{}, 1),
	}
	t.outcomes = make(map[string]prometheus.Counter, 3)
	for _, outcome := range []string{"delivered", "retry", "dead"} {
		t.outcomes[outcome] = t.metrics.Deliveries.WithLabelValues(ts.Name, outcome) // from 0, for increase()
	}
	t.duration = t.metrics.DeliveryDuration.WithLabelValues(ts.Name)
	t.pending = t.metrics.QueueDepth.WithLabelValues(ts.Name, "pending")
	t.inFlight = t.metrics.QueueDepth.WithLabelValues(ts.Name, "in_flight")
	if ts.RateLimit.RPS > 0 && opts.Reserve == nil {
		t.limiter = rate.NewLimiter(rate.Limit(ts.RateLimit.RPS), max(ts.RateLimit.Burst, 1))
	}
	var err error
	if t.signer, err = verify.NewSigner(ts.SigningSecrets); err != nil {
		return nil, fmt.Errorf("signing_secret: %w", err)
	}
	if t.client, err = newClient(ts); err != nil {
		return nil, err
	}
	if t.shaper, err = shape.Compile(ts.URL, ts.Request); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if t.shaper.OAuth2() {
		t.tokens = shape.NewTokens(ts.Request.Auth, t.client)
	}
	t.breakerGauge = t.metrics.BreakerState.WithLabelValues(ts.Name)
	t.breakerGauge.Set(0)
	t.breaker = newBreaker(ts.Name, ts.Breaker, opts.Now, t.breakerChanged)
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
	// WaitRateLimit is an attempt's Waited when the target's rate limit
	// paced it.
	WaitRateLimit = "rate_limit"
)

// hold is a time, from and to, when the feeder held a target's due
// deliveries back, and why.
type hold struct {
	why      string
	from, to time.Time
}

// held records that the feeder held the deliveries back since from, for
// why, until now; a hold that goes on (a pause woken by a kick) extends
// the last one.
func (t *target) held(why string, from time.Time) {
	if last := t.hold.Load(); last != nil && last.why == why && !last.to.Before(from.Add(-time.Second)) {
		from = last.from
	}
	t.hold.Store(&hold{why: why, from: from, to: t.opts.Now()})
}

// waitOf is what held d back, due, before its attempt: the target's last
// hold when d was due during it, else the rate limit when it paced d for
// paced (1 ms or more).
func (t *target) waitOf(d *Delivery, paced time.Duration) (string, time.Duration) {
	if h := t.hold.Load(); h != nil && d.NextAttemptAt.Before(h.to) {
		return h.why, h.to.Sub(later(h.from, d.NextAttemptAt)) + paced
	}
	if paced >= time.Millisecond {
		return WaitRateLimit, paced
	}
	return "", 0
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

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
