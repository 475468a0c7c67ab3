// Package tracing exports the spans of each webhook over OTLP/HTTP with the
// OpenTelemetry SDK: one for its ingest, one per delivery attempt, the
// attempts children of the ingest. It is the exporting relay.Tracer; the
// relay's default one only makes the ids of the traceparent header.
package tracing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/hooxrelay/hooxrelay/relay"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span names.
const (
	IngestSpan  = "hooxrelay.ingest"
	AttemptSpan = "hooxrelay.attempt"
)

// Settings say where spans go.
type Settings struct {
	// Endpoint is the collector's base URL, such as
	// http://127.0.0.1:4318; spans go to its /v1/traces. "" leaves it to
	// the OTEL_EXPORTER_OTLP_* environment variables.
	Endpoint string
	// SampleRatio is the share of new traces recorded; a webhook that
	// comes with a traceparent follows its sampled flag.
	SampleRatio float64
	// Version is the relay's, as service.version.
	Version string
}

// Tracer is a relay.Tracer that records and exports spans. Close flushes
// them.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

var _ relay.Tracer = (*Tracer)(nil)

// New returns a Tracer exporting as set says. Nothing is sent until the
// first span ends; an unreachable collector costs dropped spans, never a
// delay.
func New(ctx context.Context, set Settings) (*Tracer, error) {
	var opts []otlptracehttp.Option
	if set.Endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(set.Endpoint, "/")+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	res := resource.NewSchemaless(attribute.String("service.name", "hooxrelay"), attribute.String("service.version", set.Version))
	p := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(set.SampleRatio))),
	)
	return &Tracer{provider: p, tracer: p.Tracer("github.com/hooxrelay/hooxrelay/relay")}, nil
}

// Close exports the spans not yet sent, within ctx.
func (t *Tracer) Close(ctx context.Context) error { return t.provider.Shutdown(ctx) }

// Ingest starts the ingest span, a child of inbound when it is a valid
// traceparent.
func (t *Tracer) Ingest(ctx context.Context, inbound, source string) (string, func(string)) {
	parent := context.WithoutCancel(ctx)
	if sc, ok := spanContext(inbound); ok {
		parent = trace.ContextWithRemoteSpanContext(parent, sc)
	}
	_, span := t.tracer.Start(parent, IngestSpan, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("hooxrelay.source", source)))
	return traceparent(span.SpanContext()), func(outcome string) {
		span.SetAttributes(attribute.String("hooxrelay.outcome", outcome))
		if outcome != "accepted" && outcome != "duplicate" {
			span.SetStatus(codes.Error, outcome)
		}
		span.End()
	}
}

// Attempt starts the span of one attempt, a child of the event's ingest
// span.
func (t *Tracer) Attempt(ctx context.Context, ev *relay.Event, target string, n int) (string, func(int, string)) {
	sc, ok := spanContext(ev.Trace)
	if !ok {
		// Stored before traces were kept: the trace id the relay gives
		// such events, under a parent id made from the event id too.
		tid, flags := relay.EventTrace(ev)
		sum := sha256.Sum256([]byte("span:" + ev.ID))
		sc, _ = spanContext(relay.Traceparent(tid, hex.EncodeToString(sum[:8]), flags))
	}
	_, span := t.tracer.Start(trace.ContextWithRemoteSpanContext(context.WithoutCancel(ctx), sc), AttemptSpan,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("hooxrelay.target", target), attribute.Int("hooxrelay.attempt", n),
			attribute.String("hooxrelay.event_id", ev.ID)))
	return traceparent(span.SpanContext()), func(status int, err string) {
		if status > 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		if err != "" {
			span.SetStatus(codes.Error, err)
		}
		span.End()
	}
}

func spanContext(tp string) (trace.SpanContext, bool) {
	tid, sid, flags, ok := relay.ParseTraceparent(tp)
	if !ok {
		return trace.SpanContext{}, false
	}
	t, err1 := trace.TraceIDFromHex(tid)
	s, err2 := trace.SpanIDFromHex(sid)
	f, err3 := strconv.ParseUint(flags, 16, 8)
	if err1 != nil || err2 != nil || err3 != nil {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: t, SpanID: s, TraceFlags: trace.TraceFlags(f) & trace.FlagsSampled, Remote: true}), true
}

func traceparent(sc trace.SpanContext) string {
	return relay.Traceparent(sc.TraceID().String(), sc.SpanID().String(), sc.TraceFlags().String())
}
