package relay_test

// End-to-end tests: a real relay (config parsed from YAML, embedded store
// on a temp file, relay.Server on loopback listeners) between a real HTTP
// client and real httptest targets. Nothing is mocked; time is real, so
// every wait polls with a deadline instead of sleeping.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/boltstore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// ---------------------------------------------------------------------------
// Polling

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
	cfg      *config.Config
	store    relay.Store
	srv      *relay.Server
	dbPath   string
	url      string // ingress base URL
	adminURL string
	client   *http.Client

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
}

// render replaces {{name}} in a config template with the URL of that sink.
func render(tmpl string, sinks ...*sink) string {
	for _, s := range sinks {
		tmpl = strings.ReplaceAll(tmpl, "{{"+s.name+"}}", s.url)
	}
	return tmpl
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("HOOXRELAY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startRelay runs a relay for the YAML config text over the store file at
// dbPath ("" for a new one in a temp dir) until the test ends; cleanup
// stops it, checks that Run returned nil, and closes the store. The store
// is opened as `hooxrelay serve` opens it; storeOpts may change that.
func startRelay(t *testing.T, yamlText, dbPath string, storeOpts ...func(*boltstore.Options)) *relayHarness {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlText), "test.yaml")
	if err != nil {
		t.Fatalf("parse test config: %v\n%s", err, yamlText)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate test config: %v\n%s", err, yamlText)
	}
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "relay.db")
	}
	cfg.Store.Path = dbPath
	so := boltstore.Options{
		Logger:    testLogger(t),
		Retention: cfg.Store.Retention.D(),
		DedupTTL:  cfg.Dedup.TTL.D(),
	}
	for _, f := range storeOpts {
		f(&so)
	}
	store, err := boltstore.Open(dbPath, so)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	h := startRelayOn(t, cfg, store)
	h.dbPath = dbPath
	return h
}

