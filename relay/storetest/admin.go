package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// finish completes a claimed delivery as delivered or dead after one
// attempt answered with status.
func finish(t testing.TB, s relay.Store, c relay.Claim, at time.Time, state relay.State, status int) relay.Delivery {
	t.Helper()
	d := c.Delivery
	d.Attempts++
	d.State = state
	d.LastStatus = status
	d.UpdatedAt = at
	complete(t, s, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: d.Attempts, StartedAt: at, Duration: time.Millisecond, Status: status, Body: "answer"}})
	return d
}

func eventIDs(es []relay.EventSummary) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.Event.ID
	}
	return ids
}

func deliveryIDs(ds []relay.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID()
	}
	return ids
}

func listEvents(t testing.TB, s relay.Store, f relay.EventFilter) []relay.EventSummary {
	t.Helper()
	es, err := s.Events(t.Context(), f)
	if err != nil {
		t.Fatalf("Events(%+v): %v", f, err)
	}
	return es
}

func listDeliveries(t testing.TB, s relay.Store, f relay.DeliveryFilter) []relay.Delivery {
	t.Helper()
	ds, err := s.Deliveries(t.Context(), f)
	if err != nil {
		t.Fatalf("Deliveries(%+v): %v", f, err)
	}
	return ds
}

func reversed(ss ...string) []string {
	ss = slices.Clone(ss)
	slices.Reverse(ss)
	return ss
}

// Events lists newest first, filters by task and status, pages with Before
// and reports where each delivery stands.
func testEvents(t *testing.T, h Harness) {
	s := open(t, h)
	var all []string
	for i := range 6 {
		ev := Event(Base.Add(time.Duration(i)*time.Second), fmt.Sprint("e", i), "a", "b")
		if i%2 == 1 {
			ev.Task = "avatar_generate"
		}
		if i >= 4 {
			ev.Status = "failed"
		}
		Ingest(t, s, ev, time.Hour)
		all = append(all, ev.ID)
	}
	unrouted := Event(Base.Add(6*time.Second), "e6")
	Ingest(t, s, unrouted, time.Hour)
	all = append(all, unrouted.ID)

	if got := eventIDs(listEvents(t, s, relay.EventFilter{})); !slices.Equal(got, reversed(all...)) {
		t.Errorf("Events() = %v, want every event newest first %v", got, reversed(all...))
	}
	if got := eventIDs(listEvents(t, s, relay.EventFilter{Task: "avatar_generate"})); !slices.Equal(got, reversed(all[1], all[3], all[5])) {
		t.Errorf("Events(task avatar_generate) = %v, want %v", got, reversed(all[1], all[3], all[5]))
	}
	if got := eventIDs(listEvents(t, s, relay.EventFilter{Status: "failed"})); !slices.Equal(got, reversed(all[4], all[5])) {
		t.Errorf("Events(status failed) = %v, want %v", got, reversed(all[4], all[5]))
	}
	if got := eventIDs(listEvents(t, s, relay.EventFilter{Task: "video_generate", Status: "completed"})); !slices.Equal(got, reversed(all[0], all[2], all[6])) {
		t.Errorf("Events(video_generate, completed) = %v, want %v", got, reversed(all[0], all[2], all[6]))
	}
	if got := eventIDs(listEvents(t, s, relay.EventFilter{Task: "nothing"})); len(got) != 0 {
		t.Errorf("Events(task nothing) = %v, want none", got)
	}
	page := listEvents(t, s, relay.EventFilter{Limit: 3})
	if got := eventIDs(page); !slices.Equal(got, reversed(all[4:]...)) {
		t.Fatalf("Events(limit 3) = %v, want %v", got, reversed(all[4:]...))
	}
	next := listEvents(t, s, relay.EventFilter{Limit: 3, Before: page[2].Event.ID})
	if got := eventIDs(next); !slices.Equal(got, reversed(all[1:4]...)) {
		t.Errorf("Events(limit 3, before %s) = %v, want the next page %v", page[2].Event.ID, got, reversed(all[1:4]...))
	}
	if got := eventIDs(listEvents(t, s, relay.EventFilter{Task: "avatar_generate", Before: all[3]})); !slices.Equal(got, []string{all[1]}) {
		t.Errorf("Events(avatar_generate, before e3) = %v, want [%s]", got, all[1])
	}

	// A delivery's state shows in the list.
	cs := Claim(t, s, "a", Base, 1)
	finish(t, s, cs[0], Base.Add(time.Minute), relay.Delivered, 200)
	Eventually(t, 5*time.Second, func() error {
		es := listEvents(t, s, relay.EventFilter{Before: all[1]})
		if len(es) != 1 || es[0].Event.ID != all[0] {
			return fmt.Errorf("Events(before e1) = %v, want [e0]", eventIDs(es))
		}
		e := es[0]
		if e.Event.Task != "video_generate" || e.Event.Status != "completed" || e.Event.DedupKey != "e0" || e.Event.Source != "hoox" || !e.Event.ReceivedAt.Equal(Base) {
			return fmt.Errorf("event = %+v, want e0's metadata", e.Event)
		}
		var got []string
		for _, d := range e.Deliveries {
			got = append(got, fmt.Sprintf("%s:%s:%d", d.Target, d.State, d.Attempts))
		}
		if want := []string{"a:delivered:1", "b:pending:0"}; !slices.Equal(got, want) {
			return fmt.Errorf("deliveries of e0 = %v, want %v", got, want)
		}
		return nil
	})
	if es := listEvents(t, s, relay.EventFilter{Before: all[0]}); len(es) != 0 {
		t.Errorf("Events(before the oldest) = %v, want none", eventIDs(es))
	}
}

