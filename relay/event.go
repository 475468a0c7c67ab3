package relay

import (
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Event is one accepted webhook as stored. Payload is the request body byte
// for byte; it is what every target receives.
type Event struct {
	ID       string `json:"event_id"`
	Source   string `json:"source"`
	Task     string `json:"task"`
	Status   string `json:"status"`
	DedupKey string `json:"dedup_key"`
	// JobID, AvatarID and LookID are the payload's ids of a known task
	// (docs/http.md), "" when it has none; events are searched by them.
	JobID      string            `json:"job_id,omitempty"`
	AvatarID   string            `json:"avatar_id,omitempty"`
	LookID     string            `json:"look_id,omitempty"`
	ReceivedAt time.Time         `json:"received_at"`
	RemoteAddr string            `json:"remote_addr,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Targets    []string          `json:"targets"`
	// Trace is the traceparent of the ingest span: every attempt's span
	// is its child. "" for events stored before traces were kept.
	Trace   string `json:"-"`
	Trail   Trail  `json:"-"`
	Payload []byte `json:"-"`
}

// NewEventID returns a unique, URL-safe id that sorts by receive time.
func NewEventID(t time.Time) string {
	return "evt_" + ulid.MustNew(ulid.Timestamp(t), ulid.DefaultEntropy()).String()
}

// EventTime returns the receive time encoded in an event id, to millisecond
// precision, and false when id is not an event id.
func EventTime(id string) (time.Time, bool) {
	s, ok := strings.CutPrefix(id, "evt_")
	if !ok {
		return time.Time{}, false
	}
	u, err := ulid.ParseStrict(s)
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(u.Time()), true
}

// State is where a delivery stands. In-flight is not a state of its own:
// a claimed delivery stays pending in the store, so a crash puts it back in
// line by itself.
type State string

// The delivery states of docs/http.md.
const (
	Pending   State = "pending"
	Delivered State = "delivered"
	Dead      State = "dead"
)

// Delivery is the relaying of one event to one target.
type Delivery struct {
	EventID       string    `json:"event_id"`
	Target        string    `json:"target"`
	State         State     `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastStatus    int       `json:"last_status,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	// BudgetAttempts and BudgetSince are where max_attempts and max_age
	// count from: zero and the receive time, until an operator retries a
	// dead delivery and gives it a fresh budget.
	BudgetAttempts int       `json:"budget_attempts,omitempty"`
	BudgetSince    time.Time `json:"budget_since"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Replay is the id of the replay that last put this delivery back in
	// line or created it, "" for none: its attempts carry Hooxrelay-Replay,
	// and the replay skips a delivery that already has its id.
	Replay string `json:"replay,omitempty"`
}

// ID returns the delivery id, "<event_id>:<target>".
func (d *Delivery) ID() string { return DeliveryID(d.EventID, d.Target) }

// DeliveryID returns the id of the delivery of an event to a target.
func DeliveryID(eventID, target string) string { return eventID + ":" + target }

// SplitDeliveryID is the inverse of DeliveryID.
func SplitDeliveryID(id string) (eventID, target string, ok bool) {
	return strings.Cut(id, ":")
}

// Attempt is the record of one delivery attempt (docs/http.md).
type Attempt struct {
	Number    int           `json:"attempt"`
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"duration_ns"`
	Status    int           `json:"status,omitempty"`
	Error     string        `json:"error,omitempty"`
	Body      string        `json:"body,omitempty"` // at most MaxAttemptBody bytes of the answer
	// Waited is what held the delivery back, due, before this attempt
	// (WaitingPaused, WaitingBreakerOpen, WaitRateLimit), and WaitedFor
	// for how long: what the dispatcher knew, "" when nothing did.
	Waited    string        `json:"waited,omitempty"`
	WaitedFor time.Duration `json:"waited_ns,omitempty"`
	// Replay is the id of the replay that put the delivery back in line
	// for this attempt, "" for none.
	Replay string `json:"replay,omitempty"`
}

// MaxAttemptBody is how much of a target's answer an attempt record keeps.
const MaxAttemptBody = 1024