// startRelayOn runs a relay for a validated cfg over store, as startRelay
// does; cleanup closes the store.
func startRelayOn(t *testing.T, cfg *config.Config, store relay.Store) *relayHarness {
	t.Helper()
	srv, err := relay.NewServer(cfg, store, relay.ServerOptions{
		Logger:  testLogger(t),
		Version: "test",
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
		cfg:      cfg,
		store:    store,
		srv:      srv,
		url:      scheme(cfg) + ln.Addr().String(),
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

func scheme(cfg *config.Config) string {
	if cfg.Server.TLS.Set() {
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
		case <-time.After(h.cfg.Server.ShutdownTimeout.D() + 10*time.Second):
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

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics scrapes the admin /metrics endpoint.
func (h *relayHarness) metrics(t testing.TB) []sample {
	t.Helper()
	r := h.admin(t, "/metrics")
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %s", r)
	}
	var out []sample
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := sample{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			ls := strings.TrimSuffix(s.name[i+1:], "}")
			s.name = s.name[:i]
			for ls != "" {
				k, rest, _ := strings.Cut(ls, `="`)
				val, rest, _ := strings.Cut(rest, `"`)
				s.labels[k] = val
				ls = strings.TrimPrefix(rest, ",")
			}
		}
		out = append(out, s)
	}
	return out
}

// metricValue returns the value of the sample called name whose labels
// include labels.
func metricValue(samples []sample, name string, labels map[string]string) (float64, bool) {
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

func (h *relayHarness) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := metricValue(h.metrics(t), name, labels)
	return v
}

// waitDeliveries waits until hooxrelay_deliveries_total{target,outcome}
// reaches n.
func (h *relayHarness) waitDeliveries(t *testing.T, target, outcome string, n int, timeout time.Duration) {
	t.Helper()
	storetest.Eventually(t, timeout, func() error {
		got := h.metric(t, "hooxrelay_deliveries_total", map[string]string{"target": target, "outcome": outcome})
		if got < float64(n) {
			return fmt.Errorf("hooxrelay_deliveries_total{target=%q,outcome=%q} is %v, waiting for %d", target, outcome, got, n)
		}
		return nil
	})
}

// videoBody returns a distinct valid video_generate webhook.
func videoBody(job string) string {
	return `{"task":"video_generate","job_id":"` + job + `","status":"completed","result":{"video_id":"v_` + job + `","cost":5}}`
}

// baseServer starts a config: loopback listeners, a 1 KiB body limit, a
// short shutdown and one source; tests append targets and routes (and
// sometimes more sources).
const baseServer = `
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  max_body_bytes: 1024
  shutdown_timeout: 2s
sources:
  - name: hoox
    path: /hooks/hoox
`

// ---------------------------------------------------------------------------
// 1. Fan-out

func TestFanOutByTask(t *testing.T) {
	a, b, c := newSink(t, "a", ok), newSink(t, "b", ok), newSink(t, "c", ok)
	h := startRelay(t, render(baseServer+`
targets:
  - name: a
    url: {{a}}
    headers: {X-Team: videos, Authorization: "Bearer token-a"}
  - name: b
    url: {{b}}
  - name: c
    url: {{c}}
    headers: {X-Team: avatars}
routes:
  - name: videos
    match: {task: [video_generate, video_export]}
    targets: [a, b]
  - name: avatars
    match: {task: [avatar_create, avatar_edit]}
    targets: [b, c]
`, a, b, c), "")

	// Odd whitespace, key order, escapes and non-ASCII: the targets must
	// get these bytes, not a re-encoding.
	events := []struct {
		name    string
		body    string
		targets []string
	}{
		{"video_generate", "{\n  \"status\" : \"completed\",\t\"task\":\"video_generate\" ,\"job_id\":\"run_ünï_1\",\n\"result\":{\"z\":1,\"a\":2.50,\"note\":\"🎬 \\u00e9 \\\"q\\\" \\/\"}}  \n", []string{"a", "b"}},
		{"video_export", `{"job_id":"run_0002","task":"video_export","status":"failed","error":{"code":"X","message":"…"},"result":null}`, []string{"a", "b"}},
		{"avatar_create", `{ "task":"avatar_create","avatar_id":"avtr_1","look_id":"look_1","status":"completed","result":[1,2,3e2] }`, []string{"b", "c"}},
		{"avatar_edit", "{\"look_id\":\"look_edit_789\",\r\n\"avatar_id\":\"avtr_abc\",\"task\":\"avatar_edit\",\"status\":\"error\",\"error\":{\"code\":\"GENERATION_FAILED\",\"message\":\"日本語\"}}", []string{"b", "c"}},
	}
	sent := map[string]string{}     // event id -> body
	wantAt := map[string][]string{} // target -> event ids
	taskOf := map[string]string{}   // event id -> task
	for _, ev := range events {
		before := time.Now()
		r := h.post(t, "/hooks/hoox", ev.body)
		ans := r.answer(t)
		if r.status != http.StatusOK || ans.Status != "accepted" {
			t.Fatalf("%s: POST %q\n got %s\nwant 200 accepted", ev.name, ev.body, r)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: answer Content-Type %q, want application/json", ev.name, ct)
		}
		if ans.Targets == nil || !sameSet(*ans.Targets, ev.targets) {
			t.Errorf("%s: answer targets %v, want %v (answer %s)", ev.name, ans.Targets, ev.targets, r)
		}
		at, okID := relay.EventTime(ans.EventID)
		if !okID || at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: event_id %q does not encode a receive time near now (got %v, ok %v)", ev.name, ans.EventID, at, okID)
		}
		if strings.ContainsAny(ans.EventID, "/?#%&+ ") {
			t.Errorf("%s: event_id %q is not URL-safe", ev.name, ans.EventID)
		}
		sent[ans.EventID] = ev.body
		taskOf[ans.EventID] = ev.name
		for _, tg := range ev.targets {
			wantAt[tg] = append(wantAt[tg], ans.EventID)
		}
	}

	t.Run("unrouted event answers targets []", func(t *testing.T) {
		r := h.post(t, "/hooks/hoox", `{"task":"image_upscale","status":"completed"}`)
		ans := r.answer(t)
		if r.status != http.StatusOK || ans.Status != "accepted" || !bytes.Contains(r.body, []byte(`"targets":[]`)) {
			t.Errorf("unrouted event: got %s, want 200 {\"status\":\"accepted\",\"event_id\":...,\"targets\":[]}", r)
		}
		sent[ans.EventID] = "unrouted"
	})

	extra := map[string]map[string]string{
		"a": {"X-Team": "videos", "Authorization": "Bearer token-a"},
		"c": {"X-Team": "avatars"},
	}
	for _, s := range []*sink{a, b, c} {
		t.Run("target "+s.name, func(t *testing.T) {
			want := wantAt[s.name]
			s.waitCount(t, len(want), 5*time.Second)
			got := s.requests()
			gotIDs := make([]string, len(got))
			for i, r := range got {
				gotIDs[i] = r.id()
			}
			if !sameSet(gotIDs, want) || len(gotIDs) != len(want) {
				t.Fatalf("target %s received Webhook-Ids %v, want exactly %v", s.name, gotIDs, want)
			}
			for _, r := range got {
				id := r.id()
				if string(r.body) != sent[id] {
					t.Errorf("target %s, event %s: body\n got %q\nwant %q (byte for byte)", s.name, id, r.body, sent[id])
				}
				checkHeader(t, s.name, r, "Content-Type", "application/json")
				checkHeader(t, s.name, r, "Hooxrelay-Task", taskOf[id])
				checkHeader(t, s.name, r, "Hooxrelay-Attempt", "1")
				if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "hooxrelay") {
					t.Errorf("target %s: User-Agent %q, want hooxrelay/<version>", s.name, ua)
				}
				ts, err := strconv.ParseInt(r.header.Get("Webhook-Timestamp"), 10, 64)
				if err != nil || math.Abs(float64(time.Now().Unix()-ts)) > 5 {
					t.Errorf("target %s: Webhook-Timestamp %q, want unix seconds near %d", s.name, r.header.Get("Webhook-Timestamp"), time.Now().Unix())
				}
				for k, v := range extra[s.name] {
					checkHeader(t, s.name, r, k, v)
				}
				if s.name == "b" {
					for _, k := range []string{"X-Team", "Authorization"} {
						if v := r.header.Get(k); v != "" {
							t.Errorf("target b got header %s: %q configured for another target", k, v)
						}
					}
				}
			}
		})
	}
}

func checkHeader(t *testing.T, target string, r recorded, name, want string) {
	t.Helper()
	if got := r.header.Get(name); got != want {
		t.Errorf("target %s, event %s: header %s = %q, want %q", target, r.id(), name, got, want)
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// ---------------------------------------------------------------------------
// 2. Duplicates

func TestDuplicates(t *testing.T) {
	a, b := newSink(t, "a", ok), newSink(t, "b", ok)
	h := startRelay(t, render(baseServer+`
  - name: other
    path: /hooks/other
targets:
  - name: a
    url: {{a}}
  - name: b
    url: {{b}}
routes:
  - name: all
    targets: [a, b]
`, a, b), "")

	t.Run("serial", func(t *testing.T) {
		cases := []struct {
			name          string
			first, second string
			path2         string // where the second goes; "" = the same source
			wantDuplicate bool
		}{
			{"same body", videoBody("dup_1"), videoBody("dup_1"), "", true},
			{"same job and status, other fields differ", videoBody("dup_2"),
				`{"status":"completed","job_id":"dup_2","task":"video_generate","result":{"video_id":"other"}}`, "", true},
			{"same avatar and look", `{"task":"avatar_edit","avatar_id":"av1","look_id":"lk1","status":"completed"}`,
				`{"task":"avatar_edit","avatar_id":"av1","look_id":"lk1","status":"completed","result":{"x":1}}`, "", true},
			{"same job, other status", videoBody("dup_3"),
				`{"task":"video_generate","job_id":"dup_3","status":"failed"}`, "", false},
			{"same job, other task", videoBody("dup_4"),
				`{"task":"video_export","job_id":"dup_4","status":"completed"}`, "", false},
			{"same avatar, other look", `{"task":"avatar_create","avatar_id":"av2","look_id":"lk1","status":"completed"}`,
				`{"task":"avatar_create","avatar_id":"av2","look_id":"lk2","status":"completed"}`, "", false},
			{"same body, other source", videoBody("dup_5"), videoBody("dup_5"), "/hooks/other", false},
			{"unknown task, same body", `{"task":"image_upscale","status":"done","n":1}`,
				`{"task":"image_upscale","status":"done","n":1}`, "", true},
			{"unknown task, same fields, other bytes", `{"task":"image_upscale","status":"done","n":2}`,
				`{"task":"image_upscale", "status":"done","n":2}`, "", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				first := h.send(t, tc.first)
				path := cmp.Or(tc.path2, "/hooks/hoox")
				r := h.post(t, path, tc.second)
				ans := r.answer(t)
				if tc.wantDuplicate {
					want := `{"status":"duplicate","event_id":"` + first + `"}`
					if r.status != http.StatusOK || string(bytes.TrimSpace(r.body)) != want {
						t.Errorf("first POST %s -> %s\nthen POST %s %s\n got %s\nwant 200 %s", tc.first, first, path, tc.second, r, want)
					}
				} else if r.status != http.StatusOK || ans.Status != "accepted" || ans.EventID == first {
					t.Errorf("first POST %s -> %s\nthen POST %s %s\n got %s\nwant 200 accepted with a new event_id", tc.first, first, path, tc.second, r)
				}
			})
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		const n = 24
		body := videoBody("concurrent_1")
		start := make(chan struct{})
		answers := make([]reply, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				answers[i] = h.post(t, "/hooks/hoox", body)
			})
		}
		close(start)
		wg.Wait()
		accepted, duplicates := 0, 0
		var acceptedID string
		ids := map[string]int{}
		for _, r := range answers {
			a := r.answer(t)
			ids[a.EventID]++
			switch {
			case r.status == http.StatusOK && a.Status == "accepted":
				accepted++
				acceptedID = a.EventID
			case r.status == http.StatusOK && a.Status == "duplicate":
				duplicates++
			default:
				t.Errorf("concurrent POST %s: got %s, want 200 accepted or duplicate", body, r)
			}
		}
		if accepted != 1 || duplicates != n-1 || len(ids) != 1 {
			t.Fatalf("%d concurrent POSTs of one payload: %d accepted, %d duplicate, event ids %v; want 1 accepted, %d duplicate, one event id",
				n, accepted, duplicates, ids, n-1)
		}
		// Every delivery of this event has been created by now (at
		// ingest); once each target has it and the relay counted one
		// delivery per target, a second copy can only be a bug.
		for _, s := range []*sink{a, b} {
			storetest.Eventually(t, 5*time.Second, func() error {
				if got := s.ids()[acceptedID]; got != 1 {
					return fmt.Errorf("target %s received event %s %d times, want 1", s.name, acceptedID, got)
				}
				return nil
			})
		}
		// Send a marker after and wait for it: a second copy of the
		// duplicated event would have been queued before the marker.
		marker := h.send(t, videoBody("concurrent_marker"))
		for _, s := range []*sink{a, b} {
			storetest.Eventually(t, 5*time.Second, func() error {
				if s.ids()[marker] == 0 {
					return fmt.Errorf("target %s has not received marker %s yet", s.name, marker)
				}
				return nil
			})
			if got := s.ids()[acceptedID]; got != 1 {
				t.Errorf("target %s received the concurrently sent event %s %d times, want exactly 1", s.name, acceptedID, got)
			}
		}
		m := h.metrics(t)
		if v, _ := metricValue(m, "hooxrelay_ingress_requests_total", map[string]string{"outcome": "duplicate", "task": "video_generate"}); v < n-1 {
			t.Errorf("hooxrelay_ingress_requests_total{outcome=duplicate} = %v, want at least %d", v, n-1)
		}
	})
}

// ---------------------------------------------------------------------------
// 3. Every ingress answer of docs/http.md

func TestIngressAnswers(t *testing.T) {
	a := newSink(t, "a", ok)
	h := startRelay(t, render(baseServer+`
  - name: limited
    path: /hooks/limited
    rate_limit: {rps: 1, burst: 2}
targets:
  - name: a
    url: {{a}}
routes:
  - name: all
    targets: [a]
`, a), "")

	expectJSON := func(t *testing.T, what string, r reply, status int, body string) {
		t.Helper()
		if r.status != status || string(bytes.TrimSpace(r.body)) != body {
			t.Errorf("%s\n got %s\nwant %d %s", what, r, status, body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", what, ct)
		}
	}

	t.Run("200 accepted", func(t *testing.T) {
		body := videoBody("answers_1")
		r := h.post(t, "/hooks/hoox", body)
		ans := r.answer(t)
		want := `{"status":"accepted","event_id":"` + ans.EventID + `","targets":["a"]}`
		expectJSON(t, "POST "+body, r, http.StatusOK, want)
		if !strings.HasPrefix(ans.EventID, "evt_") {
			t.Errorf("event_id %q, want evt_<ulid>", ans.EventID)
		}
		t.Run("200 duplicate", func(t *testing.T) {
			r := h.post(t, "/hooks/hoox", body)
			expectJSON(t, "POST the same "+body, r, http.StatusOK, `{"status":"duplicate","event_id":"`+ans.EventID+`"}`)
		})
	})

	t.Run("400 invalid_payload", func(t *testing.T) {
		cases := []struct {
			name, body, field string // field "" = the body as a whole
		}{
			{"not JSON", `{"task":`, ""},
			{"not JSON at all", `task=video_generate`, ""},
			{"empty body", ``, ""},
			{"JSON array", `[{"task":"video_generate","job_id":"j","status":"completed"}]`, ""},
			{"JSON string", `"video_generate"`, ""},
			{"null", `null`, ""},
			{"trailing garbage", videoBody("trailing") + `x`, ""},
			{"missing task", `{"job_id":"j","status":"completed"}`, "task"},
			{"empty task", `{"task":"","job_id":"j","status":"completed"}`, "task"},
			{"task not a string", `{"task":7,"job_id":"j","status":"completed"}`, "task"},
			{"task null", `{"task":null,"status":"completed"}`, "task"},
			{"video task missing job_id", `{"task":"video_generate","status":"completed"}`, "job_id"},
			{"video task empty job_id", `{"task":"video_export","job_id":"","status":"completed"}`, "job_id"},
			{"video task job_id a number", `{"task":"video_export","job_id":12,"status":"completed"}`, "job_id"},
			{"avatar task missing avatar_id", `{"task":"avatar_create","look_id":"l","status":"completed"}`, "avatar_id"},
			{"avatar task missing look_id", `{"task":"avatar_edit","avatar_id":"a","status":"completed"}`, "look_id"},
			{"status missing", `{"task":"video_generate","job_id":"j"}`, "status"},
			{"status a number", `{"task":"video_generate","job_id":"j","status":200}`, "status"},
			{"status empty", `{"task":"avatar_edit","avatar_id":"a","look_id":"l","status":""}`, "status"},
			{"unknown task missing status", `{"task":"image_upscale"}`, "status"},
			{"line break in task", `{"task":"evil\r\nX-Injected: 1","status":"s"}`, "task"},
			{"job_id not UTF-8", "{\"task\":\"video_generate\",\"job_id\":\"z\xff\",\"status\":\"s\"}", "job_id"},
			{"lone surrogate in status", `{"task":"video_generate","job_id":"j","status":"\ud800"}`, "status"},
			{"task twice", `{"task":"image_upscale","task":"video_generate","job_id":"j","status":"s"}`, "task"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := h.post(t, "/hooks/hoox", tc.body)
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("POST %q: Content-Type %q, want application/json", tc.body, ct)
				}
				var got map[string]any
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatalf("POST %q: answer %s is not JSON: %v", tc.body, r, err)
				}
				msg, _ := got["message"].(string)
				field, hasField := got["field"]
				keys := slices.Sorted(maps.Keys(got))
				wantKeys := []string{"error", "message"}
				if tc.field != "" {
					wantKeys = []string{"error", "field", "message"}
				}
				if r.status != http.StatusBadRequest || got["error"] != "invalid_payload" || msg == "" ||
					!slices.Equal(keys, wantKeys) || (tc.field != "" && field != tc.field) || (tc.field == "" && hasField) {
					t.Errorf("POST %q\n got %s\nwant 400 {\"error\":\"invalid_payload\",\"message\":\"…\"%s}", tc.body, r,
						map[bool]string{true: `,"field":"` + tc.field + `"`, false: ""}[tc.field != ""])
				}
			})
		}
		// Nothing refused is stored or delivered: once a valid marker sent
		// after them arrives, no refused body may have.
		marker := h.send(t, videoBody("after_invalid"))
		storetest.Eventually(t, 3*time.Second, func() error {
			if a.ids()[marker] == 0 {
				return fmt.Errorf("target has not received marker %s yet", marker)
			}
			return nil
		})
		for _, r := range a.requests() {
			for _, tc := range cases {
				if string(r.body) == tc.body {
					t.Errorf("invalid payload %q (%s) was delivered to the target", tc.body, tc.name)
				}
			}
		}
	})

	t.Run("404 not_found", func(t *testing.T) {
		for _, tc := range []struct{ method, path string }{
			{http.MethodPost, "/hooks/nope"},
			{http.MethodPost, "/hooks/hoox/"},
			{http.MethodPost, "/"},
			{http.MethodGet, "/hooks"},
		} {
			r := h.do(t, tc.method, h.url+tc.path, strings.NewReader(videoBody("x")), nil)
			expectJSON(t, tc.method+" "+tc.path, r, http.StatusNotFound, `{"error":"not_found"}`)
		}
	})

	t.Run("405 method_not_allowed", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			var body io.Reader
			if m != http.MethodGet {
				body = strings.NewReader(videoBody("method"))
			}
			r := h.do(t, m, h.url+"/hooks/hoox", body, nil)
			expectJSON(t, m+" /hooks/hoox", r, http.StatusMethodNotAllowed, `{"error":"method_not_allowed"}`)
			if allow := r.header.Get("Allow"); allow != "POST" {
				t.Errorf("%s /hooks/hoox: Allow %q, want POST", m, allow)
			}
		}
	})

	t.Run("413 payload_too_large", func(t *testing.T) {
		max := int(h.cfg.Server.MaxBodyBytes) // 1024
		cases := []struct {
			name    string
			size    int
			chunked bool // no Content-Length: the limit must hold while reading
			want    int
		}{
			{"exactly max_body_bytes with Content-Length", max, false, http.StatusOK},
			{"exactly max_body_bytes, chunked", max, true, http.StatusOK},
			{"one byte over with Content-Length", max + 1, false, http.StatusRequestEntityTooLarge},
			{"far over with Content-Length", 64 * max, false, http.StatusRequestEntityTooLarge},
			{"one byte over, chunked", max + 1, true, http.StatusRequestEntityTooLarge},
			{"far over, chunked", 64 * max, true, http.StatusRequestEntityTooLarge},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				// A valid webhook padded with whitespace, its own job id
				// each time so that the accepted cases are not duplicates.
				valid := videoBody(fmt.Sprintf("size_%d", i))
				body := valid + strings.Repeat(" ", tc.size-len(valid))
				var rd io.Reader = strings.NewReader(body)
				if tc.chunked {
					rd = io.MultiReader(rd) // hides the length from net/http
				}
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+"/hooks/hoox", rd)
				if err != nil {
					t.Fatal(err)
				}
				if tc.chunked != (req.ContentLength == 0) {
					t.Fatalf("test setup: chunked %v but ContentLength %d", tc.chunked, req.ContentLength)
				}
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatalf("POST %d bytes: %v", tc.size, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r := reply{status: resp.StatusCode, header: resp.Header, body: b}
				what := fmt.Sprintf("POST %d bytes (max_body_bytes %d, chunked %v)", tc.size, max, tc.chunked)
				if tc.want == http.StatusOK {
					if r.status != http.StatusOK || r.answer(t).Status != "accepted" {
						t.Errorf("%s: got %s, want 200 accepted", what, r)
					}
					return
				}
				expectJSON(t, what, r, http.StatusRequestEntityTooLarge,
					`{"error":"payload_too_large","message":"the body is over the limit of 1024 bytes (server.max_body_bytes)"}`)
			})
		}
	})

	t.Run("415 unsupported_encoding", func(t *testing.T) {
		for _, coding := range []string{"gzip", "GZIP", "identity, br", "x-custom"} {
			r := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader("\x1f\x8b\x08 not JSON"),
				http.Header{"Content-Encoding": {coding}})
			name := strings.TrimSpace(coding[strings.LastIndex(coding, ",")+1:])
			expectJSON(t, "POST with Content-Encoding "+coding, r, http.StatusUnsupportedMediaType,
				`{"error":"unsupported_encoding","message":"Content-Encoding \"`+name+`\" is not accepted: send the JSON body as it is, without Content-Encoding"}`)
			if ae := r.header.Get("Accept-Encoding"); ae != "identity" {
				t.Errorf("415 Accept-Encoding %q, want identity", ae)
			}
		}
		// identity is no coding at all.
		r := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(videoBody("identity")), http.Header{"Content-Encoding": {"identity"}})
		if r.status != http.StatusOK {
			t.Errorf("POST with Content-Encoding identity: %s, want 200", r)
		}
	})

	t.Run("429 rate_limited", func(t *testing.T) {
		// rps 1, burst 2: two pass at once, the third is refused. Invalid
		// bodies are enough: the limit is checked before the body.
		var got []reply
		for range 3 {
			got = append(got, h.post(t, "/hooks/limited", `{}`))
		}
		for i, r := range got[:2] {
			if r.status != http.StatusBadRequest {
				t.Errorf("request %d within the burst of 2: got %s, want 400 (passed the rate limit, refused as invalid)", i+1, r)
			}
		}
		expectJSON(t, "third request within a second at rps 1 burst 2", got[2], http.StatusTooManyRequests, `{"error":"rate_limited"}`)
		if ra, err := strconv.Atoi(got[2].header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
			t.Errorf("429 Retry-After %q, want a whole number of seconds, 1 or 2", got[2].header.Get("Retry-After"))
		}
		// The limit is per source: the unlimited source still accepts.
		h.send(t, videoBody("not_limited"))
	})
}

