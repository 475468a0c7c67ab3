package relay

import "time"

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