// Event returns the payload as received and every attempt of every
// delivery, oldest first.
func testEventDetail(t *testing.T, h Harness) {
	s := open(t, h)
	ev := Event(Base, "k", "a", "b")
	Ingest(t, s, ev, time.Hour)

	c := Claim(t, s, "a", Base, 1)[0]
	d := c.Delivery
	d.Attempts, d.LastStatus, d.NextAttemptAt = 1, 503, Base.Add(time.Second)
	complete(t, s, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: Base, Duration: 3 * time.Millisecond, Status: 503, Body: "busy"}})
	c = Claim(t, s, "a", Base.Add(time.Second), 1)[0]
	finish(t, s, c, Base.Add(2*time.Second), relay.Delivered, 204)

	Eventually(t, 5*time.Second, func() error {
		got, err := s.Event(t.Context(), ev.ID)
		if err != nil {
			return err
		}
		if got.Event.ID != ev.ID || string(got.Event.Payload) != string(ev.Payload) || got.Event.Headers["User-Agent"] != "Hoox/1.0" || got.Event.Trace != Trace {
			return fmt.Errorf("Event = %+v with payload %q, want the event as ingested", got.Event, got.Event.Payload)
		}
		if len(got.Deliveries) != 2 {
			return fmt.Errorf("Event has %d deliveries, want 2", len(got.Deliveries))
		}
		a, b := got.Deliveries[0], got.Deliveries[1]
		if a.Target != "a" || a.State != relay.Delivered || a.Attempts != 2 || len(a.History) != 2 {
			return fmt.Errorf("delivery to a = %+v, want delivered after 2 attempts, both recorded", a)
		}
		if h0, h1 := a.History[0], a.History[1]; h0.Number != 1 || h0.Status != 503 || h0.Body != "busy" || h0.Duration != 3*time.Millisecond || !h0.StartedAt.Equal(Base) || h1.Number != 2 || h1.Status != 204 {
			return fmt.Errorf("history of a = %+v, want attempt 1 (503 busy) then 2 (204)", a.History)
		}
		if b.Target != "b" || b.State != relay.Pending || len(b.History) != 0 {
			return fmt.Errorf("delivery to b = %+v, want pending and never attempted", b)
		}
		return nil
	})

	if _, err := s.Event(t.Context(), relay.NewEventID(Base)); !errors.Is(err, relay.ErrNotFound) {
		t.Errorf("Event(unknown id) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Event(t.Context(), "not an id"); !errors.Is(err, relay.ErrNotFound) {
		t.Errorf("Event(malformed id) error = %v, want ErrNotFound", err)
	}
}

