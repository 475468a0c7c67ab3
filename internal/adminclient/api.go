package adminclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/hooxrelay/hooxrelay/relay"
)

// The endpoints, one method each, in the order of docs/http.md.

// EventFilter selects the events Events lists; its zero value lists the
// newest relay.DefaultLimit events.
type EventFilter struct {
	Task     string // e.g. video_generate
	Status   string // the payload's status, e.g. error
	JobID    string // the payload's job_id
	AvatarID string // the payload's avatar_id
	LookID   string // the payload's look_id
	DedupKey string // the dedup key, e.g. video_generate:run_1:completed
	Since    string // received at or after: an RFC 3339 time or a duration back from now (2h)
	Until    string // received before: as Since
	Before   string // an event id: only events received before it (the next page)
	Limit    int    // at most this many, up to relay.MaxLimit; 0 means the API's default
}

// DeliveryFilter selects the deliveries Deliveries lists; its zero value
// lists the newest relay.DefaultLimit deliveries.
type DeliveryFilter struct {
	State  relay.State
	Target string
	Before string // a delivery id: only deliveries after it in the list (the next page)
	Limit  int    // at most this many, up to relay.MaxLimit; 0 means the API's default
}

// Status returns which relay answers: GET /api/v1/status.
func (c *Client) Status(ctx context.Context) (relay.StatusJSON, error) {
	var st relay.StatusJSON
	err := c.call(ctx, http.MethodGet, "/status", nil, "started_at", &st)
	return st, err
}

// Targets returns the targets of the relay's config with their counts:
// GET /api/v1/targets.
func (c *Client) Targets(ctx context.Context) ([]relay.TargetJSON, error) {
	var ans struct {
		Targets []relay.TargetJSON `json:"targets"`
	}
	err := c.call(ctx, http.MethodGet, "/targets", nil, "targets", &ans)
	return ans.Targets, err
}

// Events returns the events f selects, newest first: GET /api/v1/events.
func (c *Client) Events(ctx context.Context, f EventFilter) ([]relay.EventJSON, error) {
	q := page(f.Limit, f.Before)
	setIf(q, "task", f.Task)
	setIf(q, "status", f.Status)
	setIf(q, "job_id", f.JobID)
	setIf(q, "avatar_id", f.AvatarID)
	setIf(q, "look_id", f.LookID)
	setIf(q, "dedup_key", f.DedupKey)
	setIf(q, "since", f.Since)
	setIf(q, "until", f.Until)
	var ans struct {
		Events []relay.EventJSON `json:"events"`
	}
	err := c.call(ctx, http.MethodGet, "/events", q, "events", &ans)
	return ans.Events, err
}

// Event returns one event with its payload and every attempt of its
// deliveries: GET /api/v1/events/{id}.
func (c *Client) Event(ctx context.Context, id string) (relay.EventDetailJSON, error) {
	var ev relay.EventDetailJSON
	err := c.call(ctx, http.MethodGet, "/events/"+url.PathEscape(id), nil, "event_id", &ev)
	return ev, err
}

// Deliveries returns the deliveries f selects, newest event first:
// GET /api/v1/deliveries.
func (c *Client) Deliveries(ctx context.Context, f DeliveryFilter) ([]relay.DeliveryJSON, error) {
	q := page(f.Limit, f.Before)
	setIf(q, "state", string(f.State))
	setIf(q, "target", f.Target)
	var ans struct {
		Deliveries []relay.DeliveryJSON `json:"deliveries"`
	}
	err := c.call(ctx, http.MethodGet, "/deliveries", q, "deliveries", &ans)
	return ans.Deliveries, err
}

// Retry puts a delivery (EVENT_ID:TARGET) back in line,
// due now, and returns it as it is then: POST
// /api/v1/deliveries/{id}/retry. A delivered one is sent again, as a
// replay that the answer's ReplayID names.
func (c *Client) Retry(ctx context.Context, id string) (relay.DeliveryJSON, error) {
	var d relay.DeliveryJSON
	err := c.call(ctx, http.MethodPost, "/deliveries/"+url.PathEscape(id)+"/retry", nil, "delivery_id", &d)
	return d, err
}

// DefaultChunk is how many dead deliveries one request of RetryDead
// requeues unless told otherwise: small enough that a large backlog shows
// progress.
const DefaultChunk = 200

// RetryDead puts the dead deliveries of target back in line, chunk of them
// per request of POST /api/v1/targets/{name}/retry-dead (0: DefaultChunk),
// and returns how many it requeued. It stops after as many as were dead
// when it started (GET /api/v1/targets): the API requeues oldest first and
// cannot tell a delivery that died again from one not yet requeued, so
// "until it requeues none" might never end while the target still fails.
// After each request, progress (when not nil) is told how many are
// requeued so far and how many were dead.
func (c *Client) RetryDead(ctx context.Context, target string, chunk int, progress func(done, total int)) (int, error) {
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	ts, err := c.Targets(ctx)
	if err != nil {
		return 0, err
	}
	i := slices.IndexFunc(ts, func(t relay.TargetJSON) bool { return t.Name == target })
	if i < 0 {
		return 0, fmt.Errorf("target %q is not in the relay's config; hooxrelay targets lists them", target)
	}
	want, done := ts[i].Dead, 0
	for done < want {
		var ans relay.RequeuedJSON
		q := url.Values{"limit": {strconv.Itoa(min(chunk, want-done))}}
		if err := c.call(ctx, http.MethodPost, "/targets/"+url.PathEscape(target)+"/retry-dead", q, "requeued", &ans); err != nil {
			if done > 0 {
				return done, fmt.Errorf("%w (after requeueing %d of %d)", err, done, want)
			}
			return 0, err
		}
		if ans.Requeued == 0 {
			break
		}
		done += ans.Requeued
		if progress != nil {
			progress(done, want)
		}
	}
	return done, nil
}

// Pause stops attempts to target until Resume; its deliveries wait:
// POST /api/v1/targets/{name}/pause.
func (c *Client) Pause(ctx context.Context, target string) (relay.PauseJSON, error) {
	return c.pause(ctx, target, "pause")
}

// Resume restarts attempts to a paused target:
// POST /api/v1/targets/{name}/resume.
func (c *Client) Resume(ctx context.Context, target string) (relay.PauseJSON, error) {
	return c.pause(ctx, target, "resume")
}

func (c *Client) pause(ctx context.Context, target, verb string) (relay.PauseJSON, error) {
	var ans relay.PauseJSON
	err := c.call(ctx, http.MethodPost, "/targets/"+url.PathEscape(target)+"/"+verb, nil, "paused", &ans)
	return ans, err
}

// Rejected returns the last requests the ingress refused, at most limit
// (0: the API's default), newest first: GET /api/v1/rejected.
func (c *Client) Rejected(ctx context.Context, limit int) ([]relay.RejectedJSON, error) {
	var ans struct {
		Rejected []relay.RejectedJSON `json:"rejected"`
	}
	err := c.call(ctx, http.MethodGet, "/rejected", page(limit, ""), "rejected", &ans)
	return ans.Rejected, err
}

// page returns the query of a page of a list: limit and before, when set.
func page(limit int, before string) url.Values {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	setIf(q, "before", before)
	return q
}

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}
