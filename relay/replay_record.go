package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// Replays is where a store keeps replay records (docs/http.md, "Replays"):
// the request of each replay and how far it got, so that a replay outlasts
// a restart. It is apart from Admin: the stores of this repository
// implement both. Records are few and small; they are kept until the store
// is deleted. Every method is safe for concurrent use.
type Replays interface {
	// CreateReplay stores a new record; its ID is new.
	CreateReplay(ctx context.Context, r Replay) error
	// UpdateReplay stores r over the record of r.ID, or returns
	// ErrNotFound when there is none.
	UpdateReplay(ctx context.Context, r Replay) error
	// ListReplays returns up to limit records (PageSize), newest first.
	ListReplays(ctx context.Context, limit int) ([]Replay, error)
	// LoadReplay returns the record id, or ErrNotFound.
	LoadReplay(ctx context.Context, id string) (Replay, error)
}

// ReplayState is where a replay stands.
type ReplayState string

// The replay states of docs/http.md.
const (
	ReplayRunning   ReplayState = "running"
	ReplayDone      ReplayState = "done"
	ReplayCancelled ReplayState = "cancelled"
	ReplayFailed    ReplayState = "failed"
)

// ReplayRequest is what a replay re-sends: the events received in [Since,
// Until) whose task and payload status are among Tasks and Statuses (all
// when empty), each to the targets the routes give it now, narrowed to
// Targets when set, at Rate events a second.
type ReplayRequest struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Tasks    []string  `json:"task,omitempty"`
	Statuses []string  `json:"status,omitempty"`
	Targets  []string  `json:"targets,omitempty"`
	Rate     float64   `json:"rate"`
	// Event, when set, is the one event to re-send, to Targets as they
	// are (not through the routes): the resend of one delivered delivery.
	Event string `json:"event,omitempty"`
}

// Replay is a replay's record: its request and its progress. Cursor is the
// last event handled (events go oldest first, in id order); a replay that
// resumes starts after it.
type Replay struct {
	ID string `json:"replay_id"`
	ReplayRequest
	State       ReplayState `json:"state"`
	EventsTotal int         `json:"events_total"`
	EventsDone  int         `json:"events_done"`
	Deliveries  int         `json:"deliveries"` // requeued or created
	Cursor      string      `json:"cursor,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	FinishedAt  time.Time   `json:"finished_at"`
	Error       string      `json:"error,omitempty"`
}

// NewReplayID returns a new replay id, "rpl_" and a ULID: ids sort by
// creation time.
func NewReplayID(t time.Time) string {
	return "rpl_" + ulid.MustNew(ulid.Timestamp(t), ulid.DefaultEntropy()).String()
}

// ReplayNotFound is the Replays refusal of an unknown id.
func ReplayNotFound(id string) error {
	return &adminError{ErrNotFound, fmt.Sprintf("replay %q not found; GET /api/v1/replays lists them", id)}
}
