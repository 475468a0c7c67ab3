package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Pruning keeps every piece of pending work, with its event and payload,
// however old, and deletes finished events with their deliveries; no dedup
// mark is left that names an event that is gone (relay.Store's retention
// contract).
func testRetention(t *testing.T, h Harness) {
	if h.Retained == nil {
		t.Skip("Harness.Retained is nil: the store under test cannot be given a retention")
	}
	s, prune := h.Retained(t)
	s2 := track(t, s, "Harness.Retained")
	ctx := t.Context()
	at := func(i int) time.Time { return Base.Add(time.Duration(i) * time.Second) }
	done := Event(at(0), "done", "a", "b")         // delivered to a, dead at b
	half := Event(at(1), "half", "a", "b")         // delivered to a, b never attempted
	held := Event(at(2), "held", "a")              // held by a claim when pruned
	retry := Event(at(3), "retry", "a")            // attempted, due again later
	replayed := Event(at(4), "replayed", "a")      // delivered, then swapped back to pending
	requeued := Event(at(5), "requeued", "a", "b") // dead at a, then requeued; delivered to b
	unrouted := Event(at(6), "unrouted")           // no deliveries at all
	all := []*relay.Event{done, half, held, retry, replayed, requeued, unrouted}
	// A dedup ttl longer than any retention: the marks of the events that
	// are kept outlive the pruning, those of the others must not.
	for _, ev := range all {
		Ingest(t, s2, ev, 1000*time.Hour)
	}
	byEvent := map[string]relay.Claim{}
	for _, c := range Claim(t, s2, "a", at(10), 10) {
		byEvent[c.Event.ID] = c
	}
	for _, c := range Claim(t, s2, "b", at(10), 10) {
		byEvent[c.Event.ID+"b"] = c
	}
	finish(t, s2, byEvent[done.ID], at(20), relay.Delivered, 200)
	finish(t, s2, byEvent[done.ID+"b"], at(20), relay.Dead, 410)
	finish(t, s2, byEvent[half.ID], at(20), relay.Delivered, 200)
	if err := s2.Release(ctx, half.ReceivedAt, byEvent[half.ID+"b"].Delivery); err != nil {
		t.Fatal(err)
	}
	d := byEvent[retry.ID].Delivery
	d.Attempts, d.LastStatus, d.NextAttemptAt = 1, 503, at(3600)
	complete(t, s2, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: at(20), Status: 503}})
	finish(t, s2, byEvent[replayed.ID], at(20), relay.Delivered, 200)
	finish(t, s2, byEvent[requeued.ID], at(20), relay.Dead, 410)
	finish(t, s2, byEvent[requeued.ID+"b"], at(20), relay.Delivered, 200)
	// Final outcomes may be written after Complete returns: pruning is to
	// find them written.
	for _, f := range []struct {
		ev     *relay.Event
		target string
		state  relay.State
	}{{done, "a", relay.Delivered}, {done, "b", relay.Dead}, {half, "a", relay.Delivered}, {requeued, "a", relay.Dead}, {requeued, "b", relay.Delivered}} {
		loaded(t, s2, relay.DeliveryID(f.ev.ID, f.target), f.state)
	}
	delivered := loaded(t, s2, relay.DeliveryID(replayed.ID, "a"), relay.Delivered)
	again := delivered
	again.State, again.NextAttemptAt = relay.Pending, at(30)
	if n := swap(t, s2, relay.Swap{Old: &delivered, New: again}); n != 1 {
		t.Fatalf("swapping the delivered delivery of replayed back to pending = %d, want 1", n)
	}
	if _, err := relay.Requeue(ctx, s2, relay.DeliveryID(requeued.ID, "a"), at(30)); err != nil {
		t.Fatalf("Requeue(the dead delivery of requeued): %v", err)
	}

	prune()

	// Pending work is all there.
	for _, c := range []struct {
		ev     *relay.Event
		target string
	}{{half, "b"}, {retry, "a"}, {replayed, "a"}, {requeued, "a"}} {
		got, err := s2.Event(ctx, c.ev.ID)
		if err != nil {
			t.Errorf("after pruning, Event(%s) of an event with a pending delivery: %v", c.ev.DedupKey, err)
			continue
		}
		if string(got.Event.Payload) != string(c.ev.Payload) {
			t.Errorf("after pruning, the payload of %s is %q, want %q", c.ev.DedupKey, got.Event.Payload, c.ev.Payload)
		}
	}
	if n := backlog(t, s2, "a"); n != 4 {
		t.Errorf("after pruning, Backlog(a) = %d, want 4 (held, retry, replayed, requeued)", n)
	}
	if d, isHeld, err := s2.LoadDelivery(ctx, relay.DeliveryID(held.ID, "a")); err != nil || !isHeld || d.State != relay.Pending {
		t.Errorf("after pruning, the held delivery = %+v, held %v, %v; want it pending and held", d, isHeld, err)
	}
	got := map[string]relay.Claim{}
	for _, target := range []string{"a", "b"} {
		for _, c := range Claim(t, s2, target, at(7200), 10) {
			got[c.Delivery.ID()] = c
		}
	}
	for _, c := range []struct {
		ev       *relay.Event
		target   string
		attempts int
	}{{half, "b", 0}, {retry, "a", 1}, {replayed, "a", 1}, {requeued, "a", 1}} {
		id := relay.DeliveryID(c.ev.ID, c.target)
		cl, ok := got[id]
		if !ok {
			t.Errorf("after pruning, the pending delivery of %s to %s is not handed out", c.ev.DedupKey, c.target)
			continue
		}
		if cl.Delivery.Attempts != c.attempts || string(cl.Event.Payload) != string(c.ev.Payload) {
			t.Errorf("after pruning, %s = %+v with payload %q, want %d attempts and the payload %q", id, cl.Delivery, cl.Event.Payload, c.attempts, c.ev.Payload)
		}
	}
	if len(got) != 4 {
		t.Errorf("after pruning, Claim handed out %d deliveries, want the 4 pending ones not held", len(got))
	}

	// Finished events are gone, from every list.
	for _, ev := range []*relay.Event{done, unrouted} {
		if _, err := s2.Event(ctx, ev.ID); !errors.Is(err, relay.ErrNotFound) {
			t.Errorf("after pruning, Event(%s) of a finished event = %v, want ErrNotFound", ev.DedupKey, err)
		}
	}
	for _, e := range listEvents(t, s2, relay.EventFilter{}) {
		if e.Event.ID == done.ID || e.Event.ID == unrouted.ID {
			t.Errorf("after pruning, Events() lists the finished event %s", e.Event.DedupKey)
		}
	}
	for _, d := range listDeliveries(t, s2, relay.DeliveryFilter{}) {
		if d.EventID == done.ID {
			t.Errorf("after pruning, Deliveries() lists %s of a finished event", d.ID())
		}
	}
	if counts, err := s2.Counts(ctx); err != nil || counts["b"].Dead != 0 {
		t.Errorf("after pruning, Counts()[b] = %+v, %v; want no dead delivery (the only one was done's)", counts["b"], err)
	}

	// A mark is there only with its event.
	for _, ev := range all {
		res := Ingest(t, s2, Event(at(7200), ev.DedupKey, "z"), 1000*time.Hour)
		if !res.Duplicate {
			continue
		}
		if _, err := s2.Event(ctx, res.EventID); err != nil {
			t.Errorf("after pruning, key %q is a duplicate of %s, whose Event(): %v; a mark must not outlive its event", ev.DedupKey, res.EventID, err)
		}
	}
}
