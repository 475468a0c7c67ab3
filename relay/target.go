package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/tlsconf"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// target is the delivery machinery of one target.
type target struct {
	d       *Dispatcher
	cfg     TargetSettings
	client  *http.Client
	signer  *verify.Signer // nil: requests are not signed
	limiter *rate.Limiter  // nil: unlimited
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	slots   slots
	wake    chan struct{}
	// openedAt is when the breaker last opened (unix nanoseconds), so
	// that the feeder sleeps until the half-open probe is due.
	openedAt atomic.Int64
	log      *slog.Logger
	pending  prometheus.Gauge
	inFlight prometheus.Gauge
	// attemptsOut counts attempts in flight; the store's backlog includes
	// them, the pending gauge does not.
	attemptsOut atomic.Int64
	paused      atomic.Bool
	// stopFeeding ends this target's feeder alone (a reload removed or
	// replaced it); nil until it starts.
	stopFeeding context.CancelFunc
}

// errTargetFailing, errShutdown and errLocal are what the breaker is told:
// the first counts as a failure, the others are not counted at all.
var (
	errTargetFailing = errors.New("target failing")
	errShutdown      = errors.New("shutdown")
	errLocal         = errors.New("request not built")
)

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
	tlsCfg, err := tlsconf.ClientConfig(tc.TLS.CAFile, tc.TLS.CertFile, tc.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.client = &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:       tlsCfg,
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          tc.MaxInFlight,
			MaxIdleConnsPerHost:   tc.MaxInFlight,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		// Redirects are never followed (docs/http.md): a 3xx is an answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	bc := tc.Breaker
	gauge := d.metrics.BreakerState.WithLabelValues(tc.Name)
	gauge.Set(0)
	t.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        tc.Name,
		MaxRequests: 1, // one half-open probe decides
		Interval:    bc.Interval,
		Timeout:     bc.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			// Finished attempts only: Requests also counts those in flight.
			n := c.TotalSuccesses + c.TotalFailures
			return n >= uint32(bc.MinRequests) && float64(c.TotalFailures) >= bc.FailureRatio*float64(n)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errShutdown) || errors.Is(err, errLocal) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			switch to {
			case gobreaker.StateOpen:
				t.openedAt.Store(d.opts.Now().UnixNano())
				gauge.Set(2)
			case gobreaker.StateHalfOpen:
				gauge.Set(1)
			case gobreaker.StateClosed:
				gauge.Set(0)
			}
			// Opening stops deliveries: an operator should see it.
			if to == gobreaker.StateOpen {
				t.log.Warn("breaker state changed", "from", from.String(), "to", to.String())
			} else {
				t.log.Info("breaker state changed", "from", from.String(), "to", to.String())
			}
			t.kick()
		},
	})
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
		return WaitingBreakerOpen, time.Unix(0, t.openedAt.Load()).Add(t.cfg.Breaker.OpenTimeout)
	case gobreaker.StateHalfOpen:
		return WaitingBreakerProbing, time.Time{}
	}
	return "", time.Time{}
}
