package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/hooxrelay/hooxrelay/rules"
	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Ingress is the webhook ingress handler (docs/http.md): for each source it
// checks, validates, deduplicates, routes and durably stores webhooks, and
// answers only once the event is on disk. It never waits on a target.
// It is safe for concurrent use.
type Ingress struct {
	inFlight atomic.Int64 // requests being handled, for Busy
	router   *httprouter.Router
	store    Store
	table    *rules.Table
	ttl      time.Duration
	maxBody  int64
	// writeWait bounds a request's wait for its durable write, counted
	// from the end of its body, so that a stuck disk answers 503 (and the
	// sender retries); answerBy, counted from its start, keeps that answer
	// within the server's write timeout, while the connection can carry it.
	writeWait, answerBy time.Duration
	proxies             []netip.Prefix // trusted proxies, whose X-Forwarded-For counts
	opts                IngressOptions
	needDoc             bool   // a route has conditions on the payload
	bodyTooLarge        []byte // the 413 answer, which states the limit
}

// IngressOptions are the parts of an Ingress that are not in its Settings.
type IngressOptions struct {
	Logger  *slog.Logger // nil discards
	Metrics *Metrics     // nil keeps unexported metrics
	// Accepted is called after an event is durably stored, to wake the
	// dispatcher of its targets.
	Accepted func(ev *Event)
	// Tracer starts each webhook's trace; nil makes the ids only.
	Tracer Tracer
	// StoreFailed, when set, is told of a write the store refused.
	StoreFailed func(error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// budget is shared with the ingresses that reloads build; nil means
	// one of this ingress's own.
	budget *bodyBudget
	// rejected keeps refused requests for GET /api/v1/rejected; nil keeps
	// none.
	rejected *rejectedLog
}

// maxLimiters bounds the per-IP limiters of one source: a flood from many
// addresses evicts old entries instead of growing memory.
const maxLimiters = 10000

// keptHeaders are the request headers stored with an event. Anything that
// may carry a secret (Authorization, signatures, tokens) is left out.
var keptHeaders = []string{"Content-Type", "User-Agent", "X-Request-Id", "X-Forwarded-For"}

// NewIngress builds the ingress handler for the sources and routes of set
// over store.
func NewIngress(set *Settings, store Store, opts IngressOptions) (*Ingress, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Tracer == nil {
		opts.Tracer = ids{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.budget == nil {
		opts.budget = newBodyBudget(set.Server.MaxBufferedBodyBytes)
	}
	in := &Ingress{
		store:     store,
		table:     set.Routes,
		ttl:       set.DedupTTL,
		maxBody:   set.Server.MaxBodyBytes,
		writeWait: writeWait(set.Server.WriteTimeout),
		answerBy:  set.Server.WriteTimeout * 3 / 4,
		proxies:   set.Server.TrustedProxies,
		opts:      opts,
		needDoc:   conditional(set),
	}
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = false
	r.HandleMethodNotAllowed = true
	sourceOf := make(map[string]string, len(set.Sources))
	for _, sc := range set.Sources {
		sourceOf[sc.Path] = sc.Name
	}
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts.Metrics.IngressRequests.WithLabelValues("none", "none", "not_found").Inc()
		writeRaw(w, http.StatusNotFound, bodyNotFound)
		opts.rejected.note(r, opts.Now(), nil, in.clientAddr(r).String(), "not_found", "no source has this path", nil)
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts.Metrics.IngressRequests.WithLabelValues(sourceOf[r.URL.Path], "none", "method_not_allowed").Inc()
		w.Header().Set("Allow", http.MethodPost)
		writeRaw(w, http.StatusMethodNotAllowed, bodyMethodNotAllowed)
		opts.rejected.note(r, opts.Now(), &source{name: sourceOf[r.URL.Path]}, in.clientAddr(r).String(), "method_not_allowed", "sources take POST only", nil)
	})
	r.PanicHandler = func(w http.ResponseWriter, _ *http.Request, v any) {
		opts.Logger.Error("ingress handler panicked", "err", v)
		w.Header().Set("Retry-After", "1")
		writeRaw(w, http.StatusServiceUnavailable, bodyUnavailable)
	}
	in.bodyTooLarge, _ = json.Marshal(ErrorJSON{Error: "payload_too_large",
		Message: fmt.Sprintf("the body is over the limit of %d bytes (server.max_body_bytes)", in.maxBody)})
	in.bodyTooLarge = append(in.bodyTooLarge, '\n')
	for i, sc := range set.Sources {
		s := &source{name: sc.Name, allow: sc.Allow, secretHeader: sc.Verify.Header, verifyKind: sc.Verify.Kind}
		var err error
		if s.verifier, err = verify.New(sc.Verify); err != nil {
			return nil, fmt.Errorf("sources[%d].verify: %w", i, err)
		}
		if sc.RateLimit.RPS > 0 {
			s.limiters = &ipLimiters{rps: rate.Limit(sc.RateLimit.RPS), burst: sc.RateLimit.Burst, m: make(map[netip.Prefix]*rate.Limiter)}
		}
		r.POST(sc.Path, func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
			in.serve(w, r, s)
		})
	}
	in.router = r
	return in, nil
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// busyAt is how many webhook requests in progress make the ingress busy:
// well above what Hoox sends in normal operation, well below a burst. At
// 16, a steady open-loop 5,000/s (a few ms to ack each) already counted
// as busy, and the deliveries it yielded to fell behind the ingest.
const busyAt = 32

// Busy reports whether a burst of webhooks is being taken in, so that
// delivery can yield the CPU to acking them.
func (in *Ingress) Busy() bool { return in.inFlight.Load() >= busyAt }

// writeWait is three quarters of the server's write timeout (which runs from
// the end of the headers, so the answer must leave well before it), and at
// most 5s: Hoox gives up on a request after 10s.
func writeWait(writeTimeout time.Duration) time.Duration {
	return min(writeTimeout*3/4, 5*time.Second)
}

// ServeHTTP implements http.Handler.
func (in *Ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in.router.ServeHTTP(w, r)
}

type source struct {
	name     string
	verifier *verify.Verifier
	// verifyKind is the verify kind, for the trail of the events.
	verifyKind string
	allow      []netip.Prefix // empty: every address
	limiters   *ipLimiters    // nil: no rate limit
	// requests caches the source's request counters by task label and
	// outcome (both bounded), so that a request costs no label lookup.
	requests sync.Map // [2]string → prometheus.Counter
	// secretHeader holds the source's token or signature: masked in the
	// rejected log.
	secretHeader string
}

// countRequest counts a request of src with the task label and outcome.
func (in *Ingress) countRequest(src *source, task, outcome string) {
	k := [2]string{task, outcome}
	c, ok := src.requests.Load(k)
	if !ok {
		c, _ = src.requests.LoadOrStore(k, in.opts.Metrics.IngressRequests.WithLabelValues(src.name, task, outcome))
	}
	c.(prometheus.Counter).Inc()
}

var (
	bodyNotFound         = []byte(`{"error":"not_found"}` + "\n")
	bodyMethodNotAllowed = []byte(`{"error":"method_not_allowed"}` + "\n")
	bodyRateLimited      = []byte(`{"error":"rate_limited"}` + "\n")
	bodyInvalidSignature = []byte(`{"error":"invalid_signature"}` + "\n")
	bodyForbidden        = []byte(`{"error":"forbidden"}` + "\n")
	bodyUnavailable      = []byte(`{"error":"unavailable"}` + "\n")
)

// answer is the 200 body: "accepted" lists the targets ([] when no route
// matched), "duplicate" has none.
type answer struct {
	Status  string    `json:"status"`
	EventID string    `json:"event_id"`
	Targets *[]string `json:"targets,omitempty"`
}

type invalidAnswer struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (in *Ingress) serve(w http.ResponseWriter, r *http.Request, src *source) {
	start := in.opts.Now()
	addr := in.clientAddr(r)
	ip := addr.String()
	// One log line per request, whatever its outcome, with the same keys.
	var (
		task, outcome string
		line          = outcomeLine{source: src.name, remote: ip}
		buf           *bytes.Buffer // back to its pool last: a refusal keeps part of it
	)
	defer func() {
		elapsed := in.opts.Now().Sub(start)
		in.countRequest(src, taskLabel(task), outcome)
		in.opts.Metrics.IngressDuration.Observe(elapsed.Seconds())
		line.task, line.outcome, line.duration = task, outcome, elapsed
		line.log(r.Context(), in.opts.Logger)
		if outcome != "accepted" && outcome != "duplicate" {
			in.opts.rejected.note(r, start, src, ip, outcome, line.why(), buf)
		}
		if buf != nil {
			bufPool.Put(buf)
		}
	}()

	if len(src.allow) > 0 && !contains(src.allow, addr) {
		outcome = "forbidden"
		writeRaw(w, http.StatusForbidden, bodyForbidden)
		return
	}
	if src.limiters != nil {
		if ok, wait := src.limiters.allow(limiterKey(addr), start); !ok {
			outcome = "rate_limited"
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeRaw(w, http.StatusTooManyRequests, bodyRateLimited)
			return
		}
	}
	if coding := contentCoding(r.Header); coding != "" {
		outcome = "unsupported_encoding"
		w.Header().Set("Accept-Encoding", "identity")
		writeJSON(w, http.StatusUnsupportedMediaType, ErrorJSON{Error: "unsupported_encoding",
			Message: fmt.Sprintf("Content-Encoding %q is not accepted: send the JSON body as it is, without Content-Encoding", coding)})
		return
	}
	if r.ContentLength > in.maxBody {
		outcome = "payload_too_large"
		writeRaw(w, http.StatusRequestEntityTooLarge, in.bodyTooLarge)
		return
	}
	// The budget is taken before a byte is read: by the declared length,
	// or chunk by chunk for a body of unknown length.
	budget := in.opts.budget
	var from io.Reader
	var reserved int64
	if n := r.ContentLength; n >= 0 {
		if !budget.reserve(n) {
			in.overloaded(w, &outcome, &line)
			return
		}
		reserved = n
		from = r.Body
	} else {
		br := &budgetReader{r: r.Body, b: budget, limit: in.maxBody + 1}
		defer func() { budget.release(br.reserved) }()
		from = br
	}
	defer budget.release(reserved)
	buf = bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // no doubling to find the end
	}
	if _, err := buf.ReadFrom(io.LimitReader(from, in.maxBody+1)); err != nil {
		if errors.Is(err, errOverBudget) {
			in.overloaded(w, &outcome, &line)
			return
		}
		outcome, line.err = "invalid_payload", err
		writeJSON(w, http.StatusBadRequest, invalidAnswer{Error: "invalid_payload", Message: "the body could not be read"})
		return
	}
	if int64(buf.Len()) > in.maxBody {
		outcome = "payload_too_large"
		writeRaw(w, http.StatusRequestEntityTooLarge, in.bodyTooLarge)
		return
	}
	body, read := buf.Bytes(), in.opts.Now()
	if in.opts.Logger.Enabled(r.Context(), slog.LevelDebug) {
		// A copy: the buffer goes back to its pool before the line is written.
		line.body, line.bodyBytes = bytes.Clone(body[:min(len(body), maxLoggedBody)]), len(body)
	}
	// Counted from here, so that slow uploads do not look like a burst.
	in.inFlight.Add(1)
	defer in.inFlight.Add(-1)
	if err := src.verifier.VerifyRequest(r, body, start); err != nil {
		outcome = "invalid_signature"
		reason := verify.Reason(err)
		in.opts.Metrics.VerifyFailures.WithLabelValues(src.name, reason).Inc()
		// The error names the header and the reason, never a value.
		line.reason, line.err = reason, err
		writeRaw(w, http.StatusUnauthorized, bodyInvalidSignature)
		return
	}
	p, err := parsePayload(body, in.needDoc)
	if err != nil {
		outcome, line.err = "invalid_payload", err
		var pe *PayloadError
		errors.As(err, &pe)
		writeJSON(w, http.StatusBadRequest, invalidAnswer{Error: "invalid_payload", Message: pe.Message, Field: pe.Field})
		return
	}
	task = p.Task
	match := in.table.Match(p.Task, p.Status, p.Doc)
	ev := &Event{
		ID:         NewEventID(start),
		Source:     src.name,
		Task:       p.Task,
		Status:     p.Status,
		DedupKey:   p.DedupKey,
		JobID:      p.JobID,
		AvatarID:   p.AvatarID,
		LookID:     p.LookID,
		ReceivedAt: start,
		RemoteAddr: ip,
		Targets:    match.Targets,
		Trail:      Trail{Verify: src.verifyKind, Routes: match.Routes, Chosen: len(match.Targets)},
		Payload:    body, // not kept by the store past Ingest, so not copied
	}
	var endSpan func(string)
	ev.Trace, endSpan = in.opts.Tracer.Ingest(r.Context(), r.Header.Get("Traceparent"), src.name)
	defer func() { endSpan(outcome) }()
	for _, h := range keptHeaders {
		if v := r.Header.Get(h); v != "" {
			if ev.Headers == nil {
				ev.Headers = make(map[string]string, len(keptHeaders))
			}
			ev.Headers[h] = v
		}
	}
	// Not the request's context: a sender that hangs up must not cut a
	// write that may already be shared with others in a commit. Counted
	// from the end of the body, so that a slow upload still gets its full
	// wait; a store refuses a write at the deadline only if it has not
	// started it, so a 503 always means "not stored".
	deadline := read.Add(in.writeWait)
	if last := start.Add(in.answerBy); last.Before(deadline) {
		deadline = last
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(r.Context()), deadline)
	res, err := in.store.Ingest(ctx, ev, in.ttl)
	cancel()
	if err != nil {
		outcome, line.err = "unavailable", err
		if in.opts.StoreFailed != nil {
			in.opts.StoreFailed(err)
		}
		w.Header().Set("Retry-After", "1")
		writeRaw(w, http.StatusServiceUnavailable, bodyUnavailable)
		return
	}
	if res.Duplicate {
		outcome, line.eventID, line.dedupKey = "duplicate", res.EventID, p.DedupKey
		writeJSON(w, http.StatusOK, answer{Status: "duplicate", EventID: res.EventID})
		return
	}
	outcome = "accepted"
	if len(match.Targets) == 0 {
		in.opts.Metrics.Unrouted.WithLabelValues(src.name, taskLabel(p.Task)).Inc()
	}
	line.eventID, line.dedupKey, line.targets = ev.ID, p.DedupKey, match.Targets
	if in.opts.Accepted != nil {
		in.opts.Accepted(ev)
	}
	writeRaw(w, http.StatusOK, appendAccepted(make([]byte, 0, 128), ev.ID, match.Targets))
}

