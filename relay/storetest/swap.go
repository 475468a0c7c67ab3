package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// loaded waits until the delivery id is stored in state, as a final
// outcome may be written after Complete returns, and returns it.
func loaded(t testing.TB, s relay.Store, id string, state relay.State) relay.Delivery {
	t.Helper()
	var d relay.Delivery
	Eventually(t, 5*time.Second, func() error {
		var err error
		if d, _, err = s.LoadDelivery(t.Context(), id); err != nil {
			return err
		}
		if d.State != state {
			return fmt.Errorf("LoadDelivery(%s) = %+v, want it %s", id, d, state)
		}
		return nil
	})
	return d
}

func swap(t testing.TB, s relay.Store, swaps ...relay.Swap) int {
	t.Helper()
	n, err := s.SwapDeliveries(t.Context(), swaps...)
	if err != nil {
		t.Fatalf("SwapDeliveries(%d swaps): %v", len(swaps), err)
	}
	return n
}

func wantCounts(t testing.TB, s relay.Store, want map[string]relay.StateCounts) {
	t.Helper()
	Eventually(t, 5*time.Second, func() error {
		got, err := s.Counts(t.Context())
		if err != nil {
			return err
		}
		for target, w := range want {
			if got[target] != w {
				return fmt.Errorf("Counts()[%s] = %+v, want %+v (all: %+v)", target, got[target], w, got)
			}
		}
		return nil
	})
}

// LoadDelivery returns the stored record and whether a claim holds it.
func testLoadDelivery(t *testing.T, h Harness) {
	s := open(t, h)
	ev := Event(Base, "k", "a", "b")
	Ingest(t, s, ev, time.Hour)
	held := Claim(t, s, "a", Base, 1)[0].Delivery
	done := finish(t, s, Claim(t, s, "b", Base, 1)[0], Base.Add(time.Minute), relay.Dead, 410)

	d, isHeld, err := s.LoadDelivery(t.Context(), held.ID())
	if err != nil || !isHeld || !d.Equal(relay.NewDelivery(ev, "a")) {
		t.Errorf("LoadDelivery(claimed %s) = %+v, held %v, %v; want the fresh record, held", held.ID(), d, isHeld, err)
	}
	if err := s.Release(t.Context(), Base, held); err != nil {
		t.Fatal(err)
	}
	if _, isHeld, err := s.LoadDelivery(t.Context(), held.ID()); err != nil || isHeld {
		t.Errorf("LoadDelivery(released %s): held %v, %v; want not held", held.ID(), isHeld, err)
	}
	if got := loaded(t, s, done.ID(), relay.Dead); !got.Equal(done) {
		t.Errorf("LoadDelivery(dead %s) = %+v, want the completed record %+v", done.ID(), got, done)
	}
	for _, id := range []string{relay.DeliveryID(ev.ID, "nobody"), relay.DeliveryID(relay.NewEventID(Base), "a"), "garbage"} {
		if _, _, err := s.LoadDelivery(t.Context(), id); !errors.Is(err, relay.ErrNotFound) {
			t.Errorf("LoadDelivery(%q) error = %v, want ErrNotFound", id, err)
		}
	}
}

