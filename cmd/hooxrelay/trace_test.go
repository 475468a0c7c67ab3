package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// A webhook's attempts share its trace across a crash of the relay: the
// ones after the restart carry the same trace id as those before, each
// with its own parent id, and the restarted relay exports their spans as
// children of the ingest span stored with the event.
func TestTraceSurvivesRestart(t *testing.T) {
	var spansMu sync.Mutex
	spans := map[string]string{} // attempt span id → parent span id, trace id checked below
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("collector: %v", err)
			return
		}
		spansMu.Lock()
		defer spansMu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					if s.Name == "hooxrelay.attempt" && hex.EncodeToString(s.TraceId) == inboundTrace {
						spans[hex.EncodeToString(s.SpanId)] = hex.EncodeToString(s.ParentSpanId)
					}
				}
			}
		}
	}))
	defer collector.Close()

	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var got []http.Header
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer target.Close()
	attempts := func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return append([]http.Header(nil), got...)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 30s for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	dir := t.TempDir()
	ingest, admin := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "hooxrelay.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `server: {listen: %q, admin_listen: %q, shutdown_timeout: 5s}
store: {path: %q}
sources: [{name: hoox, path: /hooks/hoox}]
targets:
  - name: a
    url: %s/a
    retry: {initial_interval: 50ms, max_interval: 100ms, max_attempts: 1000, jitter: 0}
    breaker: {min_requests: 1000}
routes: [{name: all, targets: [a]}]
tracing: {otlp_endpoint: %s}
`, ingest, admin, filepath.Join(dir, "relay"), target.URL, collector.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, cfg, ingest, admin)
	req, _ := http.NewRequest(http.MethodPost, "http://"+ingest+"/hooks/hoox", strings.NewReader(`{"task":"video_generate","job_id":"j1","status":"completed"}`))
	req.Header.Set("Traceparent", "00-"+inboundTrace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	waitFor("two failed attempts", func() bool { return len(attempts()) >= 2 })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	before := len(attempts())

	down.Store(false)
	p = startRelay(t, cfg, ingest, admin)
	waitFor("the delivery after the restart", func() bool { return len(attempts()) > before })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait() // flushes the spans

	seen := map[string]bool{}
	all := attempts()
	for i, h := range all {
		tid, sid, _, ok := relay.ParseTraceparent(h.Get("Traceparent"))
		if !ok || tid != inboundTrace || seen[sid] {
			t.Errorf("attempt %s (%d of %d, %d before the restart): traceparent %q, want trace %s and a parent id of its own",
				h.Get("Hooxrelay-Attempt"), i+1, len(all), before, h.Get("Traceparent"), inboundTrace)
		}
		seen[sid] = true
	}
	spansMu.Lock()
	defer spansMu.Unlock()
	after := all[before:]
	var ingestSpan string
	for _, h := range after {
		_, sid, _, _ := relay.ParseTraceparent(h.Get("Traceparent"))
		parent, ok := spans[sid]
		switch {
		case !ok:
			t.Errorf("no span exported for attempt %s (traceparent %s) after the restart; spans %v", h.Get("Hooxrelay-Attempt"), h.Get("Traceparent"), spans)
		case ingestSpan == "":
			ingestSpan = parent
		case parent != ingestSpan:
			t.Errorf("attempt span %s has parent %s, another %s: want the one ingest span", sid, parent, ingestSpan)
		}
	}
	if ingestSpan == "" || ingestSpan == "00f067aa0ba902b7" {
		t.Errorf("the attempts' parent is %q, want the stored ingest span (a child of the inbound span)", ingestSpan)
	}
	t.Logf("%d attempts, %d before the kill, all in trace %s; attempt spans after the restart are children of ingest span %s", len(all), before, inboundTrace, ingestSpan)
}

const inboundTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
