package relay

import (
	"context"
	"errors"
	"time"
)

// Store is what the relay needs from durable storage. Implementations are
// safe for concurrent use.
//
// The queue contract: a pending delivery is due at its NextAttemptAt. Claim
// hands a due delivery to one caller at a time and holds it until Complete
// or Release; a holder that dies loses its hold (at restart for an embedded
// store, when a lease expires for a shared one), and the delivery is due
// again. Deliveries are therefore attempted at least once, never by two
// holders at the same time.
type Store interface {
	// Ingest writes ev, a pending delivery for each of ev.Targets (due,
	// and with its budget counting, from ev.ReceivedAt), and the dedup mark
	// (ev.Source, ev.DedupKey), in one atomic, durable step. A mark is live
	// while ev.ReceivedAt is less than ttl after the marked event's
	// ReceivedAt; when one is, Ingest writes nothing and returns the first
	// event's id with Duplicate set.
	Ingest(ctx context.Context, ev *Event, ttl time.Duration) (IngestResult, error)

	// Claim holds up to max deliveries of target that are due at now,
	// earliest due first, and returns them with their events, payload
	// included. What is due is decided by now, not by the store's clock.
	Claim(ctx context.Context, target string, now time.Time, max int) ([]Claim, error)

	// NextDue reports when the earliest pending delivery of target that
	// nobody holds is due; ok is false when there is none.
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

	// Ping reports whether the store can take writes.
	Ping(ctx context.Context) error

	// Close writes what Complete deferred and releases the store. Holds
	// still open are dropped, so those deliveries are due again when the
	// store is next opened. A second Close returns nil.
	Close() error
}

// IngestResult is what Store.Ingest did.
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

// ErrClosed is returned by a Store used after Close.
var ErrClosed = errors.New("store closed")