// SwapDeliveries moves a delivery between any two states, and the queue,
// the lists and the counts follow, now and after a restart. Recorded
// attempts stay.
func testSwapStates(t *testing.T, h Harness) {
	s := open(t, h)
	e1, e2 := Event(Base, "s1", "a", "b"), Event(Base.Add(time.Second), "s2", "a")
	Ingest(t, s, e1, time.Hour)
	Ingest(t, s, e2, time.Hour)
	cs := Claim(t, s, "a", Base.Add(time.Second), 2)
	dead := finish(t, s, cs[0], Base.Add(time.Minute), relay.Dead, 410)
	delivered := finish(t, s, Claim(t, s, "b", Base, 1)[0], Base.Add(time.Minute), relay.Delivered, 200)
	if err := s.Release(t.Context(), Base.Add(time.Second), cs[1].Delivery); err != nil {
		t.Fatal(err)
	}
	pending := cs[1].Delivery
	dead = loaded(t, s, dead.ID(), relay.Dead)
	delivered = loaded(t, s, delivered.ID(), relay.Delivered)
	wantCounts(t, s, map[string]relay.StateCounts{"a": {Pending: 1, Dead: 1}, "b": {Delivered: 1}})

	now := Base.Add(time.Hour)
	back := dead
	back.State, back.NextAttemptAt, back.UpdatedAt = relay.Pending, now, now
	again := delivered // as a replay would
	again.State, again.NextAttemptAt, again.UpdatedAt = relay.Pending, now.Add(time.Minute), now
	given := pending // an operator gives up on it
	given.State, given.LastError, given.UpdatedAt = relay.Dead, "given up", now
	if n := swap(t, s, relay.Swap{Old: &dead, New: back}, relay.Swap{Old: &delivered, New: again}, relay.Swap{Old: &pending, New: given}); n != 3 {
		t.Fatalf("SwapDeliveries(dead→pending, delivered→pending, pending→dead) = %d, want 3", n)
	}
	check := func(s relay.Store, when string) {
		t.Helper()
		wantCounts(t, s, map[string]relay.StateCounts{"a": {Pending: 1, Dead: 1}, "b": {Pending: 1}})
		if got := deliveryIDs(listDeliveries(t, s, relay.DeliveryFilter{State: relay.Dead})); !slices.Equal(got, []string{given.ID()}) {
			t.Errorf("%s, dead deliveries = %v, want [%s]", when, got, given.ID())
		}
		if got := deliveryIDs(listDeliveries(t, s, relay.DeliveryFilter{State: relay.Pending})); !slices.Equal(got, []string{again.ID(), back.ID()}) {
			t.Errorf("%s, pending deliveries = %v, want [%s %s]", when, got, again.ID(), back.ID())
		}
		if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(now) {
			t.Errorf("%s, NextDue(a) = %v %v, want %v", when, due, ok, now)
		}
		if cs := Claim(t, s, "a", now.Add(time.Hour), 10); len(cs) != 1 || !cs[0].Delivery.Equal(back) || string(cs[0].Event.Payload) != string(e1.Payload) {
			t.Errorf("%s, Claim(a) = %v, want only %s as swapped in, with its event", when, ClaimIDs(cs), back.ID())
		}
		if cs := Claim(t, s, "b", now, 10); len(cs) != 0 {
			t.Errorf("%s, Claim(b) before its due time = %v", when, ClaimIDs(cs))
		}
		if cs := Claim(t, s, "b", now.Add(time.Minute), 10); len(cs) != 1 || !cs[0].Delivery.Equal(again) {
			t.Errorf("%s, Claim(b) at its due time = %v, want %s", when, ClaimIDs(cs), again.ID())
		}
		got, err := s.Event(t.Context(), e1.ID)
		if err != nil {
			t.Fatalf("Event(%s): %v", e1.ID, err)
		}
		for _, dd := range got.Deliveries {
			if len(dd.History) != 1 {
				t.Errorf("%s, delivery %s has %d attempts recorded, want the 1 it had", when, dd.ID(), len(dd.History))
			}
		}
	}
	check(s, "after the swaps")
	check(reopen(t, h, s), "after a restart")
}

// A swap is stored only while the delivery is as its Old says, is not
// held, and, for a new delivery, does not exist while its event does; the
// others in the same call are stored.
func testSwapRefusals(t *testing.T, h Harness) {
	s := open(t, h)
	ev := Event(Base, "r", "a", "b", "c")
	Ingest(t, s, ev, time.Hour)
	held := Claim(t, s, "a", Base, 1)[0].Delivery
	free := loaded(t, s, relay.DeliveryID(ev.ID, "b"), relay.Pending)
	other := loaded(t, s, relay.DeliveryID(ev.ID, "c"), relay.Pending)
	now := Base.Add(time.Hour)
	moved := func(d relay.Delivery) relay.Delivery { d.NextAttemptAt, d.UpdatedAt = now, now; return d }
	changed := free
	changed.Attempts = 3 // not what is stored
	missing := relay.NewDelivery(ev, "nobody")
	ghost := relay.NewDelivery(Event(Base, "ghost", "a"), "a") // of an event never stored

	for _, tc := range []struct {
		name string
		sw   relay.Swap
	}{
		{"held by a claim", relay.Swap{Old: &held, New: moved(held)}},
		{"changed since it was read", relay.Swap{Old: &changed, New: moved(free)}},
		{"gone", relay.Swap{Old: &missing, New: moved(missing)}},
		{"created, but it exists", relay.Swap{New: moved(free)}},
		{"created, but its event does not exist", relay.Swap{New: ghost}},
	} {
		if n := swap(t, s, tc.sw); n != 0 {
			t.Errorf("SwapDeliveries(%s) = %d, want 0", tc.name, n)
		}
	}
	if n := swap(t, s, relay.Swap{Old: &changed, New: moved(free)}, relay.Swap{Old: &other, New: moved(other)}); n != 1 {
		t.Errorf("SwapDeliveries(one stale, one good) = %d, want 1", n)
	}
	if d, isHeld, err := s.LoadDelivery(t.Context(), held.ID()); err != nil || !isHeld || !d.Equal(held) {
		t.Errorf("the held delivery after refused swaps = %+v, held %v, %v; want it untouched", d, isHeld, err)
	}
	if d := loaded(t, s, free.ID(), relay.Pending); !d.Equal(free) {
		t.Errorf("the changed delivery after a refused swap = %+v, want it untouched %+v", d, free)
	}
	if d := loaded(t, s, other.ID(), relay.Pending); !d.Equal(moved(other)) {
		t.Errorf("the delivery swapped beside a stale one = %+v, want %+v", d, moved(other))
	}
	if _, _, err := s.LoadDelivery(t.Context(), ghost.ID()); !errors.Is(err, relay.ErrNotFound) {
		t.Errorf("a delivery created for an event that does not exist: LoadDelivery = %v, want ErrNotFound", err)
	}
	if cs := Claim(t, s, "b", Base, 10); len(cs) != 1 || !cs[0].Delivery.Equal(free) {
		t.Errorf("Claim(b) after a refused swap = %v, want %s at its old due time", ClaimIDs(cs), free.ID())
	}
	if n := swap(t, s); n != 0 {
		t.Errorf("SwapDeliveries() = %d, want 0", n)
	}
}

