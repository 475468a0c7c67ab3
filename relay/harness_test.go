package relay_test

// The harness of the end-to-end tests: a real relay (embedded store on a
// temp file, relay.Server on loopback listeners) between a real HTTP client
// and real httptest targets. Nothing is mocked; time is real, so every wait
// polls with a deadline instead of sleeping.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/hooxrelay/hooxrelay/rules"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// ---------------------------------------------------------------------------
// Targets

// answer is how a sink answers one request.
type answer struct {
	status     int           // 0 means 200
	retryAfter string        // Retry-After header, when not ""
	location   string        // Location header, when not ""
	delay      time.Duration // answer after this long (sooner if the request is cancelled)
	hang       bool          // answer only when the request is cancelled or the test ends
}

// recorded is one request a sink received.
type recorded struct {
	at     time.Time
	header http.Header
	body   []byte
	status int // what the sink answered (or will answer, while it hangs)
}

func (r recorded) id() string      { return r.header.Get("Webhook-Id") }
func (r recorded) attempt() string { return r.header.Get("Hooxrelay-Attempt") }

// sink is a delivery target that records every request and answers as its
// respond function says.
type sink struct {
	name    string
	url     string
	mu      sync.Mutex
	reqs    []recorded
	respond func(n int) answer // n is the 1-based number of the request
}

func ok(int) answer { return answer{} }

// failFirst fails the first n requests with status, then answers 200.
func failFirst(n, status int) func(int) answer {
	return func(i int) answer {
		if i <= n {
			return answer{status: status}
		}
		return answer{}
	}
}

func always(a answer) func(int) answer { return func(int) answer { return a } }

// newSink starts a target. Hanging requests are let go when the test ends,
// so that neither the relay nor the server waits on them at cleanup.
func newSink(t *testing.T, name string, respond func(int) answer) *sink {
	t.Helper()
	s := &sink{name: name, respond: respond}
	testDone := t.Context().Done()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{at: at, header: r.Header.Clone(), body: body})
		n := len(s.reqs)
		respond := s.respond
		s.mu.Unlock()
		a := respond(n)
		status := a.status
		if status == 0 {
			status = http.StatusOK
		}
		s.mu.Lock()
		s.reqs[n-1].status = status
		s.mu.Unlock()
		switch {
		case a.hang:
			select {
			case <-r.Context().Done():
			case <-testDone:
			}
		case a.delay > 0:
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
			case <-testDone:
			}
		}
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		if a.location != "" {
			w.Header().Set("Location", a.location)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "sink %s answered %d to request %d", name, status, n)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/hook/" + name
	return s
}

// refusedURL returns a loopback URL on which nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

func (s *sink) setRespond(f func(int) answer) {
	s.mu.Lock()
	s.respond = f
	s.mu.Unlock()
}

func (s *sink) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// ids returns how many requests the sink received for each Webhook-Id.
func (s *sink) ids() map[string]int {
	m := map[string]int{}
	for _, r := range s.requests() {
		m[r.id()]++
	}
	return m
}

func (s *sink) waitCount(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	storetest.Eventually(t, timeout, func() error {
		if got := s.count(); got < n {
			return fmt.Errorf("target %q received %d requests, waiting for %d", s.name, got, n)
		}
		return nil
	})
}

// ---------------------------------------------------------------------------
// The relay

// relayHarness is one relay running over real listeners and a real store.
type relayHarness struct {
	settings relay.Settings
	store    relay.Store
	srv      *relay.Server
	registry *prometheus.Registry
	dbPath   string
	url      string // ingress base URL
	adminURL string
	client   *http.Client

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("HOOXRELAY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startRelay runs a relay with set over the store file at dbPath ("" for
// a new one in a temp dir) until the test ends; cleanup stops it, checks
// that Run returned nil, and closes the store. The store is opened as
// `hooxrelay serve` opens it; storeOpts may change that.
func startRelay(t *testing.T, set relay.Settings, dbPath string, storeOpts ...func(*pebblestore.Options)) *relayHarness {
	t.Helper()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "relay")
	}
	so := pebblestore.Options{
		Logger:    testLogger(t),
		Retention: retention,
		DedupTTL:  set.DedupTTL,
	}
	for _, f := range storeOpts {
		f(&so)
	}
	store, err := pebblestore.Open(dbPath, so)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	h := startRelayOn(t, set, store)
	h.dbPath = dbPath
	return h
}

