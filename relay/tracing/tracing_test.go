package tracing_test

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/relay/tracing"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/hooxrelay/hooxrelay/rules"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP collector: it decodes each export request and
// keeps the spans.
type collector struct {
	mu    sync.Mutex
	spans []span
}

type span struct {
	name, trace, id, parent string
	attrs                   map[string]string
}

func newCollector(t *testing.T) (*collector, string) {
	c := &collector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
			t.Errorf("collector: %s %s (%s) is not an OTLP/HTTP protobuf export", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					sp := span{name: s.Name, trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId),
						parent: hex.EncodeToString(s.ParentSpanId), attrs: map[string]string{}}
					for _, a := range s.Attributes {
						sp.attrs[a.Key] = a.Value.String()
					}
					c.spans = append(c.spans, sp)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// A webhook that comes with a traceparent is exported as its ingest span,
// a child of the inbound span, and one span per attempt, children of the
// ingest span, each the parent id of its attempt's traceparent.
func TestSpansExported(t *testing.T) {
	col, endpoint := newCollector(t)
	var mu sync.Mutex
	var headers []string
	n := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		headers = append(headers, r.Header.Get("Traceparent"))
		if n++; n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer target.Close()

	tr, err := tracing.New(t.Context(), tracing.Settings{Endpoint: endpoint, SampleRatio: 1, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := pebblestore.Open(filepath.Join(t.TempDir(), "store"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, ln := startRelay(t, store, tr, target.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln, nil) }()

	const inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/hooks/hoox",
		strings.NewReader(`{"task":"video_generate","job_id":"j1","status":"completed"}`))
	req.Header.Set("Traceparent", inbound)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	storetest.Eventually(t, 10*time.Second, func() error {
		c, err := store.Counts(ctx)
		if err == nil && c["media"].Delivered != 1 {
			err = io.ErrUnexpectedEOF
		}
		return err
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	var ingest *span
	var attempts []span
	for i, s := range col.spans {
		switch s.name {
		case tracing.IngestSpan:
			ingest = &col.spans[i]
		case tracing.AttemptSpan:
			attempts = append(attempts, s)
		}
	}
	for _, s := range col.spans {
		t.Logf("span %s trace %s id %s parent %s %v", s.name, s.trace, s.id, s.parent, s.attrs)
	}
	if ingest == nil || ingest.trace != "4bf92f3577b34da6a3ce929d0e0e4736" || ingest.parent != "00f067aa0ba902b7" {
		t.Fatalf("ingest span %+v, want one in the inbound trace, child of the inbound span", ingest)
	}
	if len(attempts) != 2 || len(headers) != 2 {
		t.Fatalf("%d attempt spans and %d attempts, want 2 of each", len(attempts), len(headers))
	}
	for i, a := range attempts {
		if a.trace != ingest.trace || a.parent != ingest.id {
			t.Errorf("attempt span %+v, want trace %s and parent %s (the ingest span)", a, ingest.trace, ingest.id)
		}
		if want := relay.Traceparent(a.trace, a.id, "01"); headers[i] != want && headers[1-i] != want {
			t.Errorf("no attempt carried traceparent %s of attempt span %s (headers %v)", want, a.id, headers)
		}
	}
}

func startRelay(t *testing.T, store relay.Store, tr relay.Tracer, url string) (*relay.Server, net.Listener) {
	table, err := rules.Compile([]rules.Route{{Name: "all", Targets: []string{"media"}}})
	if err != nil {
		t.Fatal(err)
	}
	set := relay.Settings{
		Server: relay.ServerSettings{MaxBodyBytes: 1 << 20, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
			WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, ShutdownTimeout: 2 * time.Second},
		DedupTTL: time.Hour,
		Sources:  []relay.SourceSettings{{Name: "hoox", Path: "/hooks/hoox", Verify: verify.Settings{Kind: verify.KindNone}}},
		Targets: []relay.TargetSettings{{Name: "media", URL: url, Timeout: 5 * time.Second, MaxInFlight: 4,
			RateLimit: relay.RateLimit{Burst: 1},
			Retry:     relay.RetryPolicy{MaxAttempts: 5, InitialInterval: 10 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, MaxAge: time.Hour},
			Breaker:   relay.BreakerSettings{FailureRatio: 0.5, MinRequests: 10, Interval: time.Minute, OpenTimeout: time.Minute}}},
		Routes: table,
	}
	srv, err := relay.NewServer(set, store, relay.ServerOptions{Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return srv, ln
}