func TestIngressStoreFailure(t *testing.T) {
	a := newSink(t, "a", ok)
	h := startRelay(t, render(baseServer+`
targets:
  - name: a
    url: {{a}}
routes:
  - name: all
    targets: [a]
`, a), "", func(o *boltstore.Options) {
		// No background pruning: closing the store right after opening it
		// races with the pruner (boltstore TestCloseWhilePruningIsRaceFree).
		o.Retention, o.DedupTTL = 0, 0
	})
	h.send(t, videoBody("before_failure"))
	if r := h.admin(t, "/readyz"); r.status != http.StatusOK {
		t.Fatalf("GET /readyz with a working store: got %s, want 200", r)
	}
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	body := videoBody("after_failure")
	r := h.post(t, "/hooks/hoox", body)
	if r.status != http.StatusServiceUnavailable || string(bytes.TrimSpace(r.body)) != `{"error":"unavailable"}` ||
		r.header.Get("Content-Type") != "application/json" {
		t.Errorf("POST %s with the store closed\n got %s\nwant 503 {\"error\":\"unavailable\"}", body, r)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("503 Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	if r := h.admin(t, "/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the store closed: got %s, want 503", r)
	}
	if r := h.admin(t, "/healthz"); r.status != http.StatusOK {
		t.Errorf("GET /healthz with the store closed: got %s, want 200 (the process runs)", r)
	}
	if v := h.metric(t, "hooxrelay_ingress_requests_total", map[string]string{"outcome": "unavailable"}); v != 1 {
		t.Errorf("hooxrelay_ingress_requests_total{outcome=unavailable} = %v, want 1", v)
	}
}

// ---------------------------------------------------------------------------
// 4. Retries

// A retry must go out when it is due, not at the dispatcher's next poll
// (PollInterval, 5s): the store has to have the delivery back in line when
// Complete returns.
func TestRetryGoesOutWhenDueNotAtNextPoll(t *testing.T) {
	s := newSink(t, "t", failFirst(1, http.StatusServiceUnavailable))
	h := startRelay(t, render(baseServer+`
targets:
  - name: t
    url: {{t}}
    retry: {initial_interval: 100ms, max_interval: 1s, multiplier: 2, jitter: 0}
routes:
  - name: all
    targets: [t]
`, s), "")
	h.send(t, videoBody("wake"))
	s.waitCount(t, 1, 2*time.Second)
	storetest.Eventually(t, 2*time.Second, func() error {
		reqs := s.requests()
		if len(reqs) < 2 {
			return fmt.Errorf("%v after a 503, with initial_interval 100ms, the retry has not come (the dispatcher polls every 5s)", time.Since(reqs[0].at).Round(time.Millisecond))
		}
		if gap := reqs[1].at.Sub(reqs[0].at); gap > time.Second {
			return fmt.Errorf("the retry came %v after the first attempt, want about 100ms", gap)
		}
		return nil
	})
}

func TestRetryBackoffGrowsByMultiplier(t *testing.T) {
	s := newSink(t, "flaky", failFirst(4, http.StatusServiceUnavailable))
	h := startRelay(t, render(baseServer+`
targets:
  - name: flaky
    url: {{flaky}}
    retry: {max_attempts: 10, initial_interval: 100ms, max_interval: 10s, multiplier: 2, jitter: 0}
routes:
  - name: all
    targets: [flaky]
`, s), "")
	id := h.send(t, videoBody("backoff"))
	s.waitCount(t, 5, 5*time.Second)
	h.waitDeliveries(t, "flaky", "delivered", 1, 2*time.Second)

	reqs := s.requests()
	if len(reqs) != 5 {
		t.Fatalf("target received %d requests, want 5 (4 failures then a success)", len(reqs))
	}
	for i, r := range reqs {
		if r.id() != id || r.attempt() != strconv.Itoa(i+1) {
			t.Errorf("request %d: Webhook-Id %q Hooxrelay-Attempt %q, want %q and %d", i+1, r.id(), r.attempt(), id, i+1)
		}
	}
	const slack = 5 * time.Millisecond
	var gaps []time.Duration
	for i := 1; i < len(reqs); i++ {
		gaps = append(gaps, reqs[i].at.Sub(reqs[i-1].at))
	}
	for i, g := range gaps {
		want := 100 * time.Millisecond << i
		if g < want-slack {
			t.Errorf("gap between attempts %d and %d is %v, want at least %v (initial 100ms × 2^%d); all gaps %v", i+1, i+2, g, want, i, gaps)
		}
	}
	for i := 1; i < len(gaps); i++ {
		ratio := float64(gaps[i]) / float64(gaps[i-1])
		if ratio < 1.6 || ratio > 2.6 {
			t.Errorf("gap %d / gap %d = %.2f, want about 2 (multiplier 2, jitter 0); gaps %v", i+1, i, ratio, gaps)
		}
	}
	m := h.metrics(t)
	for outcome, want := range map[string]float64{"retry": 4, "delivered": 1, "dead": 0} {
		if v, _ := metricValue(m, "hooxrelay_deliveries_total", map[string]string{"target": "flaky", "outcome": outcome}); v != want {
			t.Errorf("hooxrelay_deliveries_total{outcome=%q} = %v, want %v", outcome, v, want)
		}
	}
}

func TestRetryAfterLengthensDelay(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter string
		maxInt     string
		wantMin    time.Duration
		wantMax    time.Duration
	}{
		{"429 Retry-After 1 over a 50ms backoff", http.StatusTooManyRequests, "1", "10s", time.Second, 2 * time.Second},
		{"503 Retry-After 1 over a 50ms backoff", http.StatusServiceUnavailable, "1", "10s", time.Second, 2 * time.Second},
		{"429 Retry-After capped at max_interval", http.StatusTooManyRequests, "30", "300ms", 300 * time.Millisecond, 1200 * time.Millisecond},
		{"500 Retry-After ignored", http.StatusInternalServerError, "30", "10s", 50 * time.Millisecond, 900 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, "t", func(n int) answer {
				if n == 1 {
					return answer{status: tc.status, retryAfter: tc.retryAfter}
				}
				return answer{}
			})
			h := startRelay(t, render(baseServer+`
targets:
  - name: t
    url: {{t}}
    retry: {max_attempts: 5, initial_interval: 50ms, max_interval: `+tc.maxInt+`, multiplier: 2, jitter: 0}
routes:
  - name: all
    targets: [t]
`, s), "")
			h.send(t, videoBody("retry_after"))
			s.waitCount(t, 2, tc.wantMax+3*time.Second)
			reqs := s.requests()
			gap := reqs[1].at.Sub(reqs[0].at)
			if gap < tc.wantMin-5*time.Millisecond || gap > tc.wantMax {
				t.Errorf("first answer %d with Retry-After %s (initial_interval 50ms, max_interval %s): second attempt came %v later, want between %v and %v",
					tc.status, tc.retryAfter, tc.maxInt, gap, tc.wantMin, tc.wantMax)
			}
			if a := reqs[1].attempt(); a != "2" {
				t.Errorf("second attempt has Hooxrelay-Attempt %q, want 2", a)
			}
		})
	}
}

