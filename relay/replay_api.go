package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
)

// The replay endpoints of the admin API (docs/http.md, "Replays").

// ReplayRequestJSON is the body of POST /api/v1/replays. Since and Until
// are RFC 3339 times or durations back from now ("2h").
type ReplayRequestJSON struct {
	Since   string   `json:"since"`
	Until   string   `json:"until"`
	Task    []string `json:"task"`
	Status  []string `json:"status"`
	Targets []string `json:"targets"`
	Rate    *float64 `json:"rate"`
	DryRun  bool     `json:"dry_run"`
}

// ReplayJSON is a replay in GET /api/v1/replays and the answers of the
// other replay endpoints.
type ReplayJSON struct {
	ReplayID    string      `json:"replay_id"`
	State       ReplayState `json:"state"`
	EventsTotal int         `json:"events_total"`
	EventsDone  int         `json:"events_done"`
	Deliveries  int         `json:"deliveries"`
	Since       time.Time   `json:"since"`
	Until       time.Time   `json:"until"`
	Task        []string    `json:"task"`
	Status      []string    `json:"status"`
	Targets     []string    `json:"targets"`
	Rate        float64     `json:"rate"`
	EventID     string      `json:"event_id,omitempty"` // a resend of one event
	CreatedAt   time.Time   `json:"created_at"`
	FinishedAt  *time.Time  `json:"finished_at,omitempty"`
	Error       string      `json:"error,omitempty"`
}

// ReplayDryRunJSON is the answer of a dry run: how many events a replay
// would go over, and how many deliveries it would requeue or create.
type ReplayDryRunJSON struct {
	Events     int `json:"events"`
	Deliveries int `json:"deliveries"`
}

// Replay limits: the default pace and the fastest one.
const (
	DefaultReplayRate = 50
	MaxReplayRate     = 10000
)

func replayJSON(r Replay) ReplayJSON {
	out := ReplayJSON{ReplayID: r.ID, State: r.State, EventsTotal: r.EventsTotal, EventsDone: r.EventsDone, Deliveries: r.Deliveries,
		Since: r.Since, Until: r.Until, Task: orEmpty(r.Tasks), Status: orEmpty(r.Statuses), Targets: orEmpty(r.Targets),
		Rate: r.Rate, EventID: r.Event, CreatedAt: r.CreatedAt, Error: r.Error}
	if !r.FinishedAt.IsZero() {
		out.FinishedAt = &r.FinishedAt
	}
	return out
}

func orEmpty(vs []string) []string {
	if vs == nil {
		return []string{}
	}
	return vs
}

// replayStore answers 501 and returns nil when the store keeps no replays.
func (s *Server) replayStore(w http.ResponseWriter) Replays {
	if s.replays.store == nil {
		apiError(w, http.StatusNotImplemented, "not_implemented", "this store keeps no replays; use the embedded or the Redis store")
	}
	return s.replays.store
}

func invalid(w http.ResponseWriter, format string, args ...any) {
	apiError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...))
}

// maxReplayBody bounds the body of POST /api/v1/replays.
const maxReplayBody = 64 << 10

func (s *Server) apiCreateReplay(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if s.replayStore(w) == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReplayBody+1))
	if err != nil || len(body) > maxReplayBody {
		invalid(w, "the body could not be read, or is over %d bytes", maxReplayBody)
		return
	}
	var req ReplayRequestJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		invalid(w, "the body must be a JSON object with since, until, task, status, targets, rate and dry_run: %s", jsonError(err))
		return
	}
	rq, msg := s.replayRequest(req, time.Now())
	if msg != "" {
		invalid(w, "%s", msg)
		return
	}
	rp := Replay{ID: NewReplayID(time.Now()), ReplayRequest: rq, State: ReplayRunning, CreatedAt: time.Now()}
	if req.DryRun {
		ctx, cancel := context.WithTimeout(r.Context(), 25*time.Second)
		defer cancel()
		events, deliveries, err := s.replays.count(ctx, &rp, true)
		if err != nil {
			storeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ReplayDryRunJSON{Events: events, Deliveries: deliveries})
		return
	}
	ctx, cancel := queryCtx(r)
	defer cancel()
	if err := s.startReplay(ctx, rp); err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, replayJSON(rp))
}

// startReplay stores the new replay rp and starts it (the admin API and
// the console).
func (s *Server) startReplay(ctx context.Context, rp Replay) error {
	if err := s.replays.store.CreateReplay(ctx, rp); err != nil {
		return err
	}
	rq := rp.ReplayRequest
	s.log.Info("replay started by an operator", "replay_id", rp.ID, "since", rq.Since, "until", rq.Until,
		"task", rq.Tasks, "status", rq.Statuses, "targets", rq.Targets, "rate", rq.Rate)
	s.replays.start(rp)
	return nil
}

// jsonError says what is wrong with a JSON body, naming an unknown field.
func jsonError(err error) string {
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "an array of strings"
	case "float64":
		return "a number"
	case "ptr":
		return "a number"
	}
	return "a " + k
}

