package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
)

// Tracer starts the spans of a webhook: one for its ingest, one per
// delivery attempt, all in one W3C trace. The relay's own (the default)
// only makes the ids that the traceparent header carries; an exporting
// one (package tracing) also records and sends the spans.
type Tracer interface {
	// Ingest starts the ingest span, a child of inbound (the request's
	// traceparent, "" or invalid: a new trace), and returns its
	// traceparent, stored with the event, and the function that ends it.
	Ingest(ctx context.Context, inbound, source string) (trace string, end func(outcome string))
	// Attempt starts the span of attempt n of ev to target, a child of
	// ev.Trace, and returns the traceparent the attempt carries and the
	// function that ends the span with the answer's status (0: none).
	Attempt(ctx context.Context, ev *Event, target string, n int) (traceparent string, end func(status int, err string))
}

// DefaultTracer returns the Tracer a relay uses when given none.
func DefaultTracer() Tracer { return ids{} }

// ids is the Tracer that records nothing: it only makes the ids.
type ids struct{}

func (ids) Ingest(_ context.Context, inbound, _ string) (string, func(string)) {
	tid, _, flags, ok := ParseTraceparent(inbound)
	if !ok {
		tid, flags = newTraceID(), "01"
	}
	return Traceparent(tid, newSpanID(), flags), noEnd
}

func (ids) Attempt(_ context.Context, ev *Event, _ string, _ int) (string, func(int, string)) {
	tid, flags := EventTrace(ev)
	return Traceparent(tid, newSpanID(), flags), noAttemptEnd
}

func noEnd(string)             {}
func noAttemptEnd(int, string) {}

// EventTrace returns the trace id and flags of ev's attempts: those of
// ev.Trace or, for an event stored without one, an id made from the
// event id, so that all its attempts still share one trace.
func EventTrace(ev *Event) (traceID, flags string) {
	if tid, _, f, ok := ParseTraceparent(ev.Trace); ok {
		return tid, f
	}
	sum := sha256.Sum256([]byte(ev.ID))
	return hex.EncodeToString(sum[:16]), "01"
}

// Traceparent formats a version 00 traceparent.
func Traceparent(traceID, spanID, flags string) string {
	return "00-" + traceID + "-" + spanID + "-" + flags
}

// ParseTraceparent takes a W3C traceparent apart: trace id (32 lowercase
// hex digits, not all zero), parent id (16, not all zero) and flags (2).
// A version other than 00 is read as 00 is, as the recommendation says,
// except ff, which is invalid.
func ParseTraceparent(s string) (traceID, spanID, flags string, ok bool) {
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return "", "", "", false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' || !lowerHex(s[:2]) || s[:2] == "ff" {
		return "", "", "", false
	}
	traceID, spanID, flags = s[3:35], s[36:52], s[53:55]
	if !lowerHex(traceID) || !lowerHex(spanID) || !lowerHex(flags) || allZero(traceID) || allZero(spanID) {
		return "", "", "", false
	}
	return traceID, spanID, flags, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

func newTraceID() string {
	var b [16]byte
	for {
		putRand(b[:8])
		putRand(b[8:])
		if id := hex.EncodeToString(b[:]); !allZero(id) {
			return id
		}
	}
}

func newSpanID() string {
	var b [8]byte
	for {
		putRand(b[:])
		if id := hex.EncodeToString(b[:]); !allZero(id) {
			return id
		}
	}
}

// putRand fills 8 bytes from the runtime's per-thread generator: ids
// need to be unique, not secret.
func putRand(b []byte) {
	v := rand.Uint64()
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// TraceLen is the longest a stored trace context is: a length byte, 16
// bytes of trace id, 8 of span id, 1 of flags.
const TraceLen = 26

// AppendTrace appends the traceparent tp as the stores keep it, 26 bytes
// where the text takes 55: a length byte, 0 when there is none (or tp
// does not parse), else 25, and then the ids and flags.
func AppendTrace(b []byte, tp string) []byte {
	tid, sid, flags, ok := ParseTraceparent(tp)
	if !ok {
		return append(b, 0)
	}
	b = append(b, TraceLen-1)
	b, _ = hex.AppendDecode(b, []byte(tid))
	b, _ = hex.AppendDecode(b, []byte(sid))
	b, _ = hex.AppendDecode(b, []byte(flags))
	return b
}

// ReadTrace reads what AppendTrace wrote at the start of b, and returns
// the traceparent and the rest of b; ok is false when b does not start
// with a stored trace context.
func ReadTrace(b []byte) (tp string, rest []byte, ok bool) {
	switch {
	case len(b) > 0 && b[0] == 0:
		return "", b[1:], true
	case len(b) < TraceLen || b[0] != TraceLen-1:
		return "", b, false
	}
	t := b[1:TraceLen]
	return Traceparent(hex.EncodeToString(t[:16]), hex.EncodeToString(t[16:24]), hex.EncodeToString(t[24:])), b[TraceLen:], true
}

// traceKey carries an attempt's traceparent from attempt to request.
type traceKey struct{}
