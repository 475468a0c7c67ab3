package console

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Replayer is what the replay page needs from the relay: the replays of
// the admin API (POST, GET and DELETE /api/v1/replays).
type Replayer interface {
	// PlanReplay is a dry run of f: how many events and deliveries a
	// replay would go over, and the times it read f's since and until as.
	// A form the relay refuses gives an error wrapping ErrBadQuery.
	PlanReplay(ctx context.Context, f ReplayForm) (ReplayPlan, error)
	// StartReplay starts the replay of f (errors as PlanReplay's).
	StartReplay(ctx context.Context, f ReplayForm) (Replay, error)
	// Replays returns up to limit replays, newest first.
	Replays(ctx context.Context, limit int) ([]Replay, error)
	// CancelReplay cancels a running replay (ErrNotFound for an unknown
	// id); one that has ended stays as it is.
	CancelReplay(ctx context.Context, id string) error
}

// ReplayForm is the replay form as typed: Since and Until as the admin API
// takes them (RFC 3339 or a duration back from now), Rate a number of
// events a second ("" for the relay's default).
type ReplayForm struct {
	Since, Until             string
	Tasks, Statuses, Targets []string
	Rate                     string
}

// ReplayPlan is a dry run's answer.
type ReplayPlan struct {
	Since, Until       time.Time
	Events, Deliveries int
}

// Replay is a replay and how far it got.
type Replay struct {
	ID                                  string
	State                               string // running, done, cancelled or failed
	EventsTotal, EventsDone, Deliveries int
	Since, Until                        time.Time
	Tasks, Statuses, Targets            []string
	Rate                                float64
	EventID                             string // a resend of one event
	CreatedAt, FinishedAt               time.Time
	Error                               string
}

// Percent is how far r got, 0 to 100.
func (r Replay) Percent() int {
	if r.EventsTotal <= 0 {
		if r.State == "running" {
			return 0
		}
		return 100
	}
	return min(100, r.EventsDone*100/r.EventsTotal)
}

type replaysData struct {
	Form    replayFormData
	Plan    *ReplayPlan
	Confirm ReplayForm // the plan's form, its times resolved
	List    replayList
}

// replayFormData is the form's values and the targets to choose from.
type replayFormData struct {
	ReplayForm
	Task, Status string // the lists as typed, comma-separated
	Choices      []targetChoice
}

type targetChoice struct {
	Name    string
	Checked bool
}

type replayList struct {
	Replays []Replay
	Limit   int
	Running bool         // one is running: the list refreshes itself
	Next    template.URL // the page with more rows, "" when none are left
}

// maxReplays bounds the replay list's limit.
const maxReplays = 1000

// readReplayForm reads the form of a POST.
func readReplayForm(r *http.Request) ReplayForm {
	return ReplayForm{Since: strings.TrimSpace(r.PostFormValue("since")), Until: strings.TrimSpace(r.PostFormValue("until")),
		Tasks: splitList(r.PostFormValue("task")), Statuses: splitList(r.PostFormValue("status")),
		Targets: r.PostForm["targets"], Rate: strings.TrimSpace(r.PostFormValue("rate"))}
}

// splitList reads "a, b" as [a b].
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (c *Console) replayList(ctx context.Context, limit int) (replayList, error) {
	limit = min(max(limit, pageSize), maxReplays)
	rs, err := c.backend.Replays(ctx, limit+1)
	if err != nil {
		return replayList{}, err
	}
	l := replayList{Replays: rs, Limit: limit}
	if len(rs) > limit {
		l.Replays = rs[:limit]
		if limit < maxReplays {
			l.Next = template.URL("/ui/replays?" + url.Values{"limit": {strconv.Itoa(min(limit+pageSize, maxReplays))}}.Encode())
		}
	}
	for _, rp := range l.Replays {
		l.Running = l.Running || rp.State == "running"
	}
	return l, nil
}

func listLimit(r *http.Request) int {
	n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	return n
}

// replaysPage renders the replay page: the form filled with f, the plan
// when there is one, and the list.
func (c *Console) replaysPage(w http.ResponseWriter, r *http.Request, st reqState, status int, f ReplayForm, plan *ReplayPlan, msg string) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	ts, err := c.backend.Targets(ctx)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	l, err := c.replayList(ctx, listLimit(r))
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	d := replaysData{Form: replayFormData{ReplayForm: f, Task: strings.Join(f.Tasks, ", "), Status: strings.Join(f.Statuses, ", ")}, Plan: plan, List: l}
	for _, t := range ts {
		ch := targetChoice{Name: t.Name}
		for _, s := range f.Targets {
			ch.Checked = ch.Checked || s == t.Name
		}
		d.Form.Choices = append(d.Form.Choices, ch)
	}
	if plan != nil {
		d.Confirm = f
		d.Confirm.Since, d.Confirm.Until = plan.Since.Format(time.RFC3339Nano), plan.Until.Format(time.RFC3339Nano)
	}
	c.render(w, status, "replays", page{Title: "Replays", Nav: "replays", CSRF: st.csrf, AuthOn: st.authOn,
		Flash: r.URL.Query().Get("done"), Error: msg, Data: d})
}

func (c *Console) replays(w http.ResponseWriter, r *http.Request, st reqState) {
	c.replaysPage(w, r, st, http.StatusOK, ReplayForm{Since: "1h"}, nil, "")
}

// replaysLive is the list alone, which the page fetches every few seconds
// while a replay runs.
func (c *Console) replaysLive(w http.ResponseWriter, r *http.Request, st reqState) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	l, err := c.replayList(ctx, listLimit(r))
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	c.fragment(w, "replays", "replay-list", page{CSRF: st.csrf, Data: replaysData{List: l}})
}

// badForm renders the form again with what to fix, or answers another
// error; it reports whether err was one.
func (c *Console) badForm(w http.ResponseWriter, r *http.Request, st reqState, f ReplayForm, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrBadQuery) {
		c.replaysPage(w, r, st, http.StatusBadRequest, f, nil, strings.TrimPrefix(err.Error(), ErrBadQuery.Error()+": "))
		return true
	}
	c.backendError(w, r, err)
	return true
}

// planReplay is the dry run: its counts, and a button that starts the
// replay it counted.
func (c *Console) planReplay(w http.ResponseWriter, r *http.Request, st reqState) {
	f := readReplayForm(r)
	ctx, cancel := context.WithTimeout(r.Context(), 25*time.Second)
	defer cancel()
	plan, err := c.backend.PlanReplay(ctx, f)
	if c.badForm(w, r, st, f, err) {
		return
	}
	c.replaysPage(w, r, st, http.StatusOK, f, &plan, "")
}

func (c *Console) startReplay(w http.ResponseWriter, r *http.Request, st reqState) {
	f := readReplayForm(r)
	ctx, cancel := ctxOf(r)
	defer cancel()
	rp, err := c.backend.StartReplay(ctx, f)
	if c.badForm(w, r, st, f, err) {
		return
	}
	back(w, r, "/ui/replays", "Replay "+rp.ID+" started.")
}

func (c *Console) cancelReplay(w http.ResponseWriter, r *http.Request, _ reqState) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	id := r.PathValue("id")
	if err := c.backend.CancelReplay(ctx, id); err != nil {
		c.backendError(w, r, err)
		return
	}
	back(w, r, "/ui/replays", "Replay "+id+" is cancelled.")
}
