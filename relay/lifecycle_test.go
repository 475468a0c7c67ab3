package relay_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

func TestNewDelivery(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	ev := &relay.Event{ID: relay.NewEventID(at), ReceivedAt: at, Targets: []string{"a", "b"}}
	d := relay.NewDelivery(ev, "b")
	want := relay.Delivery{EventID: ev.ID, Target: "b", State: relay.Pending, NextAttemptAt: at, BudgetSince: at, UpdatedAt: at}
	if d != want {
		t.Errorf("NewDelivery(%s, b) = %+v, want %+v: pending, due and budgeted from the receive time", ev.ID, d, want)
	}
}

func TestRequeued(t *testing.T) {
	received := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	now := received.Add(48 * time.Hour)
	tried := relay.Delivery{EventID: relay.NewEventID(received), Target: "a", Attempts: 7, NextAttemptAt: received.Add(time.Hour),
		LastStatus: 503, LastError: "HTTP 503", BudgetSince: received, UpdatedAt: received.Add(time.Hour)}
	for _, tc := range []struct {
		state    relay.State
		conflict bool
	}{
		{relay.Dead, false},
		{relay.Pending, false},
		{relay.Delivered, true},
	} {
		t.Run(string(tc.state), func(t *testing.T) {
			d := tried
			d.State = tc.state
			got, err := relay.Requeued(d, now)
			if tc.conflict {
				if !errors.Is(err, relay.ErrConflict) || err.Error() != relay.DeliveredConflict(d.ID()).Error() {
					t.Errorf("Requeued(%s) error = %v, want the DeliveredConflict refusal", tc.state, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Requeued(%s): %v", tc.state, err)
			}
			want := d
			want.State, want.NextAttemptAt, want.BudgetSince, want.UpdatedAt, want.BudgetAttempts = relay.Pending, now, now, now, 7
			if got != want {
				t.Errorf("Requeued(%s) = %+v, want %+v: pending and due now, its budget counted from attempt 7 and now, its last answer kept", tc.state, got, want)
			}
		})
	}
}

func TestDeliveryEqual(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	d := relay.Delivery{EventID: relay.NewEventID(at), Target: "a", State: relay.Pending, NextAttemptAt: at, BudgetSince: at, UpdatedAt: at}
	same := d
	same.NextAttemptAt = at.In(time.FixedZone("CET", 3600)) // the same instant elsewhere
	if !d.Equal(same) {
		t.Errorf("a delivery is not Equal to itself with a time in another location")
	}
	for name, change := range map[string]func(*relay.Delivery){
		"state":           func(d *relay.Delivery) { d.State = relay.Dead },
		"attempts":        func(d *relay.Delivery) { d.Attempts++ },
		"next attempt":    func(d *relay.Delivery) { d.NextAttemptAt = d.NextAttemptAt.Add(time.Nanosecond) },
		"budget since":    func(d *relay.Delivery) { d.BudgetSince = d.BudgetSince.Add(time.Second) },
		"updated":         func(d *relay.Delivery) { d.UpdatedAt = d.UpdatedAt.Add(time.Second) },
		"last error":      func(d *relay.Delivery) { d.LastError = "x" },
		"budget attempts": func(d *relay.Delivery) { d.BudgetAttempts = 1 },
	} {
		o := d
		change(&o)
		if d.Equal(o) || o.Equal(d) {
			t.Errorf("deliveries that differ in %s are Equal", name)
		}
	}
}