// A delivery created for a stored event joins its event, the queue, the
// lists and the counts, as one ingested with it would.
func testSwapCreates(t *testing.T, h Harness) {
	s := open(t, h)
	ev := Event(Base, "c", "a")
	unrouted := Event(Base.Add(time.Second), "u")
	Ingest(t, s, ev, time.Hour)
	Ingest(t, s, unrouted, time.Hour)
	now := Base.Add(time.Hour)
	fresh := func(ev *relay.Event, target string) relay.Delivery {
		d := relay.NewDelivery(ev, target)
		d.NextAttemptAt, d.BudgetSince, d.UpdatedAt = now, now, now
		return d
	}
	added, first := fresh(ev, "c"), fresh(unrouted, "a")
	if n := swap(t, s, relay.Swap{New: added}, relay.Swap{New: first}); n != 2 {
		t.Fatalf("SwapDeliveries(create %s, %s) = %d, want 2", added.ID(), first.ID(), n)
	}
	if n := swap(t, s, relay.Swap{New: added}); n != 0 {
		t.Errorf("creating %s again = %d, want 0", added.ID(), n)
	}
	check := func(s relay.Store, when string) {
		t.Helper()
		for _, c := range []struct {
			ev      *relay.Event
			targets []string
		}{{ev, []string{"a", "c"}}, {unrouted, []string{"a"}}} {
			got, err := s.Event(t.Context(), c.ev.ID)
			if err != nil {
				t.Fatalf("%s, Event(%s): %v", when, c.ev.ID, err)
			}
			var ts []string
			for _, d := range got.Deliveries {
				ts = append(ts, d.Target)
			}
			if !slices.Equal(got.Event.Targets, c.targets) || !slices.Equal(ts, c.targets) {
				t.Errorf("%s, event %s has targets %v and deliveries to %v, want %v", when, c.ev.ID, got.Event.Targets, ts, c.targets)
			}
		}
		es := listEvents(t, s, relay.EventFilter{})
		if len(es) != 2 || len(es[1].Deliveries) != 2 || es[1].Deliveries[1].ID() != added.ID() {
			t.Errorf("%s, Events() = %+v, want the created delivery listed with its event", when, es)
		}
		wantCounts(t, s, map[string]relay.StateCounts{"a": {Pending: 2}, "c": {Pending: 1}})
		if got := deliveryIDs(listDeliveries(t, s, relay.DeliveryFilter{Target: "c"})); !slices.Equal(got, []string{added.ID()}) {
			t.Errorf("%s, Deliveries(target c) = %v, want [%s]", when, got, added.ID())
		}
		if n := backlog(t, s, "c"); n != 1 {
			t.Errorf("%s, Backlog(c) = %d, want 1", when, n)
		}
		if cs := Claim(t, s, "c", now.Add(-time.Millisecond), 10); len(cs) != 0 {
			t.Errorf("%s, Claim(c) before the created delivery is due = %v", when, ClaimIDs(cs))
		}
		cs := Claim(t, s, "c", now, 10)
		if len(cs) != 1 || !cs[0].Delivery.Equal(added) || cs[0].Event.ID != ev.ID || string(cs[0].Event.Payload) != string(ev.Payload) {
			t.Fatalf("%s, Claim(c) = %v, want %s with its event and payload", when, ClaimIDs(cs), added.ID())
		}
		if err := s.Release(t.Context(), now, cs[0].Delivery); err != nil {
			t.Fatal(err)
		}
	}
	check(s, "after creating")
	s = reopen(t, h, s)
	check(s, "after a restart")
	c := Claim(t, s, "c", now, 1)[0]
	finish(t, s, c, now, relay.Delivered, 200)
	wantCounts(t, s, map[string]relay.StateCounts{"c": {Delivered: 1}})
}
