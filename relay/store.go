package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Store is what the relay needs from durable storage: the queue that the
// ingress and the dispatcher work, and the admin API's view of the same
// records. Implementations are safe for concurrent use.
//
// Retention, for a store set to keep finished work for a while only:
//   - Pending work is never deleted: a pending delivery, its attempts and
//     its event, payload included, are kept however old they are. A
//     delivery swapped back to pending (SwapDeliveries) is pending work
//     again.
//   - A delivered or dead delivery, with its attempts, may be deleted once
//     the retention has passed; an event, with its dedup mark, once none of
//     its deliveries is pending and the retention has passed.
//   - The retention counts from the event's receive time at the earliest.
//     The embedded store counts from it; the Redis store from the final
//     outcome of the delivery, or of the event's last delivery.
//   - A dedup mark never outlives its event: Ingest never answers a
//     duplicate with the id of an event that is gone. A mark may go before
//     its event once it is older than any ttl Ingest is given.
type Store interface {
	Queue
	Admin
}

// Queue is the work queue: the ingress writes events into it, and the
// dispatcher claims their deliveries and records what became of them.
//
// A pending delivery is due at its NextAttemptAt. Claim hands a due
// delivery to one caller at a time and holds it until Complete or Release;
// a holder that dies loses its hold (at restart for an embedded store, when
// a lease expires for a shared one), and the delivery is due again.
// Deliveries are therefore attempted at least once, never by two holders at
// the same time. A write that fails (the store is down) is an error, and
// loses nothing acked: what Ingest stored stays stored, and a delivery
// whose Complete failed is due again once the store is back.
type Queue interface {
	// Ingest writes ev, a pending delivery for each of ev.Targets (due,
	// and with its budget counting, from ev.ReceivedAt), and the dedup mark
	// (ev.Source, ev.DedupKey), in one atomic, durable step. A mark is live
	// while ev.ReceivedAt is less than ttl after the marked event's
	// ReceivedAt; when one is, Ingest writes nothing and returns the first
	// event's id with Duplicate set. ev.Payload is the caller's buffer,
	// reused once Ingest returns: a store copies what it keeps.
	Ingest(ctx context.Context, ev *Event, ttl time.Duration) (IngestResult, error)

	// Claim holds up to max deliveries of target that are due at now,
	// earliest due first, and returns them with their events, payload
	// included. What is due is decided by now, not by the store's clock.
	Claim(ctx context.Context, target string, now time.Time, max int) ([]Claim, error)

	// NextDue reports when the earliest pending delivery of target that
	// nobody holds is due; ok is false when there is none. A store whose
	// holds end by themselves (leases) counts a held delivery as due when
	// its hold ends.
	NextDue(ctx context.Context, target string) (due time.Time, ok bool, err error)

	// Backlog returns how many deliveries of target are pending, held
	// ones included.
	Backlog(ctx context.Context, target string) (int, error)

	// Complete records what happened to held deliveries and ends the hold:
	// each outcome's Delivery is the new record (pending ones are due again
	// at NextAttemptAt) and Attempt, when set, is appended to its history.
	// Outcomes of concurrent callers may share one commit, and a store may
	// write them after Complete returns: until then the delivery stays held,
	// and if the write never happens (a crash) it is attempted again.
	Complete(ctx context.Context, outcomes ...Outcome) error

	// Release ends the hold on deliveries without charging an attempt; they
	// are due again at at.
	Release(ctx context.Context, at time.Time, ds ...Delivery) error

	// Ping reports whether the store can take writes: it fails while the
	// store is down, and once a write has failed, until the store takes
	// writes again.
	Ping(ctx context.Context) error

	// Close writes what Complete deferred and releases the store. Holds
	// still open are dropped, so those deliveries are due again when the
	// store is next opened. A second Close returns nil; every other method
	// of a closed store, Admin's included, returns ErrClosed.
	Close() error
}

// OutcomeQueue is a Queue that takes an outcome without its caller waiting
// for the write; the dispatcher uses it when the store has it, so that an
// attempt's worker and slot go on while the outcome is written.
type OutcomeQueue interface {
	// QueueComplete is Complete of o that returns once the store has
	// taken it; done is then called with the write's result, from another
	// goroutine, and must not block. The delivery stays held until then.
	// A store may make the caller wait while many outcomes are waiting
	// already. It fails, and done is not called, when ctx ends first or
	// the store is closed.
	QueueComplete(ctx context.Context, o Outcome, done func(error)) error
}

// IngestResult is what Queue.Ingest did.
type IngestResult struct {
	EventID   string // the new event's id, or the first one's for a duplicate
	Duplicate bool
}

// Claim is a held delivery with its event.
type Claim struct {
	Delivery Delivery
	Event    *Event
}

// Outcome is the result of handling one held delivery.
type Outcome struct {
	Delivery Delivery // the new state of the delivery
	Attempt  *Attempt // nil when no request was made (max_age passed)
}

// maxMarkKey is the longest dedup key a store keeps as it is.
const maxMarkKey = 512