// clientAddr is the address the allow list and the rate limit judge: the
// peer's, unless the peer is a trusted proxy; then the last address of
// X-Forwarded-For that is not a trusted proxy (the ones before it are
// whatever the client chose to send).
func (in *Ingress) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if len(in.proxies) == 0 || !contains(in.proxies, addr) {
		return addr
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return addr // a garbled hop: trust nothing before it
			}
			if a = a.Unmap(); !contains(in.proxies, a) {
				return a
			}
		}
	}
	return addr
}

// limiterKey is the rate-limit bucket of a client address (already
// unmapped by clientAddr): the address itself for IPv4, its /64 for IPv6,
// since one IPv6 client usually holds a whole /64 and could otherwise take
// a fresh bucket per request.
func limiterKey(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64) // the zero Prefix for an invalid address
	return p
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = bodyUnavailable
		status = http.StatusInternalServerError
	}
	writeRaw(w, status, append(b, '\n'))
}

// ipLimiters holds one token bucket per client address, at most maxLimiters.
type ipLimiters struct {
	rps   rate.Limit
	burst int
	mu    sync.Mutex
	m     map[netip.Prefix]*rate.Limiter
}

// allow takes a token for ip, or says how long until one is due.
func (l *ipLimiters) allow(ip netip.Prefix, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	lim, ok := l.m[ip]
	if !ok {
		if len(l.m) >= maxLimiters {
			for k := range l.m { // an arbitrary victim: map order is random
				delete(l.m, k)
				break
			}
		}
		lim = rate.NewLimiter(l.rps, l.burst)
		l.m[ip] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
