// Package console serves the relay's web console under /ui/ on the admin
// listener: server-rendered pages over what the admin API knows, with a
// little htmx for live updates and actions. It reads and acts through a
// Backend, so that it needs nothing else of the relay.
package console

import (
	"context"
	"errors"
	"time"
)

// Backend is what the console needs from the relay.
type Backend interface {
	// Targets returns every target of the config in use, with its counts.
	Targets(ctx context.Context) ([]Target, error)
	// Counters returns the relay's running totals, for the live rates.
	Counters() Counters
	// Events returns up to q.Limit events, newest first.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	// Event returns one event with every delivery and attempt, or an
	// error that wraps ErrNotFound.
	Event(ctx context.Context, id string) (*EventDetail, error)
	// Dead returns up to limit dead deliveries of target, after the
	// delivery id before ("" for the first page).
	Dead(ctx context.Context, target, before string, limit int) ([]Delivery, error)
	// Retry puts one dead or pending delivery back in line now; a
	// delivered one is sent again by a replay of its event to its target,
	// whose id it returns.
	Retry(ctx context.Context, deliveryID string) (replayID string, err error)
	// RetryDead does the same for every dead delivery of target and
	// returns how many it requeued.
	RetryDead(ctx context.Context, target string) (int, error)
	// Pause stops or restarts attempts to target.
	Pause(ctx context.Context, target string, paused bool) error
	// Rejected returns up to limit of the ingress's refused requests kept
	// in memory, newest first, their secrets already masked.
	Rejected(limit int) []Rejected
	// AdminToken returns server.admin_token as it is now ("" for none).
	AdminToken() string
	Replayer
}

// What a Backend's errors wrap: an unknown id or name, a move the
// delivery's state refuses (a retry of one delivered or being attempted),
// and a filter value it cannot read.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrBadQuery = errors.New("bad query")
)

// Target is a target of the config in use.
type Target struct {
	Name      string
	URL       string
	Breaker   string // closed, open or half-open
	Paused    bool
	Pending   int
	Dead      int
	Delivered int
}

// Counters are running totals since the relay started.
type Counters struct {
	// Ingress counts requests by outcome (accepted, duplicate, forbidden...).
	Ingress map[string]float64
	// Deliveries counts attempts' outcomes by target, then outcome
	// (delivered, retry, dead).
	Deliveries map[string]map[string]float64
	// Latency is each target's attempts' total duration in seconds and
	// their number.
	LatencySum   map[string]float64
	LatencyCount map[string]float64
	// OldestPending is, per target, how long its oldest pending delivery
	// has waited (0 with none pending); a target is missing when the store
	// did not tell.
	OldestPending map[string]time.Duration
}

// EventQuery selects events: the filters of GET /api/v1/events. Since
// and Until are as the user typed them (an RFC 3339 time or a duration back
// from now); a Backend that cannot read one returns an error wrapping
// ErrBadQuery.
type EventQuery struct {
	Task     string
	Status   string
	JobID    string
	AvatarID string
	LookID   string
	DedupKey string
	Since    string
	Until    string
	Before   string // an event id: the page after it
	Limit    int
}

// Event is an event in a list.
type Event struct {
	ID         string
	Source     string
	Task       string
	Status     string
	DedupKey   string
	JobID      string // the payload's ids, when its task has them
	AvatarID   string
	LookID     string
	ReceivedAt time.Time
	Deliveries []DeliveryState
}

// DeliveryState is where one delivery of a listed event stands.
type DeliveryState struct {
	Target   string
	State    string
	Attempts int
}

// EventDetail is one event with its payload and deliveries.
type EventDetail struct {
	Event
	RemoteAddr string
	Headers    map[string]string
	Payload    []byte
	Trail      Trail
	Deliveries []Delivery
}

// Trail is how the ingress handled an event.
type Trail struct {
	Kept          bool   // false for an event stored before trails were kept
	Verify        string // the source's verify kind
	Verified      string // passed, or not_checked
	Routes        []string
	Targets       []string // the targets the routes chose
	AddedTargets  []string // targets added later, by a replay
	Duplicates    int      // later requests answered as its duplicates
	LastDuplicate time.Time
}

// Delivery is one delivery of an event to a target.
type Delivery struct {
	ID            string
	EventID       string
	Target        string
	State         string
	Attempts      int
	NextAttemptAt time.Time
	LastStatus    int
	LastError     string
	UpdatedAt     time.Time
	Waiting       string // why a due pending delivery waits, or ""
	Replay        string // the replay that last requeued or created it, or ""
	History       []Attempt
}

// Attempt is one recorded attempt of a delivery.
type Attempt struct {
	Number    int
	StartedAt time.Time
	Duration  time.Duration
	Status    int
	Error     string
	Body      string        // the answer's excerpt
	Waited    string        // what held the delivery back, due, before it, or ""
	WaitedFor time.Duration // and for how long
	Replay    string        // the replay that put it back in line, or ""
}

// Rejected is a request the ingress refused, as the rejected log keeps it.
type Rejected struct {
	At         time.Time
	Source     string // "" for an unknown path
	Method     string
	Path       string
	RemoteAddr string
	Status     int
	Outcome    string
	Reason     string
	Headers    map[string]string // auth and signature values are ***
	Body       string            // the first 2 KiB
	BodyBytes  int
	Truncated  bool
}