// MarkKey returns the form in which a store keeps the dedup key key: the
// key itself when it is at most 512 bytes, else "sha256:" and the hex of its
// digest. Stores then never refuse a key for its length (bbolt's limit is
// 32 KiB), and keys that differ anywhere stay different.
func MarkKey(key string) string {
	if len(key) <= maxMarkKey {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ErrClosed is returned by a Store, its Admin methods included, used after
// Close.
var ErrClosed = errors.New("store closed")

// Admin is what the admin API asks of a store (docs/http.md): queries that are
// answered from indexes, never by reading every record, and the operator's
// writes. Every method is safe for concurrent use with the queue methods.
type Admin interface {
	// Events returns up to f.Limit events, newest first, each with its
	// deliveries.
	Events(ctx context.Context, f EventFilter) ([]EventSummary, error)

	// Event returns one event with its payload and every delivery's
	// attempts, or ErrNotFound.
	Event(ctx context.Context, id string) (*EventDetail, error)

	// Deliveries returns up to f.Limit deliveries in the order f asks for.
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)

	// LoadDelivery returns the delivery id as stored, and whether a holder
	// has it (it is being attempted right now), or ErrNotFound.
	LoadDelivery(ctx context.Context, id string) (d Delivery, held bool, err error)

	// SwapDeliveries stores, in one atomic and durable step, the New record
	// of each swap whose delivery is still as its Old says and that nobody
	// holds, and returns how many it stored; the others are left as they
	// are, for the caller to load again. The queue, the indexes and the
	// event follow each stored record: a pending one is due at its
	// NextAttemptAt, a final one is counted and listed in its state, a
	// delivery created for an event joins the event's Targets, and the
	// attempts already recorded stay. After an error, whether the swaps
	// were stored is unknown: load them again.
	SwapDeliveries(ctx context.Context, swaps ...Swap) (int, error)

	// Counts returns, per target, how many deliveries are in each state.
	Counts(ctx context.Context) (map[string]StateCounts, error)

	// SetPaused records that target is paused, or no longer is; the mark
	// outlasts restarts. Pausing is the dispatcher's business: the store
	// only keeps the mark.
	SetPaused(ctx context.Context, target string, paused bool) error

	// Paused returns the paused targets.
	Paused(ctx context.Context) (map[string]bool, error)
}

// Swap is a compare-and-set of one delivery record, for
// Admin.SwapDeliveries: the operator's moves (Requeue, RequeueDead) are
// made of them, in the core, over any store.
type Swap struct {
	// Old is the record as the caller read it (Equal compares them), or
	// nil for a delivery that must not exist yet: a delivery of a stored
	// event to a target it has none for.
	Old *Delivery
	// New is the record to store, of the same delivery as Old.
	New Delivery
}

// EventFilter selects events, listed newest first, or oldest first with
// Oldest. Zero fields select everything; set fields all apply. Each is
// answered from an index, never by reading every event.
type EventFilter struct {
	Task     string
	Status   string    // the payload's status
	JobID    string    // the payload's job_id
	AvatarID string    // the payload's avatar_id; with LookID, both must match
	LookID   string    // the payload's look_id
	DedupKey string    // the dedup key as the ingress computed it
	Since    time.Time // received at or after; zero means no bound
	Until    time.Time // received before; zero means no bound
	Before   string    // an event id: only events before it in the order
	Limit    int       // at most this many; 0 means DefaultLimit
	Oldest   bool      // list the oldest event first
}

// DeliveryFilter selects deliveries, listed newest event first, or oldest
// first with Oldest. Zero fields select everything.
type DeliveryFilter struct {
	State  State
	Target string
	Before string // a delivery id: only deliveries after it in the order
	Limit  int    // at most this many; 0 means DefaultLimit
	Oldest bool   // list the oldest event first
}

// Query limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// PageSize returns the number of rows a query with limit n returns at
// most: DefaultLimit for 0 or less, MaxLimit past it.
func PageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// EventSummary is an event in a list: its metadata and where each of its
// deliveries stands.
type EventSummary struct {
	Event      *Event
	Deliveries []Delivery
}

// EventDetail is one event with everything known about it.
type EventDetail struct {
	Event      *Event
	Deliveries []DeliveryDetail
}

// DeliveryDetail is a delivery with its attempts, oldest first.
type DeliveryDetail struct {
	Delivery
	History []Attempt
}

// StateCounts counts a target's deliveries by state.
type StateCounts struct {
	Pending, Delivered, Dead int
}

// Errors of the Admin methods: errors.Is tells them apart; their messages
// are sentences for an operator, shown as they are by the admin API.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// adminError is an Admin error: a message for the operator, of a kind.
type adminError struct {
	kind error
	msg  string
}

func (e *adminError) Error() string        { return e.msg }
func (e *adminError) Is(target error) bool { return target == e.kind }

// DeliveryNotFound, DeliveredConflict, InFlightConflict and EventNotFound
// are the Admin refusals, for stores to return.
func DeliveryNotFound(id string) error {
	return &adminError{ErrNotFound, fmt.Sprintf("delivery %q not found", id)}
}

// EventNotFound: see DeliveryNotFound.
func EventNotFound(id string) error {
	return &adminError{ErrNotFound, fmt.Sprintf("event %q not found", id)}
}

// DeliveredConflict: see DeliveryNotFound.
func DeliveredConflict(id string) error {
	return &adminError{ErrConflict, fmt.Sprintf("delivery %s was delivered; only dead or pending deliveries can be retried", id)}
}

// InFlightConflict: see DeliveryNotFound.
func InFlightConflict(id string) error {
	return &adminError{ErrConflict, fmt.Sprintf("delivery %s is being attempted right now; try again when the attempt ends", id)}
}
