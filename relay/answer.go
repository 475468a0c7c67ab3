package relay

// The ingress's answers and the log line of each webhook request.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// appendAccepted appends the 200 "accepted" answer, as writeJSON would
// encode it, without reflection.
func appendAccepted(b []byte, id string, targets []string) []byte {
	b = append(b, `{"status":"accepted","event_id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"targets":[`...)
	for i, t := range targets {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	return append(b, "]}\n"...)
}

// appendJSONString appends s as encoding/json quotes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// overloaded answers a request that the body budget cannot take: 503, so
// that the sender retries a moment later, on a connection closed after the
// answer so that the unread body is not waited for.
func (in *Ingress) overloaded(w http.ResponseWriter, outcome *string, line *outcomeLine) {
	*outcome, line.err = "overloaded", errOverBudget
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Connection", "close")
	writeRaw(w, http.StatusServiceUnavailable, bodyUnavailable)
}

// contentCoding returns the request's content coding when it has one the
// relay does not take (any but identity), quoted and cut short for the
// answer; "" for a plain body. Hoox sends plain JSON, and a body that must
// first be inflated is one more thing to bound.
func contentCoding(h http.Header) string {
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return c[:min(len(c), 40)]
			}
		}
	}
	return ""
}

// outcomeLine is the log line of one webhook request. Its keys are the
// same for every outcome: source, outcome, task, event_id, dedup_key,
// targets, remote, reason (of a 401), err, duration, and at debug level the
// body, truncated.
type outcomeLine struct {
	source, task, outcome string
	eventID, dedupKey     string
	targets               []string
	remote, reason        string
	err                   error
	duration              time.Duration
	body                  []byte // at most maxLoggedBody, only at debug level
	bodyBytes             int
}

// maxLoggedBody bounds the body in a debug log line.
const maxLoggedBody = 512

func (l *outcomeLine) log(ctx context.Context, log *slog.Logger) {
	msg, level := "webhook refused", slog.LevelWarn
	switch l.outcome {
	case "accepted":
		msg, level = "webhook accepted", slog.LevelInfo
	case "duplicate":
		msg, level = "webhook duplicate", slog.LevelInfo
	case "rate_limited":
		level = slog.LevelInfo // a flood would otherwise flood the log at warn
	case "unavailable":
		msg, level = "webhook not stored; answered 503 so the sender retries", slog.LevelError
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("source", l.source), slog.String("outcome", l.outcome))
	if l.task != "" {
		attrs = append(attrs, slog.String("task", l.task))
	}
	if l.eventID != "" {
		attrs = append(attrs, slog.String("event_id", l.eventID), slog.String("dedup_key", l.dedupKey))
	}
	if l.outcome == "accepted" {
		attrs = append(attrs, slog.Any("targets", l.targets))
	}
	attrs = append(attrs, slog.String("remote", l.remote))
	if l.reason != "" {
		attrs = append(attrs, slog.String("reason", l.reason))
	}
	if l.err != nil {
		attrs = append(attrs, slog.String("err", l.err.Error()))
	}
	attrs = append(attrs, slog.Duration("duration", l.duration))
	if l.body != nil {
		attrs = append(attrs, slog.String("body", string(l.body)), slog.Int("body_bytes", l.bodyBytes))
	}
	log.LogAttrs(ctx, level, msg, attrs...)
}

// taskLabel bounds the task label of metrics: Hoox may add tasks, but a
// sender must not be able to create label values at will.
func taskLabel(task string) string {
	switch {
	case task == "":
		return "none"
	case KnownTask(task):
		return task
	}
	return "other"
}