func TestDeadDeliveries(t *testing.T) {
	cases := []struct {
		name         string
		answer       answer
		maxAttempts  int
		wantAttempts int
	}{
		{"400 is dead after one attempt", answer{status: http.StatusBadRequest}, 5, 1},
		{"404 is dead after one attempt", answer{status: http.StatusNotFound}, 5, 1},
		{"422 is dead after one attempt", answer{status: http.StatusUnprocessableEntity}, 5, 1},
		{"redirect is not followed and is dead", answer{status: http.StatusFound, location: "/elsewhere"}, 5, 1},
		{"500 until max_attempts 3", answer{status: http.StatusInternalServerError}, 3, 3},
		{"408 until max_attempts 2", answer{status: http.StatusRequestTimeout}, 2, 2},
		{"425 until max_attempts 2", answer{status: http.StatusTooEarly}, 2, 2},
		{"max_attempts 1 never retries", answer{status: http.StatusBadGateway}, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, "t", always(tc.answer))
			h := startRelay(t, render(baseServer+fmt.Sprintf(`
targets:
  - name: t
    url: {{t}}
    retry: {max_attempts: %d, initial_interval: 50ms, max_interval: 1s, multiplier: 2, jitter: 0}
routes:
  - name: all
    targets: [t]
`, tc.maxAttempts), s), "")
			id := h.send(t, videoBody("dead"))
			h.waitDeliveries(t, "t", "dead", 1, 5*time.Second)
			// Dead is final: no attempt can follow once it is recorded.
			reqs := s.requests()
			if len(reqs) != tc.wantAttempts {
				t.Fatalf("target answering %d (max_attempts %d) got %d attempts before the delivery went dead, want %d",
					tc.answer.status, tc.maxAttempts, len(reqs), tc.wantAttempts)
			}
			for i, r := range reqs {
				if r.id() != id || r.attempt() != strconv.Itoa(i+1) {
					t.Errorf("attempt %d: Webhook-Id %q Hooxrelay-Attempt %q, want %q and %d", i+1, r.id(), r.attempt(), id, i+1)
				}
				if strings.HasPrefix(string(r.body), "sink") || r.header.Get("Referer") != "" {
					t.Errorf("attempt %d looks like a followed redirect: %v", i+1, r.header)
				}
			}
			m := h.metrics(t)
			if v, _ := metricValue(m, "hooxrelay_deliveries_total", map[string]string{"target": "t", "outcome": "retry"}); v != float64(tc.wantAttempts-1) {
				t.Errorf("hooxrelay_deliveries_total{outcome=retry} = %v, want %d", v, tc.wantAttempts-1)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 5. Circuit breaker

func TestBreakerStopsAttemptsWhileOpen(t *testing.T) {
	s := newSink(t, "down", always(answer{status: http.StatusServiceUnavailable}))
	h := startRelay(t, render(baseServer+`
targets:
  - name: down
    url: {{down}}
    retry: {max_attempts: 4, initial_interval: 50ms, max_interval: 1s, multiplier: 2, jitter: 0}
    breaker: {min_requests: 3, failure_ratio: 0.5, interval: 60s, open_timeout: 500ms}
routes:
  - name: all
    targets: [down]
`, s), "")
	const events = 10
	var ids []string
	for i := range events {
		ids = append(ids, h.send(t, videoBody(fmt.Sprintf("breaker_%d", i))))
	}
	storetest.Eventually(t, 3*time.Second, func() error {
		if st := h.srv.Dispatcher().BreakerState("down"); st != "open" {
			return fmt.Errorf("breaker of target down is %q after %d failed attempts, waiting for open", st, s.count())
		}
		return nil
	})
	storetest.Eventually(t, time.Second, func() error {
		if v := h.metric(t, "hooxrelay_breaker_state", map[string]string{"target": "down"}); v != 2 {
			return fmt.Errorf("hooxrelay_breaker_state{target=down} = %v, waiting for 2 (open)", v)
		}
		return nil
	})

	// While open, at most one probe per open_timeout. Without a breaker,
	// 10 events retried at 50ms, 100ms, 200ms would make dozens of
	// attempts in this window.
	const window = 1250 * time.Millisecond
	before := s.count()
	time.Sleep(window) // counting what happens during a window: no outcome to poll for
	during := s.count() - before
	if limit := int(window/(500*time.Millisecond)) + 2; during > limit {
		t.Errorf("target down, breaker open (open_timeout 500ms): %d attempts in %v, want at most %d (one probe per open_timeout)", during, window, limit)
	}
	if v, _ := metricValue(h.metrics(t), "hooxrelay_deliveries_total", map[string]string{"target": "down", "outcome": "dead"}); v != 0 {
		t.Errorf("%v deliveries went dead while the breaker was open; waiting deliveries must not be charged", v)
	}

	s.setRespond(ok)
	storetest.Eventually(t, 5*time.Second, func() error {
		var missing []string
		got := okIDs(s)
		for _, id := range ids {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("after the target recovered, %d of %d events not delivered yet (breaker %q)", len(missing), events, h.srv.Dispatcher().BreakerState("down"))
		}
		return nil
	})
	maxAttempt := map[string]int{}
	for _, r := range s.requests() {
		n, _ := strconv.Atoi(r.attempt())
		maxAttempt[r.id()] = max(maxAttempt[r.id()], n)
	}
	for id, n := range maxAttempt {
		if n > 4 {
			t.Errorf("event %s reached Hooxrelay-Attempt %d, want at most max_attempts 4", id, n)
		}
	}
	h.waitDeliveries(t, "down", "delivered", events, 2*time.Second)
	if v, _ := metricValue(h.metrics(t), "hooxrelay_deliveries_total", map[string]string{"target": "down", "outcome": "dead"}); v != 0 {
		t.Errorf("hooxrelay_deliveries_total{target=down,outcome=dead} = %v, want 0", v)
	}
	storetest.Eventually(t, 2*time.Second, func() error {
		st := h.srv.Dispatcher().BreakerState("down")
		v := h.metric(t, "hooxrelay_breaker_state", map[string]string{"target": "down"})
		if st != "closed" || v != 0 {
			return fmt.Errorf("after recovery breaker is %q and hooxrelay_breaker_state %v, want closed and 0", st, v)
		}
		return nil
	})
}

// okIDs returns the event ids that the sink answered with a 2xx.
func okIDs(s *sink) map[string]bool {
	got := map[string]bool{}
	for _, r := range s.requests() {
		if r.status >= 200 && r.status < 300 {
			got[r.id()] = true
		}
	}
	return got
}

// ---------------------------------------------------------------------------
// 6. Rate-limited target

func TestTargetRateLimit(t *testing.T) {
	slow, fast := newSink(t, "paced", ok), newSink(t, "fast", ok)
	h := startRelay(t, render(baseServer+`
targets:
  - name: paced
    url: {{paced}}
    rate_limit: {rps: 20, burst: 1}
  - name: fast
    url: {{fast}}
routes:
  - name: all
    targets: [paced, fast]
`, slow, fast), "")
	const n = 40
	start := make(chan struct{})
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for i := range n {
		wg.Go(func() {
			<-start
			r := h.post(t, "/hooks/hoox", videoBody(fmt.Sprintf("paced_%d", i)))
			if r.status == http.StatusOK && r.answer(t).Status == "accepted" {
				accepted.Add(1)
			} else {
				t.Errorf("burst POST %d: got %s, want 200 accepted", i, r)
			}
		})
	}
	sent := time.Now()
	close(start)
	wg.Wait()
	acked := time.Since(sent)
	atAck := slow.count()
	if accepted.Load() != n {
		t.Fatalf("%d of %d burst webhooks accepted", accepted.Load(), n)
	}
	if atAck >= n/2 {
		t.Errorf("all %d acks took %v; by then the paced target (20 rps) had received %d, want fewer than %d: ingest must not wait on a target",
			n, acked, atAck, n/2)
	}
	fast.waitCount(t, n, 3*time.Second)
	if got := slow.count(); got >= n {
		t.Errorf("the unlimited target got its %d events only after the paced one had all %d: a target's rate limit slowed another", n, got)
	}
	slow.waitCount(t, n, 5*time.Second)
	reqs := slow.requests()
	// From the second arrival on: the first one also waits for a new
	// connection, which shortens the measured span by that much.
	span := reqs[len(reqs)-1].at.Sub(reqs[1].at)
	if want := time.Duration(n-2) * time.Second / 20; span < want-150*time.Millisecond {
		t.Errorf("paced target (rps 20, burst 1) received events 2 to %d within %v, want them spread over about %v (at least %v)",
			n, span, want, want-150*time.Millisecond)
	}
	// No window of one second holds more than rps + burst requests.
	for i := range reqs {
		j := i
		for j < len(reqs) && reqs[j].at.Sub(reqs[i].at) < time.Second {
			j++
		}
		if j-i > 21+2 {
			t.Errorf("paced target received %d requests within one second from request %d; want at most about 21 (rps 20 + burst 1)", j-i, i+1)
			break
		}
	}
	if ids := slow.ids(); len(ids) != n {
		t.Errorf("paced target received %d distinct events, want %d (rate limiting must not fail or drop deliveries)", len(ids), n)
	}
}

// ---------------------------------------------------------------------------
// 7. Isolation between targets

func TestSlowTargetNeverDelaysAnother(t *testing.T) {
	cases := []struct {
		name string
		bad  func(t *testing.T) *sink
	}{
		{"hangs until timeout", func(t *testing.T) *sink { return newSink(t, "bad", always(answer{hang: true})) }},
		{"answers after 2.5s", func(t *testing.T) *sink { return newSink(t, "bad", always(answer{delay: 2500 * time.Millisecond})) }},
		{"connection refused", func(t *testing.T) *sink { return &sink{name: "bad", url: refusedURL(t)} }},
		{"failing with 503", func(t *testing.T) *sink {
			return newSink(t, "bad", always(answer{status: http.StatusServiceUnavailable}))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad, good := tc.bad(t), newSink(t, "good", ok)
			h := startRelay(t, render(baseServer+`
targets:
  - name: bad
    url: {{bad}}
    timeout: 3s
    max_in_flight: 2
    retry: {initial_interval: 50ms, max_interval: 1s, jitter: 0}
  - name: good
    url: {{good}}
    max_in_flight: 2
routes:
  - name: all
    targets: [bad, good]
`, bad, good), "")
			start := time.Now()
			const n = 8
			for i := range n {
				h.send(t, videoBody(fmt.Sprintf("isolation_%d", i)))
			}
			good.waitCount(t, n, 2*time.Second)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("healthy target got its %d events %v after they were sent while target bad %s; want well under bad's 3s timeout", n, took, tc.name)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 8. Shutdown

func TestShutdown(t *testing.T) {
	t.Run("delivery in flight returns to pending", func(t *testing.T) {
		stuck := newSink(t, "t", always(answer{hang: true}))
		const tmpl = `
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shutdown_timeout: 500ms
sources:
  - name: hoox
    path: /hooks/hoox
targets:
  - name: t
    url: {{t}}
    timeout: 30s
routes:
  - name: all
    targets: [t]
`
		h := startRelay(t, render(tmpl, stuck), "")
		body := videoBody("in_flight")
		id := h.send(t, body)
		stuck.waitCount(t, 1, 3*time.Second)

		runDone := make(chan error, 1)
		stopped := time.Now()
		go func() { runDone <- h.stop() }()
		// Not ready means /readyz answers 503 or its listener is closed;
		// still answering 200 a moment after cancel is a failure.
		storetest.Eventually(t, 2*time.Second, func() error {
			resp, err := h.client.Get(h.adminURL + "/readyz")
			if err != nil {
				return nil // the admin listener is closed
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				return nil
			}
			if since := time.Since(stopped); since > 100*time.Millisecond {
				t.Fatalf("GET /readyz %v after cancel answered %s, want 503 (or the listener closed)", since.Round(time.Millisecond), resp.Status)
			}
			return fmt.Errorf("GET /readyz after cancel answered %s, waiting for 503", resp.Status)
		})
		select {
		case err := <-runDone:
			if err != nil {
				t.Fatalf("Run after cancel returned %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5s of cancel (shutdown_timeout 500ms)")
		}
		if took := time.Since(stopped); took > 2*time.Second {
			t.Errorf("shutdown took %v, want about shutdown_timeout (500ms)", took)
		}
		if _, err := h.client.Post(h.url+"/hooks/hoox", "application/json", strings.NewReader(videoBody("late"))); err == nil {
			t.Error("ingress still accepts connections after Run returned")
		}
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}

		healthy := newSink(t, "t", ok)
		h2 := startRelay(t, render(tmpl, healthy), h.dbPath)
		healthy.waitCount(t, 1, 3*time.Second)
		r := healthy.requests()[0]
		if r.id() != id || string(r.body) != body {
			t.Errorf("after restart the target got Webhook-Id %q body %q, want %q %q", r.id(), r.body, id, body)
		}
		if r.attempt() != "1" {
			t.Errorf("after restart Hooxrelay-Attempt is %q, want 1: an attempt cut off by shutdown is not charged", r.attempt())
		}
		h2.waitDeliveries(t, "t", "delivered", 1, 2*time.Second)
	})

	t.Run("delivery in flight finishes", func(t *testing.T) {
		slowSink := newSink(t, "t", always(answer{delay: 300 * time.Millisecond}))
		const tmpl = `
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shutdown_timeout: 3s
sources:
  - name: hoox
    path: /hooks/hoox
targets:
  - name: t
    url: {{t}}
    max_in_flight: 1
routes:
  - name: all
    targets: [t]
`
		h := startRelay(t, render(tmpl, slowSink), "")
		id := h.send(t, videoBody("finishes"))
		slowSink.waitCount(t, 1, 3*time.Second)
		if err := h.stop(); err != nil {
			t.Fatalf("Run after cancel returned %v, want nil", err)
		}
		if rs := slowSink.requests(); len(rs) != 1 || rs[0].status != http.StatusOK {
			t.Fatalf("slow target recorded %d requests before shutdown, want 1 answered 200", len(rs))
		}
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}

		after := newSink(t, "t", ok)
		h2 := startRelay(t, render(tmpl, after), h.dbPath)
		marker := h2.send(t, videoBody("marker"))
		storetest.Eventually(t, 3*time.Second, func() error {
			if after.ids()[marker] == 0 {
				return fmt.Errorf("restarted target has not received the marker %s yet (got %v)", marker, after.ids())
			}
			return nil
		})
		if n := after.ids()[id]; n != 0 {
			t.Errorf("event %s, delivered while shutting down, was delivered again %d times after restart; want 0", id, n)
		}
	})
}

// ---------------------------------------------------------------------------
// 9. Admin

func TestAdminEndpoints(t *testing.T) {
	a := newSink(t, "a", ok)
	h := startRelay(t, render(baseServer+`
targets:
  - name: a
    url: {{a}}
routes:
  - name: videos
    match: {task: [video_generate]}
    targets: [a]
`, a), "")

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
		got, found := metricValue(m, "hooxrelay_ingress_requests_total", tc.labels)
		if got != tc.want || (tc.want > 0 && !found) {
			t.Errorf("hooxrelay_ingress_requests_total%v = %v (present %v), want %v", tc.labels, got, found, tc.want)
		}
	}
	if v, ok := metricValue(m, "hooxrelay_ingress_duration_seconds_count", nil); !ok || v != 6 {
		t.Errorf("hooxrelay_ingress_duration_seconds_count = %v (present %v), want 6", v, ok)
	}
	if v, _ := metricValue(m, "hooxrelay_unrouted_events_total", map[string]string{"source": "hoox"}); v < 1 {
		t.Errorf("hooxrelay_unrouted_events_total = %v, want the unrouted avatar and unknown-task events counted", v)
	}
	for _, name := range []string{"hooxrelay_ingress_duration_seconds_bucket", "hooxrelay_breaker_state"} {
		if _, ok := metricValue(m, name, nil); !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	h.waitDeliveries(t, "a", "delivered", 1, 2*time.Second)
	if _, ok := metricValue(h.metrics(t), "hooxrelay_delivery_duration_seconds_count", map[string]string{"target": "a"}); !ok {
		t.Error("/metrics has no hooxrelay_delivery_duration_seconds for target a after a delivery")
	}
}

func TestMetricsQueueDepth(t *testing.T) {
	stuck := newSink(t, "t", always(answer{hang: true}))
	h := startRelay(t, render(baseServer+`
targets:
  - name: t
    url: {{t}}
    max_in_flight: 1
routes:
  - name: all
    targets: [t]
`, stuck), "")
	for i := range 3 {
		h.send(t, videoBody(fmt.Sprintf("depth_%d", i)))
	}
	stuck.waitCount(t, 1, 3*time.Second)
	storetest.Eventually(t, 3*time.Second, func() error {
		m := h.metrics(t)
		if v, ok := metricValue(m, "hooxrelay_queue_depth", map[string]string{"target": "t", "state": "pending"}); !ok || v < 2 {
			return fmt.Errorf("hooxrelay_queue_depth{target=t,state=pending} = %v (present %v) with 3 deliveries queued behind a hanging target, want at least 2", v, ok)
		}
		return nil
	})
}
