package relay_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/tracing"
)

// Every attempt carries a traceparent: one trace id for all attempts of a
// webhook, the inbound one when it came with one, a span id of its own.
func TestTraceparentOnEveryAttempt(t *testing.T) {
	flaky := newSink(t, "flaky", failFirst(2, http.StatusServiceUnavailable))
	tg := target(flaky)
	tg.Retry.InitialInterval, tg.Retry.Jitter = 10*time.Millisecond, 0
	h := startRelay(t, settingsFor(t, tg), "")

	const inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := h.do(t, http.MethodPost, h.url+"/hooks/hoox", strings.NewReader(videoBody("t1")), http.Header{"Traceparent": {inbound}})
	if r.status != http.StatusOK {
		t.Fatalf("POST with a traceparent: %v", r)
	}
	h.send(t, videoBody("t2")) // none: a new trace
	h.waitDeliveries(t, "flaky", "delivered", 2, 10*time.Second)

	traces := map[string]string{} // event id → trace id
	spans := map[string]bool{}
	for _, req := range flaky.requests() {
		tid, sid, flags, ok := relay.ParseTraceparent(req.header.Get("Traceparent"))
		if !ok {
			t.Fatalf("attempt %s of %s: traceparent %q is not valid", req.attempt(), req.id(), req.header.Get("Traceparent"))
		}
		if first, seen := traces[req.id()]; seen && first != tid {
			t.Errorf("attempt %s of %s: trace id %s, the first attempt had %s", req.attempt(), req.id(), tid, first)
		}
		traces[req.id()] = tid
		if spans[sid] || sid == "00f067aa0ba902b7" {
			t.Errorf("attempt %s of %s: parent id %s is not its own", req.attempt(), req.id(), sid)
		}
		spans[sid] = true
		if flags != "01" {
			t.Errorf("attempt %s of %s: flags %s, want 01", req.attempt(), req.id(), flags)
		}
	}
	if len(flaky.requests()) != 4 || len(traces) != 2 {
		t.Fatalf("%d attempts of %d webhooks, want 4 of 2", len(flaky.requests()), len(traces))
	}
	var carried int
	for _, tid := range traces {
		if tid == "4bf92f3577b34da6a3ce929d0e0e4736" {
			carried++
		}
	}
	if carried != 1 {
		t.Errorf("trace ids %v: want the inbound one on one webhook, a new one on the other", traces)
	}
}

func TestParseTraceparent(t *testing.T) {
	for tp, want := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      true,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": false,
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":      false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":      false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":      false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7":         false,
		"": false,
	} {
		if _, _, _, ok := relay.ParseTraceparent(tp); ok != want {
			t.Errorf("ParseTraceparent(%q) ok = %v, want %v", tp, ok, want)
		}
	}
}

// BenchmarkTraceIDs is what tracing costs a webhook when it is off: the
// ingest's traceparent and one attempt's.
func BenchmarkTraceIDs(b *testing.B) {
	ev := &relay.Event{ID: "evt_01KBEX0000000000000000000A"}
	tr := relay.DefaultTracer()
	b.ReportAllocs()
	for b.Loop() {
		var end func(string)
		ev.Trace, end = tr.Ingest(context.Background(), "", "hoox")
		end("accepted")
		_, done := tr.Attempt(context.Background(), ev, "media", 1)
		done(200, "")
	}
}

// BenchmarkDeliveryTracing acks b.N webhooks for two targets and waits
// until all are delivered: with tracing off (the traceparent ids only)
// and exporting every span to an OTLP/HTTP endpoint.
func BenchmarkDeliveryTracing(b *testing.B) {
	for _, name := range []string{"off", "otlp"} {
		b.Run(name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
			defer srv.Close()
			set := settingsFor(b, benchTarget("a", srv.URL+"/a"), benchTarget("b", srv.URL+"/b"))
			var opts relay.ServerOptions
			if name == "otlp" {
				tr, err := tracing.New(context.Background(), tracing.Settings{Endpoint: srv.URL, SampleRatio: 1})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close(context.Background())
				opts.Tracer = tr
			}
			url, store, stop := benchRelayWith(b, set, opts)
			postParallel(b, url+"/hooks/hoox")
			waitFinished(b, store, map[string]relay.State{"a": relay.Delivered, "b": relay.Delivered})
			b.StopTimer()
			stop()
		})
	}
}
