package relay

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the relay's Prometheus metrics (see the README). Labels carry bounded
// values only: source, task, target, outcome, state. A nil *Metrics is not
// valid; use NewMetrics(nil) for metrics that are kept but not exported.
type Metrics struct {
	IngressRequests  *prometheus.CounterVec   // source, task, outcome
	IngressDuration  prometheus.Histogram     //
	Unrouted         *prometheus.CounterVec   // source, task
	Deliveries       *prometheus.CounterVec   // target, outcome
	DeliveryDuration *prometheus.HistogramVec // target
	QueueDepth       *prometheus.GaugeVec     // target, state
	BreakerState     *prometheus.GaugeVec     // target
	VerifyFailures   *prometheus.CounterVec   // source, reason
	TargetsPaused    *prometheus.GaugeVec     // target
	ConfigReloads    *prometheus.CounterVec   // result
	ConfigInfo       *prometheus.GaugeVec     // hash
}

// NewMetrics creates the metrics and registers them on reg when it is not
// nil, so that each test and each relay in a process can have its own.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		IngressRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hooxrelay_ingress_requests_total",
			Help: "Webhook requests received, by source, task and outcome (accepted, duplicate, invalid_payload, rate_limited, payload_too_large, unsupported_encoding, invalid_signature, forbidden, overloaded, unavailable, not_found, method_not_allowed); source and task are \"none\" when unknown.",
		}, []string{"source", "task", "outcome"}),
		IngressDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hooxrelay_ingress_duration_seconds",
			Help:    "Time from reading a webhook request to answering it, durable write included.",
			Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1, 2},
		}),
		Unrouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hooxrelay_unrouted_events_total",
			Help: "Accepted events that no route matched, by source and task.",
		}, []string{"source", "task"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hooxrelay_deliveries_total",
			Help: "Delivery attempts and their outcome (delivered, retry, dead), by target.",
		}, []string{"target", "outcome"}),
		DeliveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hooxrelay_delivery_duration_seconds",
			Help:    "Duration of delivery attempts, by target.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"target"}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hooxrelay_queue_depth",
			Help: "Deliveries by target and state (pending, in_flight, dead).",
		}, []string{"target", "state"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hooxrelay_breaker_state",
			Help: "Circuit breaker state by target: 0 closed, 1 half-open, 2 open.",
		}, []string{"target"}),
		VerifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hooxrelay_ingress_verify_failures_total",
			Help: "Webhooks refused with 401, by source and reason (missing, malformed, mismatch, stale, future): the sender is told none of it.",
		}, []string{"source", "reason"}),
		TargetsPaused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hooxrelay_targets_paused",
			Help: "1 while a target is paused by an operator (its deliveries wait, nothing is dropped).",
		}, []string{"target"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hooxrelay_config_reloads_total",
			Help: "Config reloads on SIGHUP, by result (success, failure: the previous config stays).",
		}, []string{"result"}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hooxrelay_config_info",
			Help: "1 for the hash (sha256 of the file, 12 hex digits) of the config in use.",
		}, []string{"hash"}),
	}
	if reg != nil {
		reg.MustRegister(m.IngressRequests, m.IngressDuration, m.Unrouted, m.Deliveries,
			m.DeliveryDuration, m.QueueDepth, m.BreakerState, m.VerifyFailures,
			m.TargetsPaused, m.ConfigReloads, m.ConfigInfo)
	}
	return m
}