// Deliveries filters by state and target, newest event first or oldest
// first, and pages with Before.
func testDeliveries(t *testing.T, h Harness) {
	s := open(t, h)
	var evs []*relay.Event
	for i := range 4 {
		ev := Event(Base.Add(time.Duration(i)*time.Second), fmt.Sprint("d", i), "a", "b")
		Ingest(t, s, ev, time.Hour)
		evs = append(evs, ev)
	}
	id := func(i int, target string) string { return relay.DeliveryID(evs[i].ID, target) }

	// a: e0 delivered, e1 dead, e2 held (pending), e3 pending.
	cs := Claim(t, s, "a", Base.Add(2*time.Second), 3)
	finish(t, s, cs[0], Base.Add(time.Minute), relay.Delivered, 200)
	dead := finish(t, s, cs[1], Base.Add(time.Minute), relay.Dead, 404)

	Eventually(t, 5*time.Second, func() error {
		for _, tc := range []struct {
			f    relay.DeliveryFilter
			want []string
		}{
			{relay.DeliveryFilter{Target: "a"}, []string{id(3, "a"), id(2, "a"), id(1, "a"), id(0, "a")}},
			{relay.DeliveryFilter{Target: "a", State: relay.Pending}, []string{id(3, "a"), id(2, "a")}},
			{relay.DeliveryFilter{Target: "a", State: relay.Dead}, []string{id(1, "a")}},
			{relay.DeliveryFilter{Target: "a", State: relay.Delivered}, []string{id(0, "a")}},
			{relay.DeliveryFilter{State: relay.Pending}, []string{id(3, "b"), id(3, "a"), id(2, "b"), id(2, "a"), id(1, "b"), id(0, "b")}},
			{relay.DeliveryFilter{}, []string{id(3, "b"), id(3, "a"), id(2, "b"), id(2, "a"), id(1, "b"), id(1, "a"), id(0, "b"), id(0, "a")}},
			{relay.DeliveryFilter{Limit: 3}, []string{id(3, "b"), id(3, "a"), id(2, "b")}},
			{relay.DeliveryFilter{Limit: 3, Before: id(2, "b")}, []string{id(2, "a"), id(1, "b"), id(1, "a")}},
			{relay.DeliveryFilter{Target: "b", Before: id(2, "b")}, []string{id(1, "b"), id(0, "b")}},
			{relay.DeliveryFilter{Target: "nobody"}, nil},
			{relay.DeliveryFilter{State: relay.Dead, Target: "b"}, nil},
			{relay.DeliveryFilter{Target: "a", Oldest: true}, []string{id(0, "a"), id(1, "a"), id(2, "a"), id(3, "a")}},
			{relay.DeliveryFilter{State: relay.Pending, Oldest: true}, []string{id(0, "b"), id(1, "b"), id(2, "a"), id(2, "b"), id(3, "a"), id(3, "b")}},
			{relay.DeliveryFilter{State: relay.Dead, Oldest: true}, []string{id(1, "a")}},
			{relay.DeliveryFilter{State: relay.Delivered, Oldest: true}, []string{id(0, "a")}},
			{relay.DeliveryFilter{Oldest: true, Limit: 3}, []string{id(0, "a"), id(0, "b"), id(1, "a")}},
			{relay.DeliveryFilter{Oldest: true, Limit: 3, Before: id(1, "a")}, []string{id(1, "b"), id(2, "a"), id(2, "b")}},
			{relay.DeliveryFilter{Target: "b", State: relay.Pending, Oldest: true, Before: id(2, "b")}, []string{id(3, "b")}},
		} {
			if got := deliveryIDs(listDeliveries(t, s, tc.f)); !slices.Equal(got, tc.want) {
				return fmt.Errorf("Deliveries(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		}
		return nil
	})
	got := listDeliveries(t, s, relay.DeliveryFilter{State: relay.Dead})
	if len(got) != 1 || got[0].LastStatus != 404 || got[0].Attempts != 1 || !got[0].UpdatedAt.Equal(dead.UpdatedAt) {
		t.Errorf("dead deliveries = %+v, want the record of %s (404 after 1 attempt)", got, dead.ID())
	}
}

// relay.Requeue, over the store's LoadDelivery and SwapDeliveries, gives a
// dead or pending delivery a fresh budget, due now; numbering goes on.
// Delivered and held deliveries are refused.
func testRequeue(t *testing.T, h Harness) {
	s := open(t, h)
	e1, e2, e3 := Event(Base, "r1", "a"), Event(Base.Add(time.Second), "r2", "a"), Event(Base.Add(2*time.Second), "r3", "a")
	for _, ev := range []*relay.Event{e1, e2, e3} {
		Ingest(t, s, ev, time.Hour)
	}
	cs := Claim(t, s, "a", Base.Add(time.Hour), 3)
	d1 := cs[0].Delivery
	d1.Attempts, d1.BudgetAttempts, d1.State, d1.LastStatus = 5, 0, relay.Dead, 500
	complete(t, s, relay.Outcome{Delivery: d1, Attempt: &relay.Attempt{Number: 5, Status: 500}})
	finish(t, s, cs[1], Base.Add(time.Minute), relay.Delivered, 200)
	held := cs[2].Delivery

	now := Base.Add(2 * time.Hour)
	Eventually(t, 5*time.Second, func() error {
		_, err := relay.Requeue(t.Context(), s, d1.ID(), now)
		return err
	})
	Eventually(t, 5*time.Second, func() error {
		if n := backlog(t, s, "a"); n != 2 {
			return fmt.Errorf("backlog after requeueing a dead delivery = %d, want 2 (it and the held one)", n)
		}
		return nil
	})
	if due, ok := nextDue(t, s, "a"); !ok || !due.Equal(now) {
		t.Errorf("NextDue after Requeue = %v, %v; want the requeue time %v", due, ok, now)
	}
	c := Claim(t, s, "a", now, 10)
	if len(c) != 1 || c[0].Delivery.ID() != d1.ID() {
		t.Fatalf("Claim after Requeue = %v, want %s", ClaimIDs(c), d1.ID())
	}
	if got := c[0].Delivery; got.State != relay.Pending || got.Attempts != 5 || got.BudgetAttempts != 5 || !got.BudgetSince.Equal(now) || !got.NextAttemptAt.Equal(now) {
		t.Errorf("requeued delivery = %+v, want pending, attempts 5, budget counted from attempt 5 and %v", got, now)
	}

	for _, tc := range []struct {
		id   string
		want error
	}{
		{relay.DeliveryID(e2.ID, "a"), relay.ErrConflict}, // delivered
		{held.ID(), relay.ErrConflict},                    // being attempted
		{relay.DeliveryID(e2.ID, "nobody"), relay.ErrNotFound},
		{relay.DeliveryID(relay.NewEventID(Base), "a"), relay.ErrNotFound},
		{"garbage", relay.ErrNotFound},
	} {
		if _, err := relay.Requeue(t.Context(), s, tc.id, now); !errors.Is(err, tc.want) {
			t.Errorf("Requeue(%s) error = %v, want %v", tc.id, err, tc.want)
		}
	}

	// A pending delivery that nobody holds is moved to now.
	e4 := Event(Base.Add(3*time.Second), "r4", "b")
	Ingest(t, s, e4, time.Hour)
	c4 := Claim(t, s, "b", Base.Add(time.Hour), 1)[0].Delivery
	c4.Attempts, c4.NextAttemptAt = 1, now.Add(time.Hour)
	complete(t, s, relay.Outcome{Delivery: c4, Attempt: &relay.Attempt{Number: 1, Status: 503}})
	got, err := relay.Requeue(t.Context(), s, c4.ID(), now)
	if err != nil {
		t.Fatalf("Requeue(pending %s): %v", c4.ID(), err)
	}
	if got.State != relay.Pending || !got.NextAttemptAt.Equal(now) || got.BudgetAttempts != 1 || got.Attempts != 1 {
		t.Errorf("Requeue(pending) = %+v, want due now with its budget counted from attempt 1", got)
	}
	if due, ok := nextDue(t, s, "b"); !ok || !due.Equal(now) {
		t.Errorf("NextDue(b) after Requeue = %v, %v; want %v", due, ok, now)
	}
}

// relay.RequeueDead works through a target's dead deliveries max at a
// time, and Counts follows every move.
func testRequeueDeadAndCounts(t *testing.T, h Harness) {
	s := open(t, h)
	for i := range 5 {
		Ingest(t, s, Event(Base.Add(time.Duration(i)*time.Millisecond), fmt.Sprint("x", i), "a", "b"), time.Hour)
	}
	for _, c := range Claim(t, s, "a", Base.Add(time.Hour), 4) {
		finish(t, s, c, Base.Add(time.Minute), relay.Dead, 410)
	}
	finish(t, s, Claim(t, s, "b", Base.Add(time.Hour), 1)[0], Base.Add(time.Minute), relay.Delivered, 200)

	wantCounts(t, s, map[string]relay.StateCounts{"a": {Pending: 1, Dead: 4}, "b": {Pending: 4, Delivered: 1}})

	now := Base.Add(2 * time.Hour)
	n, err := relay.RequeueDead(t.Context(), s, "a", now, 3)
	if err != nil || n != 3 {
		t.Fatalf("RequeueDead(a, max 3) = %d, %v; want 3", n, err)
	}
	wantCounts(t, s, map[string]relay.StateCounts{"a": {Pending: 4, Dead: 1}})
	if n, err := relay.RequeueDead(t.Context(), s, "a", now, 3); err != nil || n != 1 {
		t.Fatalf("second RequeueDead(a) = %d, %v; want the last 1", n, err)
	}
	if n, err := relay.RequeueDead(t.Context(), s, "a", now, 3); err != nil || n != 0 {
		t.Fatalf("third RequeueDead(a) = %d, %v; want 0", n, err)
	}
	if n, err := relay.RequeueDead(t.Context(), s, "nobody", now, 3); err != nil || n != 0 {
		t.Fatalf("RequeueDead(nobody) = %d, %v; want 0", n, err)
	}
	wantCounts(t, s, map[string]relay.StateCounts{"a": {Pending: 5}, "b": {Pending: 4, Delivered: 1}})
	if got := Claim(t, s, "a", now, 10); len(got) != 5 {
		t.Errorf("Claim after RequeueDead = %d deliveries, want all 5", len(got))
	}

	s = reopen(t, h, s)
	wantCounts(t, s, map[string]relay.StateCounts{"a": {Pending: 5}, "b": {Pending: 4, Delivered: 1}})
}

// A pause mark outlasts a restart until it is lifted.
func testPaused(t *testing.T, h Harness) {
	s := open(t, h)
	paused := func() map[string]bool {
		t.Helper()
		p, err := s.Paused(t.Context())
		if err != nil {
			t.Fatalf("Paused: %v", err)
		}
		return p
	}
	if p := paused(); len(p) != 0 {
		t.Fatalf("Paused() on a new store = %v, want none", p)
	}
	for _, target := range []string{"a", "b"} {
		if err := s.SetPaused(t.Context(), target, true); err != nil {
			t.Fatalf("SetPaused(%s, true): %v", target, err)
		}
	}
	s = reopen(t, h, s)
	if p := paused(); len(p) != 2 || !p["a"] || !p["b"] {
		t.Fatalf("Paused() after a restart = %v, want a and b", p)
	}
	if err := s.SetPaused(t.Context(), "a", false); err != nil {
		t.Fatalf("SetPaused(a, false): %v", err)
	}
	s = reopen(t, h, s)
	if p := paused(); len(p) != 1 || !p["b"] {
		t.Errorf("Paused() after resuming a = %v, want only b", p)
	}
}
