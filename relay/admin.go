package relay

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/docs"
	"github.com/julienschmidt/httprouter"
)

// The admin API of docs/http.md, under /api/v1. Its JSON types are exported so
// that the CLI decodes exactly what the server encodes.

// EventJSON is an event in GET /api/v1/events.
type EventJSON struct {
	EventID    string              `json:"event_id"`
	Source     string              `json:"source"`
	Task       string              `json:"task"`
	Status     string              `json:"status"`
	DedupKey   string              `json:"dedup_key"`
	JobID      string              `json:"job_id,omitempty"`
	AvatarID   string              `json:"avatar_id,omitempty"`
	LookID     string              `json:"look_id,omitempty"`
	ReceivedAt time.Time           `json:"received_at"`
	Deliveries []DeliveryStateJSON `json:"deliveries"`
}

// DeliveryStateJSON is where one delivery of a listed event stands.
type DeliveryStateJSON struct {
	Target   string `json:"target"`
	State    State  `json:"state"`
	Attempts int    `json:"attempts"`
}

// EventDetailJSON is GET /api/v1/events/{event_id}. Payload is the body as
// received: JSON when it is JSON (Hoox's always is), else a string.
type EventDetailJSON struct {
	EventID    string               `json:"event_id"`
	Source     string               `json:"source"`
	Task       string               `json:"task"`
	Status     string               `json:"status"`
	DedupKey   string               `json:"dedup_key"`
	JobID      string               `json:"job_id,omitempty"`
	AvatarID   string               `json:"avatar_id,omitempty"`
	LookID     string               `json:"look_id,omitempty"`
	ReceivedAt time.Time            `json:"received_at"`
	RemoteAddr string               `json:"remote_addr,omitempty"`
	Headers    map[string]string    `json:"headers,omitempty"`
	Payload    json.RawMessage      `json:"payload"`
	Trail      TrailJSON            `json:"trail"`
	Deliveries []DeliveryDetailJSON `json:"deliveries"`
}

// DeliveryJSON is a delivery in GET /api/v1/deliveries and the answer of a
// retry.
type DeliveryJSON struct {
	DeliveryID    string    `json:"delivery_id"`
	EventID       string    `json:"event_id"`
	Target        string    `json:"target"`
	State         State     `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastStatus    int       `json:"last_status"`
	LastError     string    `json:"last_error"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Waiting says why a pending delivery is not attempted although it is
	// due: paused, breaker_open, breaker_half_open or no_target (see
	// Dispatcher.Waiting); left out when nothing holds it back.
	// WaitingUntil is when the wait ends, when known (an open breaker's
	// half-open probe).
	Waiting      string     `json:"waiting,omitempty"`
	WaitingUntil *time.Time `json:"waiting_until,omitempty"`
	// ReplayID is the replay that last requeued or created the delivery.
	ReplayID string `json:"replay_id,omitempty"`
}

// DeliveryDetailJSON is a delivery of one event, with its attempts.
type DeliveryDetailJSON struct {
	DeliveryJSON
	History []AttemptJSON `json:"history"`
}

