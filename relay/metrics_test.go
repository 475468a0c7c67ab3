package relay_test

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/rules"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestAdminEndpoints(t *testing.T) {
	a := newSink(t, "a", ok)
	set := baseSettings()
	set.Targets = []relay.TargetSettings{target(a)}
	set.Routes = routes(t, rules.Route{Name: "videos", Tasks: []string{"video_generate"}, Targets: []string{"a"}})
	h := startRelay(t, set, "")

	if r := h.admin(t, "/healthz"); r.status != http.StatusOK || string(bytes.TrimSpace(r.body)) != `{"status":"ok"}` ||
		r.header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /healthz: got %s, want 200 {\"status\":\"ok\"}", r)
	}
	if r := h.admin(t, "/readyz"); r.status != http.StatusOK {
		t.Errorf("GET /readyz while running: got %s, want 200", r)
	}

	h.send(t, videoBody("admin_1"))
	h.post(t, "/hooks/hoox", videoBody("admin_1"))
	h.post(t, "/hooks/hoox", videoBody("admin_1"))
	h.post(t, "/hooks/hoox", `{"task":"video_generate"}`)
	h.send(t, `{"task":"avatar_create","avatar_id":"a","look_id":"l","status":"completed"}`)
	h.send(t, `{"task":"brand_new_task","status":"completed"}`)
	a.waitCount(t, 1, 3*time.Second)

	m := h.metrics(t)
	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"source": "hoox", "task": "video_generate", "outcome": "accepted"}, 1},
		{map[string]string{"source": "hoox", "task": "video_generate", "outcome": "duplicate"}, 2},
		{map[string]string{"source": "hoox", "task": "video_generate", "outcome": "invalid_payload"}, 0},
		{map[string]string{"source": "hoox", "task": "none", "outcome": "invalid_payload"}, 1},
		{map[string]string{"source": "hoox", "task": "avatar_create", "outcome": "accepted"}, 1},
		{map[string]string{"source": "hoox", "task": "other", "outcome": "accepted"}, 1},
	} {
		got, found := m.value("hooxrelay_ingress_requests_total", tc.labels)
		if got != tc.want || (tc.want > 0 && !found) {
			t.Errorf("hooxrelay_ingress_requests_total%v = %v (present %v), want %v", tc.labels, got, found, tc.want)
		}
	}
	if v, ok := m.value("hooxrelay_ingress_duration_seconds", nil); !ok || v != 6 {
		t.Errorf("hooxrelay_ingress_duration_seconds count = %v (present %v), want 6", v, ok)
	}
	if v, _ := m.value("hooxrelay_unrouted_events_total", map[string]string{"source": "hoox"}); v < 1 {
		t.Errorf("hooxrelay_unrouted_events_total = %v, want the unrouted avatar and unknown-task events counted", v)
	}
	if _, ok := m.value("hooxrelay_breaker_state", nil); !ok {
		t.Error("/metrics has no hooxrelay_breaker_state")
	}
	if series := m["hooxrelay_ingress_duration_seconds"].GetMetric(); len(series) == 0 || len(series[0].GetHistogram().GetBucket()) == 0 {
		t.Error("/metrics has no buckets of hooxrelay_ingress_duration_seconds")
	}
	h.waitDeliveries(t, "a", "delivered", 1, 2*time.Second)
	if _, ok := h.metrics(t).value("hooxrelay_delivery_duration_seconds", map[string]string{"target": "a"}); !ok {
		t.Error("/metrics has no hooxrelay_delivery_duration_seconds for target a after a delivery")
	}
}

func TestMetricsQueueDepth(t *testing.T) {
	stuck := newSink(t, "t", always(answer{hang: true}))
	tg := target(stuck)
	tg.MaxInFlight = 1
	h := startRelay(t, settingsFor(t, tg), "")
	for i := range 3 {
		h.send(t, videoBody(fmt.Sprintf("depth_%d", i)))
	}
	stuck.waitCount(t, 1, 3*time.Second)
	storetest.Eventually(t, 3*time.Second, func() error {
		m := h.metrics(t)
		if v, ok := m.value("hooxrelay_queue_depth", map[string]string{"target": "t", "state": "pending"}); !ok || v < 2 {
			return fmt.Errorf("hooxrelay_queue_depth{target=t,state=pending} = %v (present %v) with 3 deliveries queued behind a hanging target, want at least 2", v, ok)
		}
		return nil
	})
}

// A scripted run, then the /metrics endpoint itself parsed with the
// Prometheus text parser (other tests gather the registry):
// the counters and gauges say what happened.
func TestMetricsAfterScriptedRun(t *testing.T) {
	good := newSink(t, "good", ok)
	flaky := newSink(t, "flaky", failFirst(1, http.StatusServiceUnavailable))
	h := startRelayOn(t, adminSettings(t, good, flaky), func() relay.Store {
		s, err := pebblestore.Open(filepath.Join(t.TempDir(), "m"), pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}())
	h.send(t, videoBody("m1"))
	h.send(t, videoBody("m2"))
	h.post(t, "/hooks/hoox", videoBody("m1"))    // duplicate
	h.post(t, "/hooks/hoox", `{"task":"video_"`) // invalid
	h.post(t, "/hooks/nowhere", videoBody("m3"))
	good.waitCount(t, 2, 10*time.Second)
	flaky.waitCount(t, 3, 10*time.Second) // one 503, then both delivered
	h.waitDeliveries(t, "flaky", "delivered", 2, 10*time.Second)

	r := h.admin(t, "/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(r.body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hooxrelay_ingress_requests_total", map[string]string{"source": "hoox", "task": "video_generate", "outcome": "accepted"}, 2},
		{"hooxrelay_ingress_requests_total", map[string]string{"source": "hoox", "task": "video_generate", "outcome": "duplicate"}, 1},
		{"hooxrelay_ingress_requests_total", map[string]string{"source": "hoox", "task": "none", "outcome": "invalid_payload"}, 1},
		{"hooxrelay_ingress_requests_total", map[string]string{"outcome": "not_found"}, 1},
		{"hooxrelay_ingress_duration_seconds", nil, 4},
		{"hooxrelay_deliveries_total", map[string]string{"target": "good", "outcome": "delivered"}, 2},
		{"hooxrelay_deliveries_total", map[string]string{"target": "flaky", "outcome": "retry"}, 1},
		{"hooxrelay_deliveries_total", map[string]string{"target": "flaky", "outcome": "delivered"}, 2},
		{"hooxrelay_delivery_duration_seconds", map[string]string{"target": "flaky"}, 3},
		{"hooxrelay_breaker_state", map[string]string{"target": "flaky"}, 0},
		{"hooxrelay_targets_paused", map[string]string{"target": "good"}, 0},
		{"go_goroutines", nil, -1},
		{"process_resident_memory_bytes", nil, -1},
	} {
		got, found := metrics(fams).value(tc.name, tc.labels)
		if !found {
			t.Errorf("/metrics has no %s%v", tc.name, tc.labels)
		} else if tc.want >= 0 && got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
