package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// replays returns s as relay.Replays, failing t when it is not one.
func replays(t testing.TB, s relay.Store) relay.Replays {
	t.Helper()
	rs, ok := s.(relay.Replays)
	if !ok {
		t.Fatalf("%T does not implement relay.Replays", s)
	}
	return rs
}

// Replay records are created, updated, listed newest first and loaded,
// and outlast a restart.
func testReplayRecords(t *testing.T, h Harness) {
	s := open(t, h)
	rs := replays(t, s.Store)
	ctx := t.Context()
	if got, err := rs.ListReplays(ctx, 0); err != nil || len(got) != 0 {
		t.Fatalf("ListReplays of a new store = %v, %v; want none", got, err)
	}
	var made []relay.Replay
	for i := range 3 {
		at := Base.Add(time.Duration(i) * time.Minute)
		r := relay.Replay{ID: relay.NewReplayID(at), State: relay.ReplayRunning, CreatedAt: at,
			ReplayRequest: relay.ReplayRequest{Since: at.Add(-time.Hour), Until: at, Tasks: []string{"video_generate"},
				Statuses: []string{"completed", "error"}, Targets: []string{"a"}, Rate: 50}}
		if err := rs.CreateReplay(ctx, r); err != nil {
			t.Fatalf("CreateReplay(%s): %v", r.ID, err)
		}
		made = append(made, r)
	}
	up := made[1]
	up.EventsTotal, up.EventsDone, up.Deliveries, up.Cursor = 10, 4, 7, relay.NewEventID(Base)
	if err := rs.UpdateReplay(ctx, up); err != nil {
		t.Fatalf("UpdateReplay(%s): %v", up.ID, err)
	}
	ghost := relay.Replay{ID: relay.NewReplayID(Base), State: relay.ReplayDone}
	if err := rs.UpdateReplay(ctx, ghost); !errors.Is(err, relay.ErrNotFound) {
		t.Errorf("UpdateReplay of an unknown replay: %v, want ErrNotFound", err)
	}
	if _, err := rs.LoadReplay(ctx, ghost.ID); !errors.Is(err, relay.ErrNotFound) {
		t.Errorf("LoadReplay of an unknown replay: %v, want ErrNotFound", err)
	}
	check := func(rs relay.Replays, when string) {
		t.Helper()
		got, err := rs.LoadReplay(ctx, up.ID)
		if err != nil || !sameReplay(got, up) {
			t.Errorf("%s, LoadReplay(%s) = %+v, %v; want %+v", when, up.ID, got, err, up)
		}
		list, err := rs.ListReplays(ctx, 0)
		if err != nil {
			t.Fatalf("%s, ListReplays: %v", when, err)
		}
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		if want := []string{made[2].ID, made[1].ID, made[0].ID}; !slices.Equal(ids, want) {
			t.Errorf("%s, ListReplays = %v, want newest first %v", when, ids, want)
		} else if !sameReplay(list[1], up) {
			t.Errorf("%s, ListReplays holds %+v, want %+v", when, list[1], up)
		}
		if two, err := rs.ListReplays(ctx, 2); err != nil || len(two) != 2 || two[0].ID != made[2].ID {
			t.Errorf("%s, ListReplays(2) = %v, %v; want the 2 newest", when, two, err)
		}
	}
	check(rs, "after the writes")
	check(replays(t, reopen(t, h, s).Store), "after a restart")
}

func sameReplay(a, b relay.Replay) bool {
	return a.ID == b.ID && a.State == b.State && a.EventsTotal == b.EventsTotal && a.EventsDone == b.EventsDone &&
		a.Deliveries == b.Deliveries && a.Cursor == b.Cursor && a.CreatedAt.Equal(b.CreatedAt) && a.FinishedAt.Equal(b.FinishedAt) &&
		a.Since.Equal(b.Since) && a.Until.Equal(b.Until) && slices.Equal(a.Tasks, b.Tasks) && slices.Equal(a.Statuses, b.Statuses) &&
		slices.Equal(a.Targets, b.Targets) && a.Rate == b.Rate && a.Event == b.Event && a.Error == b.Error
}

// A delivery's Replay is kept by every write that stores the record: a
// swap that requeues or creates it, a claim, an outcome, a restart.
func testDeliveryReplay(t *testing.T, h Harness) {
	s := open(t, h)
	ev := Event(Base, "rp", "a")
	Ingest(t, s, ev, time.Hour)
	first := finish(t, s, Claim(t, s, "a", Base, 1)[0], Base.Add(time.Second), relay.Delivered, 200)
	done := loaded(t, s, first.ID(), relay.Delivered)
	now := Base.Add(time.Hour)
	again := done
	again.State, again.NextAttemptAt, again.BudgetSince, again.BudgetAttempts, again.UpdatedAt, again.Replay = relay.Pending, now, now, 1, now, "rpl_1"
	created := relay.NewDelivery(ev, "b")
	created.NextAttemptAt, created.BudgetSince, created.UpdatedAt, created.Replay = now, now, now, "rpl_1"
	if n := swap(t, s, relay.Swap{Old: &done, New: again}, relay.Swap{New: created}); n != 2 {
		t.Fatalf("SwapDeliveries(requeue, create) with a replay = %d, want 2", n)
	}
	if d := loaded(t, s, again.ID(), relay.Pending); !d.Equal(again) {
		t.Errorf("requeued delivery = %+v, want %+v", d, again)
	}
	s = reopen(t, h, s)
	for _, want := range []relay.Delivery{again, created} {
		cs := Claim(t, s, want.Target, now, 1)
		if len(cs) != 1 || !cs[0].Delivery.Equal(want) {
			t.Fatalf("Claim(%s) after a restart = %+v, want %+v", want.Target, cs, want)
		}
		out := finish(t, s, cs[0], now.Add(time.Second), relay.Delivered, 200)
		if d := loaded(t, s, out.ID(), relay.Delivered); d.Replay != "rpl_1" {
			t.Errorf("delivery %s after its outcome has Replay %q, want rpl_1", d.ID(), d.Replay)
		}
	}
}

// ReplayedDelivery is a delivered delivery that a replay requeued, for
// the codec tests of the adapters.
func ReplayedDelivery() relay.Delivery {
	return relay.Delivery{EventID: relay.NewEventID(Base), Target: "a", State: relay.Delivered, Attempts: 2, NextAttemptAt: Base,
		LastStatus: 200, BudgetSince: Base, UpdatedAt: Base.Add(time.Second), Replay: "rpl_01HX"}
}