// AttemptJSON is one recorded attempt.
type AttemptJSON struct {
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS float64   `json:"duration_ms"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Body       string    `json:"body,omitempty"`
	// Waited and WaitedMS: what held the delivery back before the
	// attempt (Attempt.Waited); Replay: the replay that requeued it.
	Waited   string  `json:"waited,omitempty"`
	WaitedMS float64 `json:"waited_ms,omitempty"`
	Replay   string  `json:"replay,omitempty"`
}

// TargetJSON is a target in GET /api/v1/targets.
type TargetJSON struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Breaker   string `json:"breaker"`
	Paused    bool   `json:"paused"`
	Pending   int    `json:"pending"`
	Dead      int    `json:"dead"`
	Delivered int    `json:"delivered"`
}

// StatusJSON is GET /api/v1/status: which relay and which config this is.
type StatusJSON struct {
	Version    string      `json:"version"`
	StartedAt  time.Time   `json:"started_at"`
	ConfigHash string      `json:"config_hash"`
	Reloads    int         `json:"reloads"`
	LastReload *ReloadJSON `json:"last_reload,omitempty"`
	Store      string      `json:"store"`
	Durability *Durability `json:"durability,omitempty"` // stores that report it
}

// PauseJSON is the answer of POST /api/v1/targets/{name}/pause and
// /resume: the target and whether it is now paused.
type PauseJSON struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
}

// RequeuedJSON is the answer of POST /api/v1/targets/{name}/retry-dead:
// how many dead deliveries went back in line.
type RequeuedJSON struct {
	Requeued int `json:"requeued"`
}

// ErrorJSON is every error answer of the admin API.
type ErrorJSON struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

func (s *Server) deliveryJSON(d Delivery) DeliveryJSON {
	dj := DeliveryJSON{DeliveryID: d.ID(), EventID: d.EventID, Target: d.Target, State: d.State, Attempts: d.Attempts,
		NextAttemptAt: d.NextAttemptAt, LastStatus: d.LastStatus, LastError: d.LastError, UpdatedAt: d.UpdatedAt, ReplayID: d.Replay}
	if d.State == Pending {
		why, until := s.dispatcher.Waiting(d.Target)
		dj.Waiting = why
		if !until.IsZero() {
			dj.WaitingUntil = &until
		}
	}
	return dj
}

// retryChunk is how many dead letters one store call requeues, so that a
// large retry-dead is many short writes, not one long one.
const retryChunk = 500

// apiRoute is one endpoint of the admin API and the query parameters it
// takes: any other is refused, so that a misspelt or unsupported filter
// is not silently ignored.
type apiRoute struct {
	method, path string
	params       []string
	handle       httprouter.Handle
}

func (s *Server) apiRoutes() []apiRoute {
	return []apiRoute{
		{"GET", "/api/v1/status", nil, s.apiStatus},
		{"GET", "/api/v1/events", eventParams, s.apiEvents},
		{"GET", "/api/v1/events/:event_id", nil, s.apiEvent},
		{"GET", "/api/v1/deliveries", []string{"state", "target", "limit", "before"}, s.apiDeliveries},
		{"POST", "/api/v1/deliveries/:delivery_id/retry", nil, s.apiRetry},
		{"GET", "/api/v1/targets", nil, s.apiTargets},
		{"POST", "/api/v1/targets/:name/retry-dead", []string{"limit"}, s.apiRetryDead},
		{"POST", "/api/v1/targets/:name/pause", nil, s.apiPause(true)},
		{"POST", "/api/v1/targets/:name/resume", nil, s.apiPause(false)},
		{"GET", "/api/v1/rejected", []string{"limit"}, s.apiRejected},
		{"POST", "/api/v1/replays", nil, s.apiCreateReplay},
		{"GET", "/api/v1/replays", []string{"limit"}, s.apiReplays},
		{"GET", "/api/v1/replays/:replay_id", nil, s.apiReplay},
		{"DELETE", "/api/v1/replays/:replay_id", nil, s.apiCancelReplay},
		{"GET", "/api/v1/openapi.yaml", nil, apiOpenAPI},
	}
}

// onlyParams answers 400 naming the first query parameter that the
// endpoint does not take.
func onlyParams(endpoint string, params []string, next httprouter.Handle) httprouter.Handle {
	takes := "no query parameters"
	if len(params) > 0 {
		takes = strings.Join(params, ", ")
	}
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		if r.URL.RawQuery != "" {
			q := r.URL.Query()
			names := make([]string, 0, len(q))
			for k := range q {
				names = append(names, k)
			}
			slices.Sort(names) // the same name every time for the same query
			for _, k := range names {
				if !slices.Contains(params, k) {
					apiError(w, http.StatusBadRequest, "invalid_request",
						fmt.Sprintf("%s takes %s, not %q; remove it", endpoint, takes, k))
					return
				}
			}
		}
		next(w, r, p)
	}
}

func (s *Server) apiHandler() http.Handler {
	r := httprouter.New()
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		apiError(w, http.StatusNotFound, "not_found", "no such endpoint; see GET /api/v1/targets, /events, /deliveries, /rejected, /status")
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", "this endpoint takes another method: GET to read, POST to act")
	})
	for _, rt := range s.apiRoutes() {
		r.Handle(rt.method, rt.path, onlyParams(rt.method+" "+rt.path, rt.params, rt.handle))
	}
	return s.requireToken(r)
}

// requireToken asks for the bearer admin_token, when one is set, compared
// in constant time; the token is read at each request, so a reload applies.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if want := s.settings.Load().Server.AdminToken; want != "" {
			got, ok := bearer(r.Header.Get("Authorization"))
			a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
			if !ok || subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hooxrelay"`)
				apiError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <server.admin_token>")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the token of an Authorization header of the Bearer scheme,
// whose name is case-insensitive (RFC 9110 11.1).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorJSON{Error: code, Message: msg})
}

