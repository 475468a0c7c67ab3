package relay

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/shape"
)

// shapedTarget is a target whose requests are shaped the way a legacy
// endpoint wants them: a PUT to a URL template, a header template, a jq
// body sent as a form, bearer auth and a signature.
func shapedTarget(tb testing.TB) *target {
	tb.Helper()
	return benchTarget(tb, shape.Settings{
		Method:  "PUT",
		Headers: map[string]string{"X-Job": "{job_id}"},
		Body:    `{id: .job_id, state: (if .status == "completed" then "DONE" else "FAILED" end), url: .result.thumbnail_url, cost: .result.cost}`,
		Format:  "form",
		Auth:    shape.Auth{Kind: "bearer", Token: "t0ken"},
	})
}

// benchTarget is a signing target to a loopback URL template, its
// requests shaped as req says.
func benchTarget(tb testing.TB, req shape.Settings) *target {
	tb.Helper()
	t, err := newTarget(TargetSettings{
		Name: "legacy", URL: "http://127.0.0.1:9/jobs/{job_id}/done", Timeout: time.Second, MaxInFlight: 1,
		SigningSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		Request:        req,
	}, nil, DispatcherOptions{Logger: slog.New(slog.DiscardHandler), Metrics: NewMetrics(nil), UserAgent: "hooxrelay/bench", Now: time.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

var benchEvent = &Event{
	ID: "evt_01JH0000000000000000000000", Task: "video_generate",
	Payload: []byte(`{"task":"video_generate","job_id":"run_0123","status":"completed","result":{"video_id":"video_ab","thumbnail_url":"https://cdn.example/t.jpg","cost":5,"created_at":"2024-01-15T10:30:00Z"}}`),
}

// shapedRequest is what an attempt of a shaped delivery does before it
// sends: shape the request, then build the HTTP request with its headers
// and signature.
func shapedRequest(tb testing.TB, t *target) {
	out, de := t.build(context.Background(), benchEvent)
	if de != nil {
		tb.Fatal(de)
	}
	if _, err := t.request(context.Background(), benchEvent, out, 1, ""); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkShapedRequest is the relay's cost of shaping one delivery
// (template + jq + form), up to the request handed to the HTTP client.
func BenchmarkShapedRequest(b *testing.B) {
	t := shapedTarget(b)
	b.ReportAllocs()
	for b.Loop() {
		shapedRequest(b, t)
	}
}

// BenchmarkUnshapedRequest is the same for a target without a request
// block (the URL template alone): the baseline of BenchmarkShapedRequest.
func BenchmarkUnshapedRequest(b *testing.B) {
	t := benchTarget(b, shape.Settings{})
	b.ReportAllocs()
	for b.Loop() {
		shapedRequest(b, t)
	}
}

// The allocations of a shaped request are bounded: a change that makes
// shaping allocate per field or per byte fails here.
func TestShapedRequestAllocs(t *testing.T) {
	tg := shapedTarget(t)
	const limit = 120
	if n := testing.AllocsPerRun(200, func() { shapedRequest(t, tg) }); n > limit {
		t.Errorf("a shaped request makes %.0f allocations, want at most %d", n, limit)
	}
}
