package relay

import (
	"context"
	"fmt"
	"time"
)

// The state changes of a delivery that are not an attempt's outcome. They
// are plain functions, so that every store writes the same records: a store
// only keeps what they return.

// NewDelivery returns the delivery of ev to target as Ingest stores it:
// pending, due at once, its budget counting from ev.ReceivedAt.
func NewDelivery(ev *Event, target string) Delivery {
	return Delivery{EventID: ev.ID, Target: target, State: Pending,
		NextAttemptAt: ev.ReceivedAt, BudgetSince: ev.ReceivedAt, UpdatedAt: ev.ReceivedAt}
}

// Requeued returns d put back in line by an operator: pending, due at now,
// with a fresh budget (max_attempts and max_age count from now, and attempt
// numbers go on). A delivered delivery is refused with DeliveredConflict:
// delivering it again is a replay, not a retry.
func Requeued(d Delivery, now time.Time) (Delivery, error) {
	if d.State == Delivered {
		return d, DeliveredConflict(d.ID())
	}
	return requeue(d, now), nil
}

// requeue puts d back in line at now with a fresh budget, whatever its
// state: the step that a retry and a replay share.
func requeue(d Delivery, now time.Time) Delivery {
	d.State = Pending
	d.NextAttemptAt, d.BudgetSince, d.UpdatedAt = now, now, now
	d.BudgetAttempts = d.Attempts
	return d
}

// Equal reports whether d and o are the same record: every field equal,
// times by time.Equal (a decoded time has lost its monotonic reading and
// may have another location).
func (d Delivery) Equal(o Delivery) bool {
	if !d.NextAttemptAt.Equal(o.NextAttemptAt) || !d.BudgetSince.Equal(o.BudgetSince) || !d.UpdatedAt.Equal(o.UpdatedAt) {
		return false
	}
	d.NextAttemptAt, d.BudgetSince, d.UpdatedAt = time.Time{}, time.Time{}, time.Time{}
	o.NextAttemptAt, o.BudgetSince, o.UpdatedAt = time.Time{}, time.Time{}, time.Time{}
	return d == o
}

// maxSwapTries bounds how often Requeue loads a delivery whose record keeps
// changing under it.
const maxSwapTries = 8

// Requeue puts the dead or pending delivery id of s back in line, due at
// now, with a fresh budget (see Requeued), and returns its new record. It
// returns ErrNotFound, or ErrConflict when the delivery was delivered or is
// being attempted.
func Requeue(ctx context.Context, s Admin, id string, now time.Time) (Delivery, error) {
	for range maxSwapTries {
		d, held, err := s.LoadDelivery(ctx, id)
		if err != nil {
			return Delivery{}, err
		}
		if held {
			return Delivery{}, InFlightConflict(id)
		}
		nd, err := Requeued(d, now)
		if err != nil {
			return Delivery{}, err
		}
		n, err := s.SwapDeliveries(ctx, Swap{Old: &d, New: nd})
		if err != nil {
			return Delivery{}, fmt.Errorf("requeue %s: %w", id, err)
		}
		if n == 1 {
			return nd, nil
		}
	}
	return Delivery{}, InFlightConflict(id) // its record keeps changing under us
}

// RequeueDead requeues up to max dead deliveries of target, oldest first,
// as Requeue does, in one store write, and returns how many it requeued:
// a dead letter that changes meanwhile is left alone. A caller with more
// to do calls again until it gets 0; max is at most MaxLimit.
func RequeueDead(ctx context.Context, s Admin, target string, now time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	dead, err := s.Deliveries(ctx, DeliveryFilter{State: Dead, Target: target, Limit: max, Oldest: true})
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	swaps := make([]Swap, 0, len(dead))
	for i := range dead {
		if nd, err := Requeued(dead[i], now); err == nil {
			swaps = append(swaps, Swap{Old: &dead[i], New: nd})
		}
	}
	n, err := s.SwapDeliveries(ctx, swaps...)
	if err != nil {
		return 0, fmt.Errorf("requeue dead deliveries of %s: %w", target, err)
	}
	return n, nil
}