// startRelayOn runs a relay with set over store, as startRelay does;
// cleanup closes the store.
func startRelayOn(t *testing.T, set relay.Settings, store relay.Store) *relayHarness {
	t.Helper()
	// The registry a relay builds by default, kept to read the metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := relay.NewServer(set, store, relay.ServerOptions{
		Logger:   testLogger(t),
		Version:  "test",
		Registry: reg,
	})
	if err != nil {
		store.Close()
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	h := &relayHarness{
		settings: set,
		store:    store,
		srv:      srv,
		registry: reg,
		url:      scheme(set) + ln.Addr().String(),
		adminURL: "http://" + adminLn.Addr().String(),
		client:   &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		cancel:   cancel,
		done:     make(chan error, 1),
	}
	go func() { h.done <- srv.Run(ctx, ln, adminLn) }()
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("relay Run returned %v at cleanup, want nil", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store at cleanup: %v", err)
		}
		h.client.CloseIdleConnections()
	})
	return h
}

func scheme(set relay.Settings) string {
	if set.Server.CertFile != "" {
		return "https://"
	}
	return "http://"
}

// stop cancels Run's context and returns what Run returned.
func (h *relayHarness) stop() error {
	h.stopOnce.Do(func() {
		// Connections the client dialed but never used are "new" to the
		// server, and http.Server.Shutdown waits for those until
		// shutdown_timeout: close them first so tests end fast.
		h.client.CloseIdleConnections()
		h.cancel()
		select {
		case h.stopErr = <-h.done:
		case <-time.After(h.settings.Server.ShutdownTimeout + 10*time.Second):
			h.stopErr = errors.New("Run did not return within shutdown_timeout + 10s")
		}
	})
	return h.stopErr
}

// reply is an HTTP answer, read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s (Content-Type %q)", r.status, bytes.TrimSpace(r.body), r.header.Get("Content-Type"))
}

// ingestAnswer is any ingress answer body; pointers tell absent from empty.
type ingestAnswer struct {
	Status  string    `json:"status"`
	EventID string    `json:"event_id"`
	Targets *[]string `json:"targets"`
	Error   string    `json:"error"`
	Message string    `json:"message"`
	Field   *string   `json:"field"`
}

func (r reply) answer(t testing.TB) ingestAnswer {
	t.Helper()
	var a ingestAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("ingress answer %s is not JSON: %v", r, err)
	}
	return a
}

func (h *relayHarness) do(t testing.TB, method, url string, body io.Reader, header http.Header) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, url, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends body to a path of the ingress.
func (h *relayHarness) post(t testing.TB, path, body string) reply {
	t.Helper()
	return h.do(t, http.MethodPost, h.url+path, strings.NewReader(body), nil)
}

// send posts a webhook that must be accepted and returns its event id.
func (h *relayHarness) send(t testing.TB, body string) string {
	t.Helper()
	r := h.post(t, "/hooks/hoox", body)
	a := r.answer(t)
	if r.status != http.StatusOK || a.Status != "accepted" || a.EventID == "" {
		t.Fatalf("POST /hooks/hoox %s\n got %s\nwant 200 {\"status\":\"accepted\",...}", body, r)
	}
	return a.EventID
}

func (h *relayHarness) admin(t testing.TB, path string) reply {
	t.Helper()
	return h.do(t, http.MethodGet, h.adminURL+path, nil, nil)
}

// metrics are the relay's metric families at one moment, by name, as its
// registry gathers them (or as expfmt parses an exposition).
type metrics map[string]*dto.MetricFamily

// metrics gathers the relay's registry, the one /metrics serves.
func (h *relayHarness) metrics(t testing.TB) metrics {
	t.Helper()
	fams, err := h.registry.Gather()
	if err != nil {
		t.Fatalf("gather the relay's metrics: %v", err)
	}
	m := make(metrics, len(fams))
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return m
}

// value sums the series of the family name whose labels include labels: a
// counter's or gauge's value, a histogram's count of observations. found
// is false when no series matches.
func (m metrics) value(name string, labels map[string]string) (v float64, found bool) {
next:
	for _, s := range m[name].GetMetric() {
		for k, want := range labels {
			if labelValue(s, k) != want {
				continue next
			}
		}
		found = true
		switch {
		case s.Counter != nil:
			v += s.Counter.GetValue()
		case s.Gauge != nil:
			v += s.Gauge.GetValue()
		case s.Histogram != nil:
			v += float64(s.Histogram.GetSampleCount())
		}
	}
	return v, found
}