// storeError answers a store failure: unknown ids are 404, refused moves
// 409, anything else 503 (the store is down; try again).
func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrConflict):
		apiError(w, http.StatusConflict, "conflict", err.Error())
	default:
		w.Header().Set("Retry-After", "1")
		apiError(w, http.StatusServiceUnavailable, "unavailable", "the store did not answer: "+err.Error())
	}
}

// limitParam reads ?limit=, which must be a positive integer when given.
func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return 0, true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 {
		apiError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("limit must be a positive integer (values above %d are capped), got %q", MaxLimit, raw))
		return 0, false
	}
	return n, true
}

func queryCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

// apiOpenAPI serves docs/openapi.yaml, the description of this API.
func apiOpenAPI(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(docs.OpenAPI)
}

func (s *Server) apiStatus(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	s.reloadMu.Lock()
	st := StatusJSON{Version: s.version, StartedAt: s.started, ConfigHash: s.hash, Reloads: s.reloads, LastReload: s.lastReload,
		Store: s.settings.Load().StoreKind}
	s.reloadMu.Unlock()
	if d, ok := s.store.(DurabilityReporter); ok {
		st.Durability = d.Durability()
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	f, ok := eventFilterParams(w, r, time.Now())
	if !ok {
		return
	}
	ctx, cancel := queryCtx(r)
	defer cancel()
	es, err := s.store.Events(ctx, f)
	if err != nil {
		storeError(w, err)
		return
	}
	out := make([]EventJSON, len(es))
	for i, e := range es {
		ev := e.Event
		out[i] = EventJSON{EventID: ev.ID, Source: ev.Source, Task: ev.Task, Status: ev.Status, DedupKey: ev.DedupKey,
			JobID: ev.JobID, AvatarID: ev.AvatarID, LookID: ev.LookID, ReceivedAt: ev.ReceivedAt, Deliveries: make([]DeliveryStateJSON, len(e.Deliveries))}
		for j, d := range e.Deliveries {
			out[i].Deliveries[j] = DeliveryStateJSON{Target: d.Target, State: d.State, Attempts: d.Attempts}
		}
	}
	writeJSON(w, http.StatusOK, map[string][]EventJSON{"events": out})
}

func (s *Server) apiEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	ctx, cancel := queryCtx(r)
	defer cancel()
	d, err := s.store.Event(ctx, p.ByName("event_id"))
	if err != nil {
		storeError(w, err)
		return
	}
	ev := d.Event
	out := EventDetailJSON{EventID: ev.ID, Source: ev.Source, Task: ev.Task, Status: ev.Status, DedupKey: ev.DedupKey,
		JobID: ev.JobID, AvatarID: ev.AvatarID, LookID: ev.LookID, ReceivedAt: ev.ReceivedAt, RemoteAddr: ev.RemoteAddr, Headers: ev.Headers, Payload: ev.Payload,
		Trail: trailJSON(ev), Deliveries: make([]DeliveryDetailJSON, len(d.Deliveries))}
	if !json.Valid(ev.Payload) {
		out.Payload, _ = json.Marshal(string(ev.Payload))
	}
	for i, dd := range d.Deliveries {
		out.Deliveries[i] = DeliveryDetailJSON{DeliveryJSON: s.deliveryJSON(dd.Delivery), History: make([]AttemptJSON, len(dd.History))}
		for j, a := range dd.History {
			out.Deliveries[i].History[j] = AttemptJSON{Attempt: a.Number, StartedAt: a.StartedAt,
				DurationMS: float64(a.Duration.Microseconds()) / 1000, Status: a.Status, Error: a.Error, Body: a.Body,
				Waited: a.Waited, WaitedMS: float64(a.WaitedFor.Microseconds()) / 1000, Replay: a.Replay}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiDeliveries(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	state := State(q.Get("state"))
	switch state {
	case "", Pending, Delivered, Dead:
	default:
		apiError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("state must be pending, delivered or dead, got %q", state))
		return
	}
	ctx, cancel := queryCtx(r)
	defer cancel()
	ds, err := s.store.Deliveries(ctx, DeliveryFilter{State: state, Target: q.Get("target"), Before: q.Get("before"), Limit: limit})
	if err != nil {
		storeError(w, err)
		return
	}
	out := make([]DeliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = s.deliveryJSON(d)
	}
	writeJSON(w, http.StatusOK, map[string][]DeliveryJSON{"deliveries": out})
}

func (s *Server) apiRetry(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	ctx, cancel := queryCtx(r)
	defer cancel()
	d, _, err := s.retryOrResend(ctx, p.ByName("delivery_id"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, s.deliveryJSON(d))
}

// retry puts delivery id back in line now, with a fresh budget.
func (s *Server) retry(ctx context.Context, id string) (Delivery, error) {
	d, err := Requeue(ctx, s.store, id, time.Now())
	if err != nil {
		return d, err
	}
	s.dispatcher.Kick(d.Target)
	s.log.Info("delivery requeued by an operator", "delivery_id", d.ID(), "attempts", d.Attempts)
	return d, nil
}

// retryOrResend retries a dead or pending delivery; a delivered one is
// sent again as a replay of its event to its target, whose id it returns.
func (s *Server) retryOrResend(ctx context.Context, id string) (Delivery, string, error) {
	d, err := s.retry(ctx, id)
	if errors.Is(err, ErrConflict) {
		if cur, held, lerr := s.store.LoadDelivery(ctx, id); lerr == nil && !held && cur.State == Delivered {
			var rp Replay
			rp, d, err = s.resend(ctx, cur)
			return d, rp.ID, err
		}
	}
	return d, "", err
}

// knownTarget answers 404 and reports false when name is not a target of
// the config in use.
func (s *Server) knownTarget(w http.ResponseWriter, name string) bool {
	for _, t := range s.settings.Load().Targets {
		if t.Name == name {
			return true
		}
	}
	apiError(w, http.StatusNotFound, "not_found", fmt.Sprintf("target %q is not in the config; GET /api/v1/targets lists them", name))
	return false
}

// apiRetryDead requeues the target's dead letters, all of them or at most
// ?limit= (a client showing progress calls again until it gets 0).
func (s *Server) apiRetryDead(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	name := p.ByName("name")
	if !s.knownTarget(w, name) {
		return
	}
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	total, err := s.retryDead(r.Context(), name, limit)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, RequeuedJSON{Requeued: total})
}

// retryDead requeues up to limit dead letters of target name, all of
// those dead now when limit is 0, in chunks of retryChunk, and returns how
// many went back in line.
func (s *Server) retryDead(parent context.Context, name string, limit int) (int, error) {
	if limit == 0 {
		// All of them means those dead now: a letter that dies again
		// while this runs is not chased forever.
		ctx, cancel := context.WithTimeout(parent, 10*time.Second)
		counts, err := s.store.Counts(ctx)
		cancel()
		if err != nil {
			return 0, err
		}
		if limit = counts[name].Dead; limit == 0 {
			return 0, nil
		}
	}
	total := 0
	for total < limit {
		chunk := min(retryChunk, limit-total)
		ctx, cancel := context.WithTimeout(parent, 10*time.Second)
		n, err := RequeueDead(ctx, s.store, name, time.Now(), chunk)
		cancel()
		total += n
		if err != nil {
			if total > 0 {
				s.dispatcher.Kick(name)
			}
			return total, fmt.Errorf("after requeueing %d: %w", total, err)
		}
		if n == 0 {
			break
		}
	}
	if total > 0 {
		s.dispatcher.Kick(name)
		s.log.Info("dead deliveries requeued by an operator", "target", name, "requeued", total)
	}
	return total, nil
}

func (s *Server) apiTargets(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ctx, cancel := queryCtx(r)
	defer cancel()
	out, err := s.targets(ctx)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]TargetJSON{"targets": out})
}

