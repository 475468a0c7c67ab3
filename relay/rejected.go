package relay

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
)

// RejectedJSON is a request the ingress refused, in GET /api/v1/rejected:
// when, on which source (empty for an unknown path), from where, the
// status and outcome it got and why, its headers with secrets masked and
// the start of its body.
type RejectedJSON struct {
	At         time.Time         `json:"at"`
	Source     string            `json:"source"`
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	RemoteAddr string            `json:"remote_addr"`
	Status     int               `json:"status"`
	Outcome    string            `json:"outcome"`
	Reason     string            `json:"reason,omitempty"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	BodyBytes  int               `json:"body_bytes"`
	Truncated  bool              `json:"truncated,omitempty"`
}

// Bounds of one entry of the rejected log, so that a flood of refusals
// costs at most rejectedLog × a few KiB.
const (
	rejectedBody       = 2 << 10 // first bytes of the body kept
	rejectedHeaders    = 32      // headers kept, the rest dropped
	rejectedHeaderLen  = 256     // bytes of a header value kept
	rejectedHeaderName = 64      // bytes of a header name kept
	rejectedReason     = 512     // bytes of the reason kept
)

// masked replaces the value of a header that may carry a secret.
const masked = "***"

// secretHeaders are masked whatever the source; secretWords mask any
// header whose name holds one of them (X-Hoox-Token, X-Api-Key, ...).
var (
	secretHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "Webhook-Signature"}
	secretWords   = []string{"auth", "token", "signature", "secret", "key", "cookie", "password", "session", "sig"}
)

// rejectedLog keeps the last refused requests in a ring. Its size can
// change (a reload); 0 keeps nothing and costs nothing.
type rejectedLog struct {
	size atomic.Int64
	mu   sync.Mutex
	ring []RejectedJSON // oldest at next once full
	next int
}

func newRejectedLog(size int) *rejectedLog {
	l := &rejectedLog{}
	l.resize(size)
	return l
}

// resize keeps the newest entries that fit in size.
func (l *rejectedLog) resize(size int) {
	size = max(size, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	if int64(size) == l.size.Load() {
		return
	}
	kept := l.newest(size)
	slices.Reverse(kept) // oldest first, as add writes them
	l.ring, l.next = kept, 0
	if size > 0 {
		l.next = len(kept) % size
	}
	l.size.Store(int64(size))
}

// add writes e at next: appended while the ring fills, then over the
// oldest. next is always just after the newest entry.
func (l *rejectedLog) add(e RejectedJSON) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := int(l.size.Load())
	switch {
	case size == 0:
	case len(l.ring) < size:
		l.ring = append(l.ring, e)
		l.next = len(l.ring) % size
	default:
		l.ring[l.next] = e
		l.next = (l.next + 1) % size
	}
}

// list returns at most limit entries, newest first.
func (l *rejectedLog) list(limit int) []RejectedJSON {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.newest(limit)
}

func (l *rejectedLog) newest(limit int) []RejectedJSON {
	n := len(l.ring)
	out := make([]RejectedJSON, 0, min(limit, n))
	for i := range min(limit, n) {
		out = append(out, l.ring[((l.next-1-i)%n+n)%n])
	}
	return out
}

// note records a refused request. It runs only for refusals, after the
// answer is written; the body is what was read of it (nil when none was).
func (l *rejectedLog) note(r *http.Request, at time.Time, src *source, remote string, outcome string, reason string, body *bytes.Buffer) {
	if l == nil || l.size.Load() == 0 {
		return
	}
	e := RejectedJSON{At: at, Method: r.Method, Path: r.URL.Path, RemoteAddr: remote,
		Status: outcomeStatus(outcome), Outcome: outcome, Reason: cut(reason, rejectedReason)}
	secret := ""
	if src != nil {
		e.Source, secret = src.name, src.secretHeader
	}
	e.Headers = maskHeaders(r.Header, secret)
	if body != nil {
		b := body.Bytes()
		e.BodyBytes = len(b)
		e.Body = strings.ToValidUTF8(string(b[:min(len(b), rejectedBody)]), "\uFFFD")
		e.Truncated = len(b) > rejectedBody
	}
	l.add(e)
}

// maskHeaders copies at most rejectedHeaders of h, each value cut short,
// with the value of every header that may hold a secret (and of the
// source's own token or signature header) replaced by ***.
func maskHeaders(h http.Header, secret string) map[string]string {
	out := make(map[string]string, min(len(h), rejectedHeaders))
	for name, vs := range h {
		if len(out) == rejectedHeaders {
			break
		}
		v := strings.Join(vs, ", ")
		if isSecretHeader(name, secret) {
			v = masked
		}
		out[cut(name, rejectedHeaderName)] = cut(v, rejectedHeaderLen)
	}
	return out
}

func isSecretHeader(name, secret string) bool {
	if secret != "" && strings.EqualFold(name, secret) {
		return true
	}
	for _, s := range secretHeaders {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// cut shortens s to at most n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// outcomeStatus is the status the ingress answers for each refusal.
func outcomeStatus(outcome string) int {
	switch outcome {
	case "invalid_payload":
		return http.StatusBadRequest
	case "invalid_signature":
		return http.StatusUnauthorized
	case "forbidden":
		return http.StatusForbidden
	case "not_found":
		return http.StatusNotFound
	case "method_not_allowed":
		return http.StatusMethodNotAllowed
	case "payload_too_large":
		return http.StatusRequestEntityTooLarge
	case "unsupported_encoding":
		return http.StatusUnsupportedMediaType
	case "rate_limited":
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable // unavailable, overloaded
}

// why is the reason a refusal gives in the rejected log: the verification
// failure's reason and the error, which never holds a secret's value.
func (l *outcomeLine) why() string {
	switch {
	case l.err == nil:
		return l.reason
	case l.reason == "":
		return l.err.Error()
	}
	return l.reason + ": " + l.err.Error()
}

// apiRejected is GET /api/v1/rejected: the refused requests kept, newest
// first.
func (s *Server) apiRejected(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	writeJSON(w, http.StatusOK, map[string][]RejectedJSON{"rejected": s.rejected.list(min(limit, MaxLimit))})
}