func labelValue(s *dto.Metric, name string) string {
	for _, lp := range s.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func (h *relayHarness) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := h.metrics(t).value(name, labels)
	return v
}

// waitDeliveries waits until hooxrelay_deliveries_total{target,outcome}
// reaches n and, for the outcomes a delivery ends with (delivered, dead),
// until the store has recorded n of them too: the counter moves when an
// outcome is handed to the store, which may write it a moment later.
func (h *relayHarness) waitDeliveries(t *testing.T, target, outcome string, n int, timeout time.Duration) {
	t.Helper()
	storetest.Eventually(t, timeout, func() error {
		got := h.metric(t, "hooxrelay_deliveries_total", map[string]string{"target": target, "outcome": outcome})
		if got < float64(n) {
			return fmt.Errorf("hooxrelay_deliveries_total{target=%q,outcome=%q} is %v, waiting for %d", target, outcome, got, n)
		}
		if outcome != "delivered" && outcome != "dead" {
			return nil
		}
		counts, err := h.store.Counts(t.Context())
		if err != nil {
			return fmt.Errorf("store counts: %v", err)
		}
		if c := counts[target]; (outcome == "delivered" && c.Delivered < n) || (outcome == "dead" && c.Dead < n) {
			return fmt.Errorf("the store has recorded %+v for target %q, waiting for %d %s", c, target, n, outcome)
		}
		return nil
	})
}

// videoBody returns a distinct valid video_generate webhook.
func videoBody(job string) string {
	return `{"task":"video_generate","job_id":"` + job + `","status":"completed","result":{"video_id":"v_` + job + `","cost":5}}`
}

// retention is the store's, as the config file's default has it.
const retention = 168 * time.Hour

// baseSettings are a test relay's: a 1 KiB body limit, a 2s shutdown and
// one source, hoox at /hooks/hoox, with the config file's defaults
// elsewhere. Tests add targets and routes (see settingsFor), and sometimes
// sources.
func baseSettings() relay.Settings {
	return relay.Settings{
		Server: relay.ServerSettings{
			MaxBodyBytes:         1024,
			MaxBufferedBodyBytes: 64 << 20,
			ReadHeaderTimeout:    5 * time.Second,
			ReadTimeout:          15 * time.Second,
			WriteTimeout:         15 * time.Second,
			IdleTimeout:          60 * time.Second,
			ShutdownTimeout:      2 * time.Second,
		},
		DedupTTL:  24 * time.Hour,
		StoreKind: "embedded",
		Sources:   []relay.SourceSettings{source("hoox")},
	}
}

// source is a source called name at /hooks/name, unverified and unlimited.
func source(name string) relay.SourceSettings {
	return relay.SourceSettings{Name: name, Path: "/hooks/" + name, Verify: verify.Settings{Kind: verify.KindNone}}
}

// target is a target called after s that delivers to it, with the config
// file's defaults; tests change what they need.
func target(s *sink) relay.TargetSettings {
	return relay.TargetSettings{
		Name:        s.name,
		URL:         s.url,
		Timeout:     10 * time.Second,
		MaxInFlight: 16,
		RateLimit:   relay.RateLimit{Burst: 1},
		Retry: relay.RetryPolicy{
			MaxAttempts:     12,
			InitialInterval: time.Second,
			MaxInterval:     10 * time.Minute,
			Multiplier:      2,
			Jitter:          0.2,
			MaxAge:          24 * time.Hour,
		},
		Breaker: relay.BreakerSettings{
			FailureRatio: 0.5,
			MinRequests:  10,
			Interval:     60 * time.Second,
			OpenTimeout:  30 * time.Second,
		},
	}
}

// settingsFor is baseSettings with targets and one route, "all", of every
// event to each of them.
func settingsFor(t testing.TB, targets ...relay.TargetSettings) relay.Settings {
	t.Helper()
	set := baseSettings()
	set.Targets = targets
	all := rules.Route{Name: "all"}
	for _, tg := range targets {
		all.Targets = append(all.Targets, tg.Name)
	}
	set.Routes = routes(t, all)
	return set
}

// routes compiles a routing table.
func routes(t testing.TB, rs ...rules.Route) *rules.Table {
	t.Helper()
	table, err := rules.Compile(rs)
	if err != nil {
		t.Fatalf("compile test routes: %v", err)
	}
	return table
}