// replayRequest checks req and resolves its times against now; msg says
// what is wrong, naming the field.
func (s *Server) replayRequest(req ReplayRequestJSON, now time.Time) (rq ReplayRequest, msg string) {
	if req.Since == "" {
		return rq, `since is required: an RFC 3339 time or a duration back from now, e.g. "2h"`
	}
	var err error
	if rq.Since, err = ParseTimeBack(req.Since, now); err != nil {
		return rq, "since: " + err.Error()
	}
	rq.Until = now
	if req.Until != "" {
		if rq.Until, err = ParseTimeBack(req.Until, now); err != nil {
			return rq, "until: " + err.Error()
		}
	}
	if !rq.Until.After(rq.Since) {
		return rq, fmt.Sprintf("until (%s) must be after since (%s)", rq.Until.Format(time.RFC3339), rq.Since.Format(time.RFC3339))
	}
	for field, vs := range map[string][]string{"task": req.Task, "status": req.Status, "targets": req.Targets} {
		if slices.Contains(vs, "") {
			return rq, field + " must not hold an empty string"
		}
	}
	set := s.settings.Load()
	for _, t := range req.Targets {
		if !set.hasTarget(t) {
			return rq, fmt.Sprintf("targets: %q is not a target of the config; GET /api/v1/targets lists them", t)
		}
	}
	rq.Tasks, rq.Statuses, rq.Targets = slices.Compact(slices.Sorted(slices.Values(req.Task))),
		slices.Compact(slices.Sorted(slices.Values(req.Status))), slices.Compact(slices.Sorted(slices.Values(req.Targets)))
	rq.Rate = DefaultReplayRate
	if req.Rate != nil {
		if rq.Rate = *req.Rate; !(rq.Rate > 0 && rq.Rate <= MaxReplayRate) {
			return rq, fmt.Sprintf("rate must be a number of events per second above 0 and at most %d, got %v", MaxReplayRate, *req.Rate)
		}
	}
	return rq, ""
}

func (s *Server) apiReplays(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	rs := s.replayStore(w)
	if rs == nil {
		return
	}
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	ctx, cancel := queryCtx(r)
	defer cancel()
	list, err := rs.ListReplays(ctx, limit)
	if err != nil {
		storeError(w, err)
		return
	}
	out := make([]ReplayJSON, len(list))
	for i, rp := range list {
		out[i] = replayJSON(rp)
	}
	writeJSON(w, http.StatusOK, map[string][]ReplayJSON{"replays": out})
}

func (s *Server) apiReplay(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	rs := s.replayStore(w)
	if rs == nil {
		return
	}
	ctx, cancel := queryCtx(r)
	defer cancel()
	rp, err := rs.LoadReplay(ctx, p.ByName("replay_id"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, replayJSON(rp))
}

// apiCancelReplay cancels a running replay; one that has ended is
// answered as it is.
func (s *Server) apiCancelReplay(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if s.replayStore(w) == nil {
		return
	}
	ctx, cancel := queryCtx(r)
	defer cancel()
	rp, err := s.replays.cancel(ctx, p.ByName("replay_id"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, replayJSON(rp))
}

// resend re-sends the delivered delivery d: a replay of its event to its
// target, done at once. It returns the replay and the delivery as it is
// then, pending.
func (s *Server) resend(ctx context.Context, d Delivery) (Replay, Delivery, error) {
	if s.replays.store == nil {
		return Replay{}, d, DeliveredConflict(d.ID())
	}
	if !s.settings.Load().hasTarget(d.Target) {
		return Replay{}, d, &adminError{ErrConflict, fmt.Sprintf("delivery %s was delivered, and its target %s is not in the config: it cannot be sent again", d.ID(), d.Target)}
	}
	at, _ := EventTime(d.EventID)
	now := time.Now()
	rp := Replay{ID: NewReplayID(now), State: ReplayRunning, CreatedAt: now, EventsTotal: 1,
		ReplayRequest: ReplayRequest{Since: at, Until: at.Add(time.Millisecond), Targets: []string{d.Target}, Rate: DefaultReplayRate, Event: d.EventID}}
	if err := s.replays.store.CreateReplay(ctx, rp); err != nil {
		return rp, d, err
	}
	// Swapped here rather than through a batch, so that the answer is the
	// record as stored, before an attempt changes it.
	nd := replayedDelivery(d, rp.ID, time.Now())
	n, err := s.store.SwapDeliveries(ctx, Swap{Old: &d, New: nd})
	if err == nil && n == 0 {
		err = InFlightConflict(d.ID()) // it changed under us: an attempt is on
	}
	rp.State, rp.FinishedAt, rp.EventsDone, rp.Deliveries = ReplayDone, time.Now(), 1, n
	if err != nil {
		rp.State, rp.Error = ReplayFailed, err.Error()
	}
	if uerr := s.replays.store.UpdateReplay(context.WithoutCancel(ctx), rp); uerr != nil && err == nil {
		err = uerr
	}
	if err != nil {
		return rp, d, err
	}
	s.dispatcher.Kick(d.Target)
	s.log.Info("delivered delivery resent by an operator", "delivery_id", d.ID(), "replay_id", rp.ID)
	return rp, nd, nil
}