// targets returns every target of the config in use, with its counts.
func (s *Server) targets(ctx context.Context) ([]TargetJSON, error) {
	counts, err := s.store.Counts(ctx)
	if err != nil {
		return nil, err
	}
	targets := s.settings.Load().Targets
	out := make([]TargetJSON, len(targets))
	for i, t := range targets {
		c := counts[t.Name]
		out[i] = TargetJSON{Name: t.Name, URL: t.URL, Breaker: s.dispatcher.BreakerState(t.Name), Paused: s.dispatcher.Paused(t.Name),
			Pending: c.Pending, Dead: c.Dead, Delivered: c.Delivered}
	}
	return out, nil
}

func (s *Server) apiPause(paused bool) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		name := p.ByName("name")
		if !s.knownTarget(w, name) {
			return
		}
		ctx, cancel := queryCtx(r)
		defer cancel()
		if err := s.pause(ctx, name, paused); err != nil {
			storeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, PauseJSON{Name: name, Paused: paused})
	}
}

// pause pauses or resumes target name.
func (s *Server) pause(ctx context.Context, name string, paused bool) error {
	if err := s.dispatcher.Pause(ctx, name, paused); err != nil {
		return err
	}
	s.log.Info("target paused by an operator", "target", name, "paused", paused)
	if paused {
		s.targetPaused(name)
	}
	return nil
}
